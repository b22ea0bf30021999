// Optimizer kernels: one fused pass per parameter (decay, moments, update), and a deterministic sum of squares
// for gradient-norm clipping.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "common.h"

namespace ik {
namespace {

// GCC will not vectorise sqrtf unless built with -fno-math-errno, so the AdamW body spells out its vector width.
// Every rounding step is explicit (fma where fused) so the vector and scalar paths agree bit for bit.
#if defined(__AVX512F__)
#define IK_OPTIM_VECTOR 1
constexpr int64_t kLanes = 16;
using VecF = __m512;
inline VecF vset(float x) { return _mm512_set1_ps(x); }
inline VecF vload(const float* p) { return _mm512_loadu_ps(p); }
inline void vstore(float* p, VecF x) { _mm512_storeu_ps(p, x); }
inline VecF vsqrt(VecF x) { return _mm512_maskz_sqrt_ps(0xffff, x); }  // GCC 12 warns on _mm512_sqrt_ps
inline VecF vfma(VecF a, VecF b, VecF c) { return _mm512_fmadd_ps(a, b, c); }
#elif defined(__AVX2__) && defined(__FMA__)
#define IK_OPTIM_VECTOR 1
constexpr int64_t kLanes = 8;
using VecF = __m256;
inline VecF vset(float x) { return _mm256_set1_ps(x); }
inline VecF vload(const float* p) { return _mm256_loadu_ps(p); }
inline void vstore(float* p, VecF x) { _mm256_storeu_ps(p, x); }
inline VecF vsqrt(VecF x) { return _mm256_sqrt_ps(x); }
inline VecF vfma(VecF a, VecF b, VecF c) { return _mm256_fmadd_ps(a, b, c); }
#endif

void requireSameLength(const Args& args, size_t n, size_t first, size_t last) {
  for (size_t i = first; i <= last; i++)
    if (!args.isNull(i) && args.length(i) != n)
      args.fail("argument " + std::to_string(i) + " has " + std::to_string(args.length(i)) +
                " elements, the parameter has " + std::to_string(n));
}

struct AdamwScalars {
  float decay, w1, b2, w2, stepSize, bc2Sqrt, eps;
};

// p ← p·decay − stepSize·m̂/(√v̂ + eps) with m ← m + w1·(g − m), v ← v·b2 + w2·g², over [lo, hi).
void adamwRange(float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v,
                const AdamwScalars& s, int64_t lo, int64_t hi) {
  int64_t i = lo;
#ifdef IK_OPTIM_VECTOR
  const VecF w1 = vset(s.w1), b2 = vset(s.b2), w2 = vset(s.w2), decay = vset(s.decay), negStep = vset(-s.stepSize),
             bc2Sqrt = vset(s.bc2Sqrt), eps = vset(s.eps);
  for (; i + kLanes <= hi; i += kLanes) {
    VecF gi = vload(g + i), m0 = vload(m + i), v0 = vload(v + i);
    VecF mi = vfma(w1, gi - m0, m0);
    VecF vi = vfma(w2 * gi, gi, v0 * b2);
    vstore(m + i, mi);
    vstore(v + i, vi);
    VecF denom = vsqrt(vi) / bc2Sqrt + eps;
    vstore(p + i, vfma(negStep, mi / denom, vload(p + i) * decay));
  }
#endif
  for (; i < hi; i++) {
    float gi = g[i], m0 = m[i], v0 = v[i];
    float mi = std::fma(s.w1, gi - m0, m0);
    float vi = std::fma(s.w2 * gi, gi, v0 * s.b2);
    m[i] = mi;
    v[i] = vi;
    float denom = __builtin_sqrtf(vi) / s.bc2Sqrt + s.eps;
    p[i] = std::fma(-s.stepSize, mi / denom, p[i] * s.decay);
  }
}

// adamwStep(p, g, m, v, lr, beta1, beta2, eps, weightDecay, step): torch.optim.AdamW for one parameter.
// Scalars are formed in double and rounded once to f32, as torch does for an f32 tensor.
Napi::Value adamwStep(const Napi::CallbackInfo& info) {
  Args args(info, "adamwStep", 10);
  size_t n = args.length(0);
  requireSameLength(args, n, 1, 3);
  float* p = args.f32(0, n);
  const float* g = args.f32(1, n);
  float* m = args.f32(2, n);
  float* v = args.f32(3, n);
  double lr = args.num(4), beta1 = args.num(5), beta2 = args.num(6), eps = args.num(7), wd = args.num(8);
  double step = static_cast<double>(args.int_(9, 1));
  AdamwScalars s{static_cast<float>(1.0 - lr * wd),
                 static_cast<float>(1.0 - beta1),
                 static_cast<float>(beta2),
                 static_cast<float>(1.0 - beta2),
                 static_cast<float>(lr / (1.0 - std::pow(beta1, step))),
                 static_cast<float>(std::sqrt(1.0 - std::pow(beta2, step))),
                 static_cast<float>(eps)};
  parallelFor(static_cast<int64_t>(n), 1 << 14, [&](int64_t lo, int64_t hi) { adamwRange(p, g, m, v, s, lo, hi); });
  return info.Env().Undefined();
}
IK_EXPORT("adamwStep", adamwStep);

// sgdStep(p, g, buf, lr, momentum, weightDecay, first): torch.optim.SGD for one parameter (no dampening).
// buf is null without momentum; on the first step it is set to the gradient rather than decayed.
Napi::Value sgdStep(const Napi::CallbackInfo& info) {
  Args args(info, "sgdStep", 7);
  size_t n = args.length(0);
  requireSameLength(args, n, 1, 2);
  float* __restrict p = args.f32(0, n);
  const float* __restrict g = args.f32(1, n);
  float* __restrict buf = args.isNull(2) ? nullptr : args.f32(2, n);
  const float lr = static_cast<float>(args.num(3));
  const float momentum = static_cast<float>(args.num(4));
  const float wd = static_cast<float>(args.num(5));
  const bool first = args.flag(6);
  parallelFor(static_cast<int64_t>(n), 1 << 14, [&](int64_t lo, int64_t hi) {
    if (!buf) {
#pragma omp simd
      for (int64_t i = lo; i < hi; i++) p[i] -= lr * (wd != 0.0f ? g[i] + wd * p[i] : g[i]);
    } else if (first) {
#pragma omp simd
      for (int64_t i = lo; i < hi; i++) {
        float d = wd != 0.0f ? g[i] + wd * p[i] : g[i];
        buf[i] = d;
        p[i] -= lr * d;
      }
    } else {
#pragma omp simd
      for (int64_t i = lo; i < hi; i++) {
        float d = wd != 0.0f ? g[i] + wd * p[i] : g[i];
        float b = buf[i] * momentum + d;
        buf[i] = b;
        p[i] -= lr * b;
      }
    }
  });
  return info.Env().Undefined();
}
IK_EXPORT("sgdStep", sgdStep);

// sumSquares(x) → Σ x² in double. Fixed-size blocks summed separately and combined in order, so the result does
// not depend on the thread count.
Napi::Value sumSquares(const Napi::CallbackInfo& info) {
  Args args(info, "sumSquares", 1);
  size_t n = args.length(0);
  const float* __restrict x = args.f32(0, n);
  constexpr int64_t block = 1 << 15;
  int64_t blocks = (static_cast<int64_t>(n) + block - 1) / block;
  std::vector<double> partial(static_cast<size_t>(blocks));
  parallelFor(blocks, 4, [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; b++) {
      int64_t end = std::min(static_cast<int64_t>(n), (b + 1) * block);
      double acc = 0;
#pragma omp simd reduction(+ : acc)
      for (int64_t i = b * block; i < end; i++) acc += static_cast<double>(x[i]) * x[i];
      partial[b] = acc;
    }
  });
  double total = 0;
  for (double s : partial) total += s;
  return Napi::Number::New(info.Env(), total);
}
IK_EXPORT("sumSquares", sumSquares);

}  // namespace
}  // namespace ik
