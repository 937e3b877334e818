// nms on the CPU: the same selection and order as kernel.cu (compute core of the OpenVINO extension).
// load(T) -> float and store(float) -> T are supplied by the caller for each element type.
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include "nms_math.h"

namespace netdsl_plugins {
namespace nms {

struct Pick { float score; int64_t cls, box; };

inline bool before(const Pick& a, const Pick& b) { return nms_before(a.score, a.cls, a.box, b.score, b.cls, b.box); }

// boxes (N, B, 4), scores (N, B, C) -> dets (N, max_det, 6), count (N,)
template <typename T, typename Load, typename Store>
void run(const T* boxes, const T* scores, T* dets, int32_t* count, int64_t N, int64_t B, int64_t C,
         int64_t max_det, float iou_threshold, float score_threshold, bool cxcywh, Load load, Store store) {
    std::vector<NmsBox> corner(B);
    std::vector<int64_t> order;
    std::vector<Pick> picks;
    for (int64_t n = 0; n < N; ++n) {
        const T* bx = boxes + n * B * 4;
        const T* sc = scores + n * B * C;
        for (int64_t i = 0; i < B; ++i) {
            const T* p = bx + i * 4;
            corner[i] = nms_corners(load(p[0]), load(p[1]), load(p[2]), load(p[3]), cxcywh);
        }
        picks.clear();
        for (int64_t c = 0; c < C; ++c) {
            order.clear();
            for (int64_t i = 0; i < B; ++i)
                if (load(sc[i * C + c]) > score_threshold) order.push_back(i);
            std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
                return load(sc[a * C + c]) > load(sc[b * C + c]); });
            std::vector<int64_t> kept;
            for (int64_t i : order) {
                if (static_cast<int64_t>(kept.size()) == max_det) break;   // the rest rank lower
                bool keep = true;
                for (int64_t k : kept)
                    if (nms_suppresses(corner[k], corner[i], iou_threshold)) { keep = false; break; }
                if (keep) { kept.push_back(i); picks.push_back({load(sc[i * C + c]), c, i}); }
            }
        }
        std::stable_sort(picks.begin(), picks.end(), before);
        const int64_t m = std::min<int64_t>(max_det, picks.size());
        T* out = dets + n * max_det * 6;
        for (int64_t k = 0; k < max_det; ++k) {
            T* row = out + k * 6;
            if (k < m) {
                const NmsBox& b = corner[picks[k].box];
                row[0] = store(b.x1); row[1] = store(b.y1); row[2] = store(b.x2); row[3] = store(b.y2);
                row[4] = store(picks[k].score); row[5] = store(static_cast<float>(picks[k].cls));
            } else {
                for (int j = 0; j < 5; ++j) row[j] = store(0.0f);
                row[5] = store(-1.0f);
            }
        }
        count[n] = static_cast<int32_t>(m);
    }
}

}  // namespace nms
}  // namespace netdsl_plugins
