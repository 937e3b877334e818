// nms on the CPU (the compiled OpenVINO route): the same selection and order as kernel.cu
// (corners, IoU test and ranking from nms_math.h, in float32).
#include "netdsl_plugin.hpp"

#include <algorithm>
#include <vector>

#include "nms_math.h"

namespace {

struct Pick { float score; int64_t cls, box; };

}  // namespace

// boxes (N, B, 4), scores (N, B, C) -> detections (N, max_det, 6), count (N,) int32.
void netdsl_compute(const netdsl::Inputs& in, netdsl::Outputs& out, const netdsl::Attrs& attrs) {
    const int64_t N = in[0].dim(0), B = in[0].dim(1), C = in[1].dim(2);
    const int64_t max_det = attrs.i("max_detections");
    const float iou_threshold = static_cast<float>(attrs.f("iou_threshold"));
    const float score_threshold = static_cast<float>(attrs.f("score_threshold"));
    const int cxcywh = attrs.s("box_format") == "cxcywh";
    int32_t* count = out[1].ptr<int32_t>();
    netdsl::dispatch_float(in[0].dtype, [&](auto zero) {
        using T = decltype(zero);
        std::vector<NmsBox> corner(B);
        std::vector<int64_t> order, kept;
        std::vector<Pick> picks;
        for (int64_t n = 0; n < N; ++n) {
            const T* bx = in[0].ptr<T>() + n * B * 4;
            const T* sc = in[1].ptr<T>() + n * B * C;
            for (int64_t i = 0; i < B; ++i)
                corner[i] = nms_corners(float(bx[i * 4]), float(bx[i * 4 + 1]), float(bx[i * 4 + 2]),
                                        float(bx[i * 4 + 3]), cxcywh);
            picks.clear();
            for (int64_t c = 0; c < C; ++c) {
                order.clear();
                kept.clear();
                for (int64_t i = 0; i < B; ++i)
                    if (float(sc[i * C + c]) > score_threshold) order.push_back(i);
                std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
                    return float(sc[a * C + c]) > float(sc[b * C + c]); });   // ties keep index order
                for (int64_t i : order) {
                    if (static_cast<int64_t>(kept.size()) == max_det) break;   // the rest rank lower
                    bool keep = true;
                    for (int64_t k : kept)
                        if (nms_suppresses(corner[k], corner[i], iou_threshold)) { keep = false; break; }
                    if (keep) {
                        kept.push_back(i);
                        picks.push_back({float(sc[i * C + c]), c, i});
                    }
                }
            }
            std::stable_sort(picks.begin(), picks.end(), [](const Pick& a, const Pick& b) {
                return nms_before(a.score, a.cls, a.box, b.score, b.cls, b.box); });
            const int64_t m = std::min<int64_t>(max_det, static_cast<int64_t>(picks.size()));
            T* rows = out[0].ptr<T>() + n * max_det * 6;
            for (int64_t k = 0; k < max_det; ++k) {
                T* row = rows + k * 6;
                if (k < m) {
                    const NmsBox& b = corner[picks[k].box];
                    const float v[6] = {b.x1, b.y1, b.x2, b.y2, picks[k].score, static_cast<float>(picks[k].cls)};
                    for (int j = 0; j < 6; ++j) row[j] = T(v[j]);
                } else {
                    for (int j = 0; j < 5; ++j) row[j] = T(0.0f);
                    row[5] = T(-1.0f);
                }
            }
            count[n] = static_cast<int32_t>(m);
        }
    });
}
