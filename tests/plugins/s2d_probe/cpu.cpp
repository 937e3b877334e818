// s2d_probe on the CPU: every attribute kind is read, so a lost or mangled attribute changes y.
#include "netdsl_plugin.hpp"

#include <stdexcept>

void netdsl_compute(const netdsl::Inputs& in, netdsl::Outputs& out, const netdsl::Attrs& attrs) {
    const int64_t b = attrs.i("block");
    double bias = (attrs.b("flag") ? 1.0 : 0.0) + static_cast<double>(attrs.s("tag").size());
    for (int64_t v : attrs.ints("offsets")) bias += static_cast<double>(v);
    for (double v : attrs.floats("weights")) bias += v;
    const double alpha = attrs.f("alpha");
    const int64_t n = in[0].dim(0), c = in[0].dim(1), h = in[0].dim(2), w = in[0].dim(3);
    const int64_t ho = h / b, wo = w / b;
    if (out[0].shape != std::vector<int64_t>{n, c * b * b, ho, wo}) throw std::runtime_error("unexpected y shape");
    int32_t* count = out[1].ptr<int32_t>();
    for (int64_t i = 0; i < n; ++i) count[i] = static_cast<int32_t>(ho * wo);
    netdsl::dispatch_float(in[0].dtype, [&](auto zero) {
        using T = decltype(zero);
        const T* x = in[0].ptr<T>();
        T* y = out[0].ptr<T>();
        int64_t k = 0;
        for (int64_t nn = 0; nn < n; ++nn)
            for (int64_t i = 0; i < b; ++i)
                for (int64_t j = 0; j < b; ++j)
                    for (int64_t ci = 0; ci < c; ++ci)
                        for (int64_t hh = 0; hh < ho; ++hh)
                            for (int64_t ww = 0; ww < wo; ++ww)
                                y[k++] = static_cast<T>(
                                    static_cast<double>(x[((nn * c + ci) * h + hh * b + i) * w + ww * b + j]) * alpha +
                                    bias);
    });
}
