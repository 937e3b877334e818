// reorg on the CPU (the compiled OpenVINO route): the same index arithmetic as kernel.cu.
#include "netdsl_plugin.hpp"

#include <cstring>
#include <stdexcept>

#include "reorg_index.h"

namespace {

int mode_code(const std::string& mode) {
    if (mode == "space_to_depth") return 0;
    if (mode == "focus") return 1;
    if (mode == "darknet") return 2;
    throw std::runtime_error("reorg: unknown mode '" + mode + "'");
}

}  // namespace

// x: (N, C, H, W) -> y: (N, C*b*b, H/b, W/b); every element is moved, never converted.
void netdsl_compute(const netdsl::Inputs& in, netdsl::Outputs& out, const netdsl::Attrs& attrs) {
    const netdsl::Tensor& x = in[0];
    const int64_t b = attrs.i("block");
    const int mode = mode_code(attrs.s("mode"));
    if (x.dim(2) % b || x.dim(3) % b)
        throw std::runtime_error("reorg: input height and width must be divisible by block " + std::to_string(b));
    netdsl::dispatch_float(x.dtype, [&](auto zero) {
        using T = decltype(zero);
        const T* src = x.ptr<T>();
        T* dst = out[0].ptr<T>();
        const int64_t total = x.numel();
        for (int64_t t = 0; t < total; ++t) dst[t] = src[reorg_source(t, x.dim(1), x.dim(2), x.dim(3), b, mode)];
    });
}
