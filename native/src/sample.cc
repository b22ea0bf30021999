// Token sampling from logits rows: temperature sampling from the full distribution (inverse CDF) or greedy, with
// each chosen token's log-probability. The uniforms come from the caller's seeded generator, so runs repeat.
#include <cmath>

#include "common.h"
#include "vmath.h"

namespace ik {
namespace {

// sampleRows(logits (B, V), uniforms (B), temperature (0 = greedy), tokens i32 (B), logprobs f32 (B))
Napi::Value sampleRows(const Napi::CallbackInfo& info) {
  Args args(info, "sampleRows", 5);
  size_t B = args.length(1);
  if (B == 0 || args.length(0) % B != 0) args.fail("logits length must be a multiple of the row count");
  int64_t V = static_cast<int64_t>(args.length(0) / B);
  const float* logits = args.f32(0, B * V);
  const float* u = args.f32(1, B);
  float temperature = static_cast<float>(args.num(2));
  int32_t* tokens = args.i32(3, B);
  float* logprobs = args.f32(4, B);
  if (!(temperature >= 0.0f)) args.fail("temperature must be >= 0");
  float invT = temperature > 0.0f ? 1.0f / temperature : 1.0f;
  parallelFor(static_cast<int64_t>(B), 1, [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; b++) {
      const float* x = logits + b * V;
      int64_t arg = 0;
      for (int64_t j = 1; j < V; j++)
        if (x[j] > x[arg]) arg = j;
      float m = x[arg];
      float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
      for (int64_t j = 0; j < V; j++) sum += vmath::exp((x[j] - m) * invT);
      int64_t pick = arg;
      if (temperature > 0.0f) {
        // Inverse CDF in double so that the tail is reachable and the walk does not drift.
        double target = static_cast<double>(u[b]) * sum, acc = 0.0;
        for (int64_t j = 0; j < V; j++) {
          acc += vmath::exp((x[j] - m) * invT);
          if (acc > target) {
            pick = j;
            break;
          }
        }
      }
      tokens[b] = static_cast<int32_t>(pick);
      logprobs[b] = (x[pick] - m) * invT - std::log(sum);
    }
  });
  return info.Env().Undefined();
}
IK_EXPORT("sampleRows", sampleRows);

}  // namespace
}  // namespace ik
