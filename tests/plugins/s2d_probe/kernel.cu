// s2d_probe: space-to-depth by b, y = s2d(x) * alpha + bias, count[n] = (h/b)*(w/b).
#include "netdsl_cuda.h"

template <typename T>
__global__ void s2d(const T* x, T* y, int* count, long long n, long long c, long long h, long long w, int b,
                    float alpha, float bias) {
    long long i = nd_global_index();
    const long long ho = h / b, wo = w / b, co = c * b * b;
    if (i < n) count[i] = (int)(ho * wo);
    if (i >= n * c * h * w) return;
    long long t = i;
    const long long ww = t % wo; t /= wo;
    const long long hh = t % ho; t /= ho;
    const long long cc = t % co; const long long nn = t / co;
    const long long ci = cc % c, ij = cc / c, ii = ij / b, jj = ij % b;
    const float v = nd_load(x + ((nn * c + ci) * h + hh * b + ii) * w + ww * b + jj);
    nd_store(y + i, v * alpha + bias);
}
