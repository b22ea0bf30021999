// Math shared by the fused neural-network kernels (softmax, cross-entropy): a vectorisable exp and row grains.
#pragma once
#include <algorithm>
#include <cstdint>

namespace ik {

// exp(x) without a libm call, so that loops using it vectorise (glibc's vector expf needs -ffast-math).
// x = k·ln2 + r with |r| <= ln2/2, e^r by its degree-7 Taylor polynomial (error < 1e-8 relative), 2^k built
// in the exponent bits. Inputs below -88 give exactly 0 (so -inf, as in masked logits, gives 0); NaN stays NaN.
inline float fastExp(float x) {
  x = std::min(std::max(x, -88.0f), 88.0f);
  // Round to nearest by the 1.5·2^23 trick: exact, and it vectorises without SSE rounding-mode questions.
  float k = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  // Cody–Waite: ln2 split so that k·ln2Hi is exact for |k| <= 128.
  float r = x - k * 0.693145751953125f;
  r = r - k * 1.42860682030941723e-6f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  // k = -127 gives a zero exponent field, i.e. 0: exp underflows to 0 as it should.
  int32_t bits = (static_cast<int32_t>(k) + 127) << 23;
  float scale;
  __builtin_memcpy(&scale, &bits, 4);
  return p * scale;
}

// Rows per parallel chunk so that each chunk carries at least ~16K elements of work.
inline int64_t rowGrain(int64_t cols) { return std::max<int64_t>(1, (int64_t(1) << 14) / std::max<int64_t>(cols, 1)); }

}  // namespace ik
