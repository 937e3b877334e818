// fused_mish: y = x * tanh(softplus(x)), one thread per element.
// Arguments (netdsl's convention): input pointers, output pointers, then the scalars of launch()
// in plugin.py (here the element count). float16 is loaded and stored through float32
// (nd_load/nd_store from netdsl_cuda.h), so one template serves both entries.
#include "netdsl_cuda.h"

template <typename T>
__global__ void mish(const T* x, T* y, long long n) {
    long long i = nd_global_index();
    if (i >= n) return;
    float v = nd_load(x + i);
    float softplus = v > 20.0f ? v : log1pf(expf(v));  // log(1 + e^v) without overflow
    nd_store(y + i, v * tanhf(softplus));
}
