// Row gathers and scatters by integer index: embedding lookup, its gradient, scatter-add, last-axis gather.
// Scatters are partitioned over columns, so each output element is owned by one thread and its additions
// happen in index order: deterministic for any thread count, with no atomics.
#include <algorithm>
#include <cstring>

#include "common.h"

namespace ik {
namespace {

void checkIndices(const Args& args, const int32_t* idx, int64_t n, int64_t limit) {
  for (int64_t i = 0; i < n; i++)
    if (idx[i] < 0 || idx[i] >= limit)
      args.fail("index " + std::to_string(idx[i]) + " at position " + std::to_string(i) + " is outside [0, " +
                std::to_string(limit) + ")");
}

// gatherRows(table, idx, out, N, D, n): out[i] = table[idx[i]] for table (N, D), out (n, D)
Napi::Value gatherRows(const Napi::CallbackInfo& info) {
  Args args(info, "gatherRows", 6);
  int64_t N = args.int_(3), D = args.int_(4), n = args.int_(5);
  const float* table = args.f32(0, N * D);
  const int32_t* idx = args.i32(1, n);
  float* out = args.f32(2, n * D);
  checkIndices(args, idx, n, N);
  parallelFor(n, std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(D, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) std::memcpy(out + i * D, table + idx[i] * D, D * sizeof(float));
  });
  return info.Env().Undefined();
}
IK_EXPORT("gatherRows", gatherRows);

// scatterAddRows(dst, idx, src, N, D, n, zeroFirst): dst[idx[i]] += src[i] for dst (N, D), src (n, D);
// zeroFirst clears dst before adding (an embedding gradient).
Napi::Value scatterAddRows(const Napi::CallbackInfo& info) {
  Args args(info, "scatterAddRows", 7);
  int64_t N = args.int_(3), D = args.int_(4), n = args.int_(5);
  bool zeroFirst = args.flag(6);
  float* dst = args.f32(0, N * D);
  const int32_t* idx = args.i32(1, n);
  const float* src = args.f32(2, n * D);
  checkIndices(args, idx, n, N);
  if (zeroFirst)
    parallelFor(N * D, 1 << 16, [&](int64_t lo, int64_t hi) { std::memset(dst + lo, 0, (hi - lo) * sizeof(float)); });
  // Column ranges of at least a cache line's worth per thread, unless D itself is smaller.
  parallelFor(D, 64, [&](int64_t lo, int64_t hi) {
    for (int64_t i = 0; i < n; i++) {
      float* __restrict d = dst + idx[i] * D;
      const float* __restrict s = src + i * D;
#pragma omp simd
      for (int64_t j = lo; j < hi; j++) d[j] += s[j];
    }
  });
  return info.Env().Undefined();
}
IK_EXPORT("scatterAddRows", scatterAddRows);

// gatherLast(x, idx, out, rows, V): out[r] = x[r, idx[r]]
Napi::Value gatherLast(const Napi::CallbackInfo& info) {
  Args args(info, "gatherLast", 5);
  int64_t rows = args.int_(3), V = args.int_(4);
  const float* x = args.f32(0, rows * V);
  const int32_t* idx = args.i32(1, rows);
  float* out = args.f32(2, rows);
  checkIndices(args, idx, rows, V);
  for (int64_t r = 0; r < rows; r++) out[r] = x[r * V + idx[r]];
  return info.Env().Undefined();
}
IK_EXPORT("gatherLast", gatherLast);

// scatterLast(idx, g, dx, rows, V): dx = 0, then dx[r, idx[r]] = g[r] (the gradient of gatherLast)
Napi::Value scatterLast(const Napi::CallbackInfo& info) {
  Args args(info, "scatterLast", 5);
  int64_t rows = args.int_(3), V = args.int_(4);
  const int32_t* idx = args.i32(0, rows);
  const float* g = args.f32(1, rows);
  float* dx = args.f32(2, rows * V);
  checkIndices(args, idx, rows, V);
  parallelFor(rows, std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(V, 1)), [&](int64_t lo, int64_t hi) {
    std::memset(dx + lo * V, 0, (hi - lo) * V * sizeof(float));
    for (int64_t r = lo; r < hi; r++) dx[r * V + idx[r]] = g[r];
  });
  return info.Env().Undefined();
}
IK_EXPORT("scatterLast", scatterLast);

}  // namespace
}  // namespace ik
