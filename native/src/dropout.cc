// Dropout with a counter-based mask: element i is kept iff hash(seed, i) clears the drop threshold, so the mask
// depends only on (seed, i), never on the thread count or the order of work, and the backward regenerates it
// instead of storing it.
#include <cmath>

#include "common.h"

namespace ik {
namespace {

// SplitMix64's output function: a bijective 64-bit mixer with full avalanche.
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// dropoutApply(x, y, n, p, seed): y[i] = x[i]/(1−p) where kept, else 0. Being linear in x with a fixed mask,
// the same call maps an output gradient to the input gradient.
Napi::Value dropoutApply(const Napi::CallbackInfo& info) {
  Args args(info, "dropoutApply", 5);
  int64_t n = args.int_(2);
  double p = args.num(3);
  if (!(p >= 0 && p < 1)) args.fail("p must be in [0, 1), got " + std::to_string(p));
  uint64_t key = mix64(static_cast<uint64_t>(args.int_(4)) + 0x9e3779b97f4a7c15ULL);
  const float* x = args.f32(0, n);
  float* y = args.f32(1, n);
  // Keep iff the hash's top 32 bits >= p·2^32: P(keep) = 1 − p to within 2^-32.
  uint64_t threshold = static_cast<uint64_t>(std::llround(p * 4294967296.0));
  float scale = static_cast<float>(1.0 / (1.0 - p));
  parallelFor(n, 1 << 14, [x, y, key, threshold, scale](int64_t lo, int64_t hi) {
#pragma omp simd
    for (int64_t i = lo; i < hi; i++) {
      uint64_t h = mix64(key + static_cast<uint64_t>(i) * 0x9e3779b97f4a7c15ULL);
      float keep = (h >> 32) >= threshold ? scale : 0.0f;
      y[i] = x[i] * keep;
    }
  });
  return info.Env().Undefined();
}
IK_EXPORT("dropoutApply", dropoutApply);

}  // namespace
}  // namespace ik
