// yolo_decode on the CPU: the same arithmetic as kernel.cu (compute core of the OpenVINO extension).
// load(T) -> float and store(float) -> T are supplied by the caller for each element type.
#include <cstdint>

#include "yolo_math.h"

namespace netdsl_plugins {
namespace yolo_decode {

// x: (N, A*(5+C), H, W); boxes: (N, A*H*W, 4); scores: (N, A*H*W, C); anchors: 2*A floats (w, h).
template <typename T, typename Load, typename Store>
void run(const T* x, T* boxes, T* scores, int64_t N, int64_t A, int64_t H, int64_t W, int64_t C,
         const float* anchors, float stride, float scale_x_y, bool cxcywh, Load load, Store store) {
    const int64_t hw = H * W;
    for (int64_t t = 0; t < N * A * hw; ++t) {
        const int64_t n = t / (A * hw), r = t % (A * hw);
        const int64_t a = r / hw, gy = (r / W) % H, gx = r % W;
        const T* p = x + (n * A + a) * (5 + C) * hw + gy * W + gx;
        float box[4];
        yolo_box(load(p[0]), load(p[hw]), load(p[2 * hw]), load(p[3 * hw]), static_cast<int>(gx),
                 static_cast<int>(gy), anchors[2 * a], anchors[2 * a + 1], stride, scale_x_y, cxcywh, box);
        for (int k = 0; k < 4; ++k) boxes[t * 4 + k] = store(box[k]);
        const float obj = yolo_sigmoid(load(p[4 * hw]));
        for (int64_t c = 0; c < C; ++c) scores[t * C + c] = store(obj * yolo_sigmoid(load(p[(5 + c) * hw])));
    }
}

}  // namespace yolo_decode
}  // namespace netdsl_plugins
