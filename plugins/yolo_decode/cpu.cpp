// yolo_decode on the CPU (the compiled OpenVINO route): the same arithmetic as kernel.cu (yolo_math.h).
#include "netdsl_plugin.hpp"

#include <vector>

#include "yolo_math.h"

// x: (N, A*(5+C), H, W) -> boxes (N, A*H*W, 4), scores (N, A*H*W, C); box index a*H*W + y*W + x.
void netdsl_compute(const netdsl::Inputs& in, netdsl::Outputs& out, const netdsl::Attrs& attrs) {
    const netdsl::Tensor& x = in[0];
    const std::vector<double>& anchor_list = attrs.floats("anchors");
    const std::vector<float> anchors(anchor_list.begin(), anchor_list.end());
    const int64_t N = x.dim(0), A = static_cast<int64_t>(anchors.size() / 2), H = x.dim(2), W = x.dim(3);
    const int64_t C = attrs.i("num_classes"), hw = H * W;
    const float stride = static_cast<float>(attrs.f("stride")), scale_x_y = static_cast<float>(attrs.f("scale_x_y"));
    const int cxcywh = attrs.s("box_format") == "cxcywh";
    netdsl::dispatch_float(x.dtype, [&](auto zero) {
        using T = decltype(zero);
        const T* src = x.ptr<T>();
        T* boxes = out[0].ptr<T>();
        T* scores = out[1].ptr<T>();
        for (int64_t t = 0; t < N * A * hw; ++t) {
            const int64_t n = t / (A * hw), r = t % (A * hw);
            const int64_t a = r / hw, gy = (r / W) % H, gx = r % W;
            const T* p = src + (n * A + a) * (5 + C) * hw + gy * W + gx;
            float box[4];
            yolo_box(float(p[0]), float(p[hw]), float(p[2 * hw]), float(p[3 * hw]), static_cast<int>(gx),
                     static_cast<int>(gy), anchors[2 * a], anchors[2 * a + 1], stride, scale_x_y, cxcywh, box);
            for (int k = 0; k < 4; ++k) boxes[t * 4 + k] = T(box[k]);
            const float obj = yolo_sigmoid(float(p[4 * hw]));
            for (int64_t c = 0; c < C; ++c) scores[t * C + c] = T(obj * yolo_sigmoid(float(p[(5 + c) * hw])));
        }
    });
}
