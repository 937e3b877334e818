// nms: box corners, the IoU suppression test and the output order, shared by kernel.cu and cpu.cpp.
#pragma once
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define NMS_HD __host__ __device__ __forceinline__
#else
#define NMS_HD inline
#endif

struct NmsBox { float x1, y1, x2, y2; };

NMS_HD float nms_min(float a, float b) { return a < b ? a : b; }
NMS_HD float nms_max(float a, float b) { return a < b ? b : a; }

// corners x1 <= x2, y1 <= y2 of (a, b, c, d) given as two opposite corners or as (cx, cy, w, h)
NMS_HD NmsBox nms_corners(float a, float b, float c, float d, int cxcywh) {
    if (cxcywh) {
        const float x1 = a - 0.5f * c, x2 = a + 0.5f * c, y1 = b - 0.5f * d, y2 = b + 0.5f * d;
        a = x1; c = x2; b = y1; d = y2;
    }
    NmsBox r = {nms_min(a, c), nms_min(b, d), nms_max(a, c), nms_max(b, d)};
    return r;
}

// IoU > threshold; no overlap, or an empty box, never suppresses (as ONNX Runtime's NonMaxSuppression).
NMS_HD bool nms_suppresses(NmsBox a, NmsBox b, float threshold) {
    const float ix1 = nms_max(a.x1, b.x1), ix2 = nms_min(a.x2, b.x2);
    if (ix2 <= ix1) return false;
    const float iy1 = nms_max(a.y1, b.y1), iy2 = nms_min(a.y2, b.y2);
    if (iy2 <= iy1) return false;
    const float inter = (ix2 - ix1) * (iy2 - iy1);
    const float area_a = (a.x2 - a.x1) * (a.y2 - a.y1), area_b = (b.x2 - b.x1) * (b.y2 - b.y1);
    if (area_a <= 0.0f || area_b <= 0.0f) return false;
    const float uni = area_a + area_b - inter;
    if (uni <= 0.0f) return false;
    return inter / uni > threshold;
}

// (s1, c1, i1) ranks before (s2, c2, i2): score descending, then class, then box index ascending
NMS_HD bool nms_before(float s1, long long c1, long long i1, float s2, long long c2, long long i2) {
    return s1 > s2 || (s1 == s2 && (c1 < c2 || (c1 == c2 && i1 < i2)));
}
