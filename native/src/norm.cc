// LayerNorm and RMSNorm over the last axis, fused forward (saving per-row statistics) and fused backward.
// The weight/bias gradients are column sums over rows: each fixed block of rows sums into its own partial row,
// and the partials are added in block order, so the result does not depend on the thread count.
#include <cmath>
#include <vector>

#include "common.h"
#include "nn_math.h"

namespace ik {
namespace {

// The row blocks depend only on the row count: at most 64 of them, enough to keep every core busy.
constexpr int64_t kMaxBlocks = 64;

// Parameter gradients: per-block partial column sums, then out[j] = Σ_blocks partial[b][j] in block order.
struct ColumnPartials {
  int64_t blockRows, blocks, D;
  std::vector<float> dw, db;
  ColumnPartials(int64_t rows, int64_t D, bool wantW, bool wantB)
      : blockRows(std::max<int64_t>(1, (rows + kMaxBlocks - 1) / kMaxBlocks)),
        blocks((rows + blockRows - 1) / blockRows),
        D(D) {
    if (wantW) dw.assign(blocks * D, 0.0f);
    if (wantB) db.assign(blocks * D, 0.0f);
  }
  float* w(int64_t block) { return dw.empty() ? nullptr : dw.data() + block * D; }
  float* b(int64_t block) { return db.empty() ? nullptr : db.data() + block * D; }
  static void reduce(const std::vector<float>& part, int64_t blocks, int64_t D, float* out) {
    parallelFor(D, 1 << 12, [&](int64_t lo, int64_t hi) {
      for (int64_t j = lo; j < hi; j++) out[j] = 0;
      for (int64_t k = 0; k < blocks; k++) {
        const float* __restrict p = part.data() + k * D;
#pragma omp simd
        for (int64_t j = lo; j < hi; j++) out[j] += p[j];
      }
    });
  }
};

// layerNormForward(x, weight|null, bias|null, y, mean, rstd, rows, D, eps)
Napi::Value layerNormForward(const Napi::CallbackInfo& info) {
  Args args(info, "layerNormForward", 9);
  int64_t rows = args.int_(6), D = args.int_(7, 1);
  float eps = static_cast<float>(args.num(8));
  size_t total = rows * D;
  const float* x = args.f32(0, total);
  const float* w = args.isNull(1) ? nullptr : args.f32(1, D);
  const float* b = args.isNull(2) ? nullptr : args.f32(2, D);
  float* y = args.f32(3, total);
  float* meanOut = args.f32(4, rows);
  float* rstdOut = args.f32(5, rows);
  parallelFor(rows, rowGrain(D), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; r++) {
      const float* __restrict xr = x + r * D;
      float* __restrict yr = y + r * D;
      float s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t j = 0; j < D; j++) s += xr[j];
      float mean = s / D;
      // Second pass over the centred values: no cancellation, unlike E[x²] − E[x]².
      float v = 0;
#pragma omp simd reduction(+ : v)
      for (int64_t j = 0; j < D; j++) v += (xr[j] - mean) * (xr[j] - mean);
      float rstd = 1.0f / std::sqrt(v / D + eps);
      meanOut[r] = mean;
      rstdOut[r] = rstd;
      if (w && b) {
#pragma omp simd
        for (int64_t j = 0; j < D; j++) yr[j] = (xr[j] - mean) * rstd * w[j] + b[j];
      } else if (w) {
#pragma omp simd
        for (int64_t j = 0; j < D; j++) yr[j] = (xr[j] - mean) * rstd * w[j];
      } else if (b) {
#pragma omp simd
        for (int64_t j = 0; j < D; j++) yr[j] = (xr[j] - mean) * rstd + b[j];
      } else {
#pragma omp simd
        for (int64_t j = 0; j < D; j++) yr[j] = (xr[j] - mean) * rstd;
      }
    }
  });
  return info.Env().Undefined();
}
IK_EXPORT("layerNormForward", layerNormForward);

// layerNormBackward(x, weight|null, mean, rstd, g, dx|null, dweight|null, dbias|null, rows, D)
// With x̂ = (x − mean)·rstd and ĝ = g·weight: dx = rstd·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)),
// dweight = Σ_rows g·x̂, dbias = Σ_rows g.
Napi::Value layerNormBackward(const Napi::CallbackInfo& info) {
  Args args(info, "layerNormBackward", 10);
  int64_t rows = args.int_(8), D = args.int_(9, 1);
  size_t total = rows * D;
  const float* x = args.f32(0, total);
  const float* w = args.isNull(1) ? nullptr : args.f32(1, D);
  const float* mean = args.f32(2, rows);
  const float* rstd = args.f32(3, rows);
  const float* g = args.f32(4, total);
  float* dx = args.isNull(5) ? nullptr : args.f32(5, total);
  float* dw = args.isNull(6) ? nullptr : args.f32(6, D);
  float* db = args.isNull(7) ? nullptr : args.f32(7, D);
  ColumnPartials parts(rows, D, dw != nullptr, db != nullptr);
  parallelFor(parts.blocks, 1, [&](int64_t blo, int64_t bhi) {
    static thread_local std::vector<float> scratch;
    scratch.resize(2 * D);
    float* __restrict xhat = scratch.data();
    float* __restrict gw = xhat + D;
    for (int64_t blk = blo; blk < bhi; blk++) {
      float* __restrict pw = parts.w(blk);
      float* __restrict pb = parts.b(blk);
      int64_t rEnd = std::min(rows, (blk + 1) * parts.blockRows);
      for (int64_t r = blk * parts.blockRows; r < rEnd; r++) {
        const float* __restrict xr = x + r * D;
        const float* __restrict gr = g + r * D;
        float mu = mean[r], rs = rstd[r];
#pragma omp simd
        for (int64_t j = 0; j < D; j++) xhat[j] = (xr[j] - mu) * rs;
        if (pw) {
#pragma omp simd
          for (int64_t j = 0; j < D; j++) pw[j] += gr[j] * xhat[j];
        }
        if (pb) {
#pragma omp simd
          for (int64_t j = 0; j < D; j++) pb[j] += gr[j];
        }
        if (!dx) continue;
        if (w) {
#pragma omp simd
          for (int64_t j = 0; j < D; j++) gw[j] = gr[j] * w[j];
        } else {
#pragma omp simd
          for (int64_t j = 0; j < D; j++) gw[j] = gr[j];
        }
        float sg = 0, sgx = 0;
#pragma omp simd reduction(+ : sg, sgx)
        for (int64_t j = 0; j < D; j++) sg += gw[j], sgx += gw[j] * xhat[j];
        float a = sg / D, c = sgx / D;
        float* __restrict dxr = dx + r * D;
#pragma omp simd
        for (int64_t j = 0; j < D; j++) dxr[j] = rs * (gw[j] - a - xhat[j] * c);
      }
    }
  });
  if (dw) ColumnPartials::reduce(parts.dw, parts.blocks, D, dw);
  if (db) ColumnPartials::reduce(parts.db, parts.blocks, D, db);
  return info.Env().Undefined();
}
IK_EXPORT("layerNormBackward", layerNormBackward);

// rmsNormForward(x, weight|null, y, rstd, rows, D, eps): y = weight · (x · rstd), rstd = 1/sqrt(mean(x²) + eps)
Napi::Value rmsNormForward(const Napi::CallbackInfo& info) {
  Args args(info, "rmsNormForward", 7);
  int64_t rows = args.int_(4), D = args.int_(5, 1);
  float eps = static_cast<float>(args.num(6));
  size_t total = rows * D;
  const float* x = args.f32(0, total);
  const float* w = args.isNull(1) ? nullptr : args.f32(1, D);
  float* y = args.f32(2, total);
  float* rstdOut = args.f32(3, rows);
  parallelFor(rows, rowGrain(D), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; r++) {
      const float* __restrict xr = x + r * D;
      float* __restrict yr = y + r * D;
      float ss = 0;
#pragma omp simd reduction(+ : ss)
      for (int64_t j = 0; j < D; j++) ss += xr[j] * xr[j];
      float rs = 1.0f / std::sqrt(ss / D + eps);
      rstdOut[r] = rs;
      if (w) {
#pragma omp simd
        for (int64_t j = 0; j < D; j++) yr[j] = w[j] * (xr[j] * rs);
      } else {
#pragma omp simd
        for (int64_t j = 0; j < D; j++) yr[j] = xr[j] * rs;
      }
    }
  });
  return info.Env().Undefined();
}
IK_EXPORT("rmsNormForward", rmsNormForward);

// rmsNormBackward(x, weight|null, rstd, g, dx|null, dweight|null, rows, D)
// With ĝ = g·weight: dx = rstd·ĝ − x·rstd³·mean(ĝ·x), dweight = Σ_rows g·x·rstd.
Napi::Value rmsNormBackward(const Napi::CallbackInfo& info) {
  Args args(info, "rmsNormBackward", 8);
  int64_t rows = args.int_(6), D = args.int_(7, 1);
  size_t total = rows * D;
  const float* x = args.f32(0, total);
  const float* w = args.isNull(1) ? nullptr : args.f32(1, D);
  const float* rstd = args.f32(2, rows);
  const float* g = args.f32(3, total);
  float* dx = args.isNull(4) ? nullptr : args.f32(4, total);
  float* dw = args.isNull(5) ? nullptr : args.f32(5, D);
  ColumnPartials parts(rows, D, dw != nullptr, false);
  parallelFor(parts.blocks, 1, [&](int64_t blo, int64_t bhi) {
    for (int64_t blk = blo; blk < bhi; blk++) {
      float* __restrict pw = parts.w(blk);
      int64_t rEnd = std::min(rows, (blk + 1) * parts.blockRows);
      for (int64_t r = blk * parts.blockRows; r < rEnd; r++) {
        const float* __restrict xr = x + r * D;
        const float* __restrict gr = g + r * D;
        float rs = rstd[r];
        if (pw) {
#pragma omp simd
          for (int64_t j = 0; j < D; j++) pw[j] += gr[j] * (xr[j] * rs);
        }
        if (!dx) continue;
        float s = 0;
        if (w) {
#pragma omp simd reduction(+ : s)
          for (int64_t j = 0; j < D; j++) s += gr[j] * w[j] * xr[j];
        } else {
#pragma omp simd reduction(+ : s)
          for (int64_t j = 0; j < D; j++) s += gr[j] * xr[j];
        }
        float c = rs * rs * rs * s / D;
        float* __restrict dxr = dx + r * D;
        if (w) {
#pragma omp simd
          for (int64_t j = 0; j < D; j++) dxr[j] = rs * gr[j] * w[j] - xr[j] * c;
        } else {
#pragma omp simd
          for (int64_t j = 0; j < D; j++) dxr[j] = rs * gr[j] - xr[j] * c;
        }
      }
    }
  });
  if (dw) ColumnPartials::reduce(parts.dw, parts.blocks, D, dw);
  return info.Env().Undefined();
}
IK_EXPORT("rmsNormBackward", rmsNormBackward);

}  // namespace
}  // namespace ik
