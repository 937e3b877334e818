// nms: per-class greedy non-maximum suppression, one thread block per image.
// In: boxes (N, B, 4), scores (N, B, C). Out: detections (N, max_det, 6) rows
// [x1, y1, x2, y2, score, class] (padding rows 0, 0, 0, 0, 0, -1) and count (N,) int32.
// Order (identical in plugin.py and cpu.cpp): within a class, candidates (score > score_threshold)
// by score descending, then box index ascending; a candidate is kept unless a kept box of its class
// has IoU > iou_threshold with it. The kept boxes of all classes are ranked by score descending,
// then class ascending, then box index ascending; the first max_det are written.
// Dynamic shared memory: ceil(B/32) words of "suppressed" bits, then max_det (score, class, box).
#include "netdsl_cuda.h"
#include "nms_math.h"

#define NMS_THREADS 256

template <typename T>
__device__ __forceinline__ NmsBox nms_box(const T* p, int cxcywh) {
    return nms_corners(nd_load(p), nd_load(p + 1), nd_load(p + 2), nd_load(p + 3), cxcywh);
}

template <typename T>
__global__ void __launch_bounds__(NMS_THREADS)
nms(const T* boxes, const T* scores, T* dets, int* count, int B, int C, int max_det,
    float iou_threshold, float score_threshold, int cxcywh) {
    extern __shared__ unsigned int smem[];
    const int words = (B + 31) / 32;
    unsigned int* suppressed = smem;
    float* top_score = reinterpret_cast<float*>(smem + words);
    int* top_class = reinterpret_cast<int*>(top_score + max_det);
    int* top_box = top_class + max_det;
    __shared__ float red_score[NMS_THREADS / 32];
    __shared__ int red_box[NMS_THREADS / 32];
    __shared__ int top_n, best_box, class_done;
    __shared__ float best_score;

    const int n = blockIdx.x, tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const T* bx = boxes + (long long)n * B * 4;
    const T* sc = scores + (long long)n * B * C;
    if (tid == 0) top_n = 0;

    for (int c = 0; c < C; ++c) {
        for (int w = tid; w < words; w += NMS_THREADS) suppressed[w] = 0u;
        if (tid == 0) class_done = 0;
        __syncthreads();
        while (true) {
            // the best remaining candidate of class c: highest score, then lowest box index
            float s_best = 0.0f;            // meaningless while i_best < 0
            int i_best = -1;
            for (int i = tid; i < B; i += NMS_THREADS) {
                if (suppressed[i >> 5] & (1u << (i & 31))) continue;
                const float s = nd_load(sc + (long long)i * C + c);
                if (!(s > score_threshold)) continue;
                if (i_best < 0 || s > s_best) { s_best = s; i_best = i; }   // i ascends: first wins ties
            }
            for (int off = 16; off > 0; off >>= 1) {
                const float s2 = __shfl_down_sync(0xffffffffu, s_best, off);
                const int i2 = __shfl_down_sync(0xffffffffu, i_best, off);
                if (i2 >= 0 && (i_best < 0 || s2 > s_best || (s2 == s_best && i2 < i_best))) { s_best = s2; i_best = i2; }
            }
            if (lane == 0) { red_score[warp] = s_best; red_box[warp] = i_best; }
            __syncthreads();
            if (tid == 0) {
                s_best = red_score[0]; i_best = red_box[0];
                for (int k = 1; k < NMS_THREADS / 32; ++k) {
                    const float s2 = red_score[k];
                    const int i2 = red_box[k];
                    if (i2 >= 0 && (i_best < 0 || s2 > s_best || (s2 == s_best && i2 < i_best))) { s_best = s2; i_best = i2; }
                }
                best_box = i_best; best_score = s_best;
                if (i_best < 0) {
                    class_done = 1;
                } else if (top_n == max_det && !nms_before(s_best, c, i_best, top_score[max_det - 1],
                                                            top_class[max_det - 1], top_box[max_det - 1])) {
                    class_done = 1;            // every later candidate of this class ranks lower still
                } else {                       // insert into the ranked list (it stays sorted)
                    int k = top_n < max_det ? top_n++ : max_det - 1;
                    while (k > 0 && nms_before(s_best, c, i_best, top_score[k - 1], top_class[k - 1], top_box[k - 1])) {
                        top_score[k] = top_score[k - 1]; top_class[k] = top_class[k - 1]; top_box[k] = top_box[k - 1];
                        --k;
                    }
                    top_score[k] = s_best; top_class[k] = c; top_box[k] = i_best;
                    suppressed[i_best >> 5] |= 1u << (i_best & 31);
                }
            }
            __syncthreads();
            if (class_done) break;
            const NmsBox kept = nms_box(bx + (long long)best_box * 4, cxcywh);
            for (int i = tid; i < B; i += NMS_THREADS) {
                if (suppressed[i >> 5] & (1u << (i & 31))) continue;
                if (nms_suppresses(kept, nms_box(bx + (long long)i * 4, cxcywh), iou_threshold))
                    atomicOr(&suppressed[i >> 5], 1u << (i & 31));
            }
            __syncthreads();
        }
        __syncthreads();
    }
    T* out = dets + (long long)n * max_det * 6;
    for (int k = tid; k < max_det; k += NMS_THREADS) {
        T* row = out + (long long)k * 6;
        if (k < top_n) {
            const NmsBox b = nms_box(bx + (long long)top_box[k] * 4, cxcywh);
            nd_store(row, b.x1); nd_store(row + 1, b.y1); nd_store(row + 2, b.x2); nd_store(row + 3, b.y2);
            nd_store(row + 4, top_score[k]); nd_store(row + 5, (float)top_class[k]);
        } else {
            nd_store(row, 0.0f); nd_store(row + 1, 0.0f); nd_store(row + 2, 0.0f); nd_store(row + 3, 0.0f);
            nd_store(row + 4, 0.0f); nd_store(row + 5, -1.0f);
        }
    }
    if (tid == 0) count[n] = top_n;
}
