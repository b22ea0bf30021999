// Vectorisable float math for the elementwise and reduction kernels. glibc's expf/logf/tanhf are scalar calls
// (their vector versions need -ffast-math), which would stop the compiler vectorising any loop that uses them.
// These are branch-free (selects only), accurate to a few ulp, and keep IEEE special values.
#pragma once
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <limits>

namespace ik {
namespace vmath {

// Always inlined: an out-of-line call inside a loop would stop it from vectorising.

constexpr float kLog2e = 1.44269504088896341f;
// ln 2 split so that n·kLn2Hi is exact for |n| < 512 (kLn2Hi has 15 significant bits).
constexpr float kLn2Hi = 0.693145751953125f;
constexpr float kLn2Lo = 1.42860682028622680e-6f;
constexpr float kRoundMagic = 12582912.0f;  // 1.5·2^23: adding and subtracting it rounds to nearest integer

[[gnu::always_inline]] inline float bitsToFloat(int32_t b) {
  float f;
  __builtin_memcpy(&f, &b, 4);
  return f;
}
[[gnu::always_inline]] inline int32_t floatToBits(float f) {
  int32_t b;
  __builtin_memcpy(&b, &f, 4);
  return b;
}

// 2^n for n in [-126, 127].
[[gnu::always_inline]] inline float pow2(int32_t n) { return bitsToFloat((n + 127) << 23); }

// Splits x = n·ln2 + r with |r| <= ln2/2.
[[gnu::always_inline]] inline float reduceLn2(float x, float& n) {
  n = (x * kLog2e + kRoundMagic) - kRoundMagic;
  float r = x - n * kLn2Hi;
  return r - n * kLn2Lo;
}

// e^x: inf above ~88.72, gradual underflow to 0 below, NaN stays NaN.
[[gnu::always_inline]] inline float exp(float x) {
  float xc = x < -104.0f ? -104.0f : (x > 88.8f ? 88.8f : x);
  xc = x != x ? 0.0f : xc;  // keeps the integer conversion below defined
  float n;
  float r = reduceLn2(xc, n);
  // Taylor polynomial to r^7/7!: truncation error < 6e-9 relative on |r| <= ln2/2.
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  // n is in [-150, 128]: two normal powers of two cover it, and their product rounds subnormals correctly.
  int32_t ni = static_cast<int32_t>(n);
  int32_t half = ni >> 1;
  float res = p * pow2(half) * pow2(ni - half);
  return x != x ? x : res;
}

// e^y - 1 for y in [-20, 0], accurate relative to the result (so small |y| keeps its digits).
[[gnu::always_inline]] inline float expm1NonPositive(float y) {
  float n;
  float r = reduceLn2(y, n);
  float q = 1.0f / 40320.0f;
  q = q * r + 1.0f / 5040.0f;
  q = q * r + 1.0f / 720.0f;
  q = q * r + 1.0f / 120.0f;
  q = q * r + 1.0f / 24.0f;
  q = q * r + 1.0f / 6.0f;
  q = q * r + 0.5f;
  q = q * r * r + r;  // e^r - 1
  float s = pow2(static_cast<int32_t>(n));
  return s * q + (s - 1.0f);
}

// tanh through e^{-2|x|} - 1, which has no cancellation near 0; |x| > 10 rounds to ±1 anyway.
[[gnu::always_inline]] inline float tanh(float x) {
  float a = x < 0.0f ? -x : x;
  a = x != x ? 0.0f : a;
  float e = expm1NonPositive(-2.0f * (a > 10.0f ? 10.0f : a));
  float t = (0.0f - e) / (2.0f + e);  // +0 for x = 0, where -e would be -0
  float res = x < 0.0f ? -t : t;
  return x != x ? x : res;
}

[[gnu::always_inline]] inline float sigmoid(float x) { return 1.0f / (1.0f + vmath::exp(-x)); }

// ln x via x = 2^e·m with m in [√½, √2) and ln m = 2·atanh((m-1)/(m+1)) as an odd series.
[[gnu::always_inline]] inline float log(float x) {
  constexpr float kMinNormal = std::numeric_limits<float>::min();
  bool subnormal = x < kMinNormal;
  float xs = subnormal ? x * 8388608.0f : x;  // 2^23 lifts subnormals into the normal range
  int32_t bits = floatToBits(xs);
  int32_t e = ((bits >> 23) & 0xff) - 127;
  float m = bitsToFloat((bits & 0x7fffff) | 0x3f800000);
  bool high = m > 1.41421356f;
  m = high ? m * 0.5f : m;
  float s = (m - 1.0f) / (m + 1.0f);  // |s| <= 0.1716
  float s2 = s * s;
  float p = 1.0f / 11.0f;
  p = p * s2 + 1.0f / 9.0f;
  p = p * s2 + 1.0f / 7.0f;
  p = p * s2 + 1.0f / 5.0f;
  p = p * s2 + 1.0f / 3.0f;
  p = p * s2 + 1.0f;
  float ef = static_cast<float>(e) + (high ? 1.0f : 0.0f) - (subnormal ? 23.0f : 0.0f);
  float res = ef * kLn2Hi + (2.0f * s * p + ef * kLn2Lo);
  constexpr float kInf = std::numeric_limits<float>::infinity();
  constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
  res = x == 0.0f ? -kInf : res;
  res = x == kInf ? kInf : res;
  res = x < 0.0f ? kNaN : res;
  return x != x ? x : res;
}

// erfc(|x|) with relative error < 1.2e-7 everywhere (the Chebyshev fit of Numerical Recipes' erfcc), so that
// exact GELU vectorises and stays accurate in its tail, where 1 + erf(x) would cancel.
[[gnu::always_inline]] inline float erfcAbs(float x) {
  float z = x < 0.0f ? -x : x;
  float t = 1.0f / (1.0f + 0.5f * z);
  float p = 0.17087277f;
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  return t * vmath::exp(p - z * z);
}

// Φ(x), the standard normal CDF: ½·erfc(-x/√2), computed without cancellation on either side.
[[gnu::always_inline]] inline float normalCdf(float x) {
  float tail = 0.5f * erfcAbs(x * 0.70710678118654752f);
  return x < 0.0f ? tail : 1.0f - tail;
}

// y = sqrt(x) over arrays. libm's sqrtf keeps errno, which blocks vectorisation; the sqrt instruction is exact.
inline void sqrtArray(const float* __restrict x, float* __restrict y, int64_t n) {
  int64_t i = 0;
#if defined(__AVX__)
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_sqrt_ps(_mm256_loadu_ps(x + i)));
#endif
  for (; i < n; i++) y[i] = std::sqrt(x[i]);
}

}  // namespace vmath
}  // namespace ik
