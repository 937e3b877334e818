// reorg: space-to-depth with three channel orderings; one thread per output element.
// Every ordering is a pure copy, so f16 is exact (the element is moved, never converted).
#include "netdsl_cuda.h"
#include "reorg_index.h"

template <typename T>
__global__ void reorg(const T* x, T* y, long long N, int C, int H, int W, int block, int mode) {
    const long long total = N * C * H * W;
    for (long long t = nd_global_index(); t < total; t += (long long)gridDim.x * blockDim.x)
        y[t] = x[reorg_source(t, C, H, W, block, mode)];
}
