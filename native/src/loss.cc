// Fused softmax cross-entropy over the last axis. The forward keeps each row's logsumexp (not the softmax),
// and the backward rebuilds softmax − onehot from the logits and it, scaled by the incoming gradient.
#include <cmath>
#include <limits>

#include "common.h"
#include "nn_math.h"

namespace ik {
namespace {

// Targets index the logits, so they are validated before any parallel work.
void checkTargets(const Args& args, const int32_t* t, int64_t rows, int64_t V, int32_t ignoreIndex) {
  for (int64_t r = 0; r < rows; r++)
    if (t[r] != ignoreIndex && (t[r] < 0 || t[r] >= V))
      args.fail("target " + std::to_string(t[r]) + " at position " + std::to_string(r) + " is outside [0, " +
                std::to_string(V) + ")");
}

// crossEntropyForward(logits, targets, loss, lse, rows, V, ignoreIndex)
// loss[r] = lse[r] − logits[r, t[r]], or 0 where t[r] == ignoreIndex.
Napi::Value crossEntropyForward(const Napi::CallbackInfo& info) {
  Args args(info, "crossEntropyForward", 7);
  int64_t rows = args.int_(4), V = args.int_(5, 1);
  int32_t ignoreIndex = static_cast<int32_t>(args.int_(6, INT32_MIN));
  const float* logits = args.f32(0, rows * V);
  const int32_t* t = args.i32(1, rows);
  float* loss = args.f32(2, rows);
  float* lse = args.f32(3, rows);
  checkTargets(args, t, rows, V, ignoreIndex);
  parallelFor(rows, rowGrain(V), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; r++) {
      const float* __restrict x = logits + r * V;
      float m = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : m)
      for (int64_t j = 0; j < V; j++) m = m > x[j] ? m : x[j];  // this form vectorises; std::max here does not
      float s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t j = 0; j < V; j++) s += vmath::exp(x[j] - m);
      float l = m + std::log(s);
      lse[r] = l;
      loss[r] = t[r] == ignoreIndex ? 0.0f : l - x[t[r]];
    }
  });
  return info.Env().Undefined();
}
IK_EXPORT("crossEntropyForward", crossEntropyForward);

// crossEntropyBackward(logits, targets, lse, g, gStride, scale, dlogits, rows, V, ignoreIndex)
// dlogits[r] = (softmax(logits[r]) − onehot(t[r]))·g[r·gStride]·scale; zero rows where t[r] == ignoreIndex.
Napi::Value crossEntropyBackward(const Napi::CallbackInfo& info) {
  Args args(info, "crossEntropyBackward", 10);
  int64_t gStride = args.int_(4), rows = args.int_(7), V = args.int_(8, 1);
  if (gStride > 1) args.fail("gStride must be 0 (one shared gradient) or 1 (one per row)");
  float scale = static_cast<float>(args.num(5));
  int32_t ignoreIndex = static_cast<int32_t>(args.int_(9, INT32_MIN));
  const float* logits = args.f32(0, rows * V);
  const int32_t* t = args.i32(1, rows);
  const float* lse = args.f32(2, rows);
  const float* g = args.f32(3, gStride == 0 ? 1 : rows);
  float* dl = args.f32(6, rows * V);
  checkTargets(args, t, rows, V, ignoreIndex);
  parallelFor(rows, rowGrain(V), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; r++) {
      const float* __restrict x = logits + r * V;
      float* __restrict d = dl + r * V;
      if (t[r] == ignoreIndex) {
#pragma omp simd
        for (int64_t j = 0; j < V; j++) d[j] = 0;
        continue;
      }
      float gr = g[r * gStride] * scale, l = lse[r];
#pragma omp simd
      for (int64_t j = 0; j < V; j++) d[j] = vmath::exp(x[j] - l) * gr;
      d[t[r]] -= gr;
    }
  });
  return info.Env().Undefined();
}
IK_EXPORT("crossEntropyBackward", crossEntropyBackward);

}  // namespace
}  // namespace ik
