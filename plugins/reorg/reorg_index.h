// reorg: which input element lands at output element t; shared by kernel.cu and cpu.cpp.
#pragma once
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define REORG_HD __host__ __device__ __forceinline__
#else
#define REORG_HD inline
#endif

// mode: 0 = space_to_depth (ONNX SpaceToDepth), 1 = focus (YOLOv5), 2 = darknet (YOLOv2 reorg).
// Input (N, C, H, W); output (N, C*b*b, H/b, W/b); t is the flat output index.
REORG_HD long long reorg_source(long long t, long long C, long long H, long long W, long long b, int mode) {
    const long long Ho = H / b, Wo = W / b, Co = C * b * b;
    const long long j = t % Wo, i = (t / Wo) % Ho, k = (t / (Wo * Ho)) % Co, n = t / (Wo * Ho * Co);
    if (mode == 2) {
        // darknet reorg_cpu(forward=0) with the input's w, h, c: the output, read as (C, H, W), takes
        // a space-to-depth of the input read as (C/b^2, H*b, W*b).
        const long long within = (k * Ho + i) * Wo + j;
        const long long kk = within / (H * W), jj = (within / W) % H, ii = within % W;
        const long long oc = C / (b * b), off = kk / oc, c2 = kk % oc;
        return n * C * H * W + (c2 * H * b + jj * b + off / b) * (W * b) + ii * b + off % b;
    }
    const long long c = k % C, off = k / C;
    const long long dy = mode == 0 ? off / b : off % b;
    const long long dx = mode == 0 ? off % b : off / b;
    return ((n * C + c) * H + i * b + dy) * W + j * b + dx;
}
