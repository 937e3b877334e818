// reorg on the CPU: the same index arithmetic as kernel.cu (compute core of the OpenVINO extension).
#include <cstdint>

#include "reorg_index.h"

namespace netdsl_plugins {
namespace reorg {

// x: (N, C, H, W); y: (N, C*b*b, H/b, W/b). T is any element type (the op only moves elements).
template <typename T>
void run(const T* x, T* y, int64_t N, int64_t C, int64_t H, int64_t W, int64_t block, int mode) {
    const int64_t total = N * C * H * W;
    for (int64_t t = 0; t < total; ++t) y[t] = x[reorg_source(t, C, H, W, block, mode)];
}

}  // namespace reorg
}  // namespace netdsl_plugins
