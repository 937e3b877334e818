// fused_mish on the CPU (the compiled OpenVINO route): y = x * tanh(softplus(x)).
// netdsl generates the OpenVINO op around netdsl_compute; the output is already allocated with the
// shape and type the declared shape inference gives (here: those of the input).
#include "netdsl_plugin.hpp"

#include <cmath>

void netdsl_compute(const netdsl::Inputs& in, netdsl::Outputs& out, const netdsl::Attrs& /*attrs*/) {
    netdsl::dispatch_float(in[0].dtype, [&](auto zero) {
        using T = decltype(zero);
        const T* x = in[0].ptr<T>();
        T* y = out[0].ptr<T>();
        const int64_t n = in[0].numel();
        for (int64_t i = 0; i < n; ++i) {
            const double v = static_cast<double>(x[i]);
            const double softplus = v > 20.0 ? v : std::log1p(std::exp(v));
            y[i] = static_cast<T>(v * std::tanh(softplus));
        }
    });
}
