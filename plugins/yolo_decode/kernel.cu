// yolo_decode: one thread per (image, anchor, row, column) cell of a YOLO head.
// In: x (N, A*(5+C), H, W) raw head. Out: boxes (N, A*H*W, 4), scores (N, A*H*W, C), box index
// a*H*W + y*W + x. Arithmetic in f32 for both f32 and f16 tensors.
#include "netdsl_cuda.h"
#include "yolo_math.h"

struct Anchors { float v[32]; };   // (w, h) pairs in pixels, at most 16 anchors per head

template <typename T>
__global__ void yolo_decode(const T* x, T* boxes, T* scores, long long N, int A, int H, int W, int C,
                            Anchors anchors, float stride, float scale_x_y, int cxcywh) {
    const long long hw = (long long)H * W, cells = N * A * hw;
    for (long long t = nd_global_index(); t < cells; t += (long long)gridDim.x * blockDim.x) {
        const long long n = t / (A * hw), r = t % (A * hw);       // r = a*H*W + y*W + x
        const int a = (int)(r / hw), gy = (int)((r / W) % H), gx = (int)(r % W);
        const T* p = x + (n * A + a) * (5LL + C) * hw + (long long)gy * W + gx;
        float box[4];
        yolo_box(nd_load(p), nd_load(p + hw), nd_load(p + 2 * hw), nd_load(p + 3 * hw), gx, gy,
                 anchors.v[2 * a], anchors.v[2 * a + 1], stride, scale_x_y, cxcywh, box);
        for (int k = 0; k < 4; ++k) nd_store(boxes + t * 4 + k, box[k]);
        const float obj = yolo_sigmoid(nd_load(p + 4 * hw));
        T* s = scores + t * C;
        for (int c = 0; c < C; ++c) nd_store(s + c, obj * yolo_sigmoid(nd_load(p + (5LL + c) * hw)));
    }
}
