// yolo_decode: one cell's box and scores from its raw values; shared by kernel.cu and cpu.cpp.
#pragma once
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define YOLO_HD __host__ __device__ __forceinline__
#else
#include <math.h>
#define YOLO_HD inline
#endif

YOLO_HD float yolo_sigmoid(float v) { return 1.0f / (1.0f + expf(-v)); }

// t0..t3 raw box values of cell (gx, gy) for an anchor (aw, ah) -> box[4] as xyxy or cx, cy, w, h
YOLO_HD void yolo_box(float t0, float t1, float t2, float t3, int gx, int gy, float aw, float ah, float stride,
                      float scale_x_y, int cxcywh, float* box) {
    const float shift = 0.5f * (scale_x_y - 1.0f);
    const float cx = (gx + yolo_sigmoid(t0) * scale_x_y - shift) * stride;
    const float cy = (gy + yolo_sigmoid(t1) * scale_x_y - shift) * stride;
    const float w = expf(t2) * aw, h = expf(t3) * ah;
    if (cxcywh) {
        box[0] = cx; box[1] = cy; box[2] = w; box[3] = h;
    } else {
        box[0] = cx - 0.5f * w; box[1] = cy - 0.5f * h; box[2] = cx + 0.5f * w; box[3] = cy + 0.5f * h;
    }
}
