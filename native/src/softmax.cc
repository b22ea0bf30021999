// Softmax and log-softmax over one axis, forward and backward. The tensor is seen as (outer, n, inner) with the
// axis of length n; inner == 1 (the last axis) is the fast path, one contiguous row per (outer) index.
#include <cmath>
#include <limits>
#include <vector>

#include "common.h"
#include "nn_math.h"

namespace ik {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

void softmaxRow(const float* __restrict x, float* __restrict y, int64_t n, bool log) {
  float m = kNegInf;
#pragma omp simd reduction(max : m)
  for (int64_t j = 0; j < n; j++) m = m > x[j] ? m : x[j];  // this form vectorises; std::max here does not
  float s = 0;
  if (log) {
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < n; j++) s += vmath::exp(x[j] - m);
    float lse = m + std::log(s);
#pragma omp simd
    for (int64_t j = 0; j < n; j++) y[j] = x[j] - lse;
    return;
  }
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < n; j++) {
    float e = vmath::exp(x[j] - m);
    y[j] = e;
    s += e;
  }
  float inv = 1.0f / s;
#pragma omp simd
  for (int64_t j = 0; j < n; j++) y[j] *= inv;
}

// dx = y·(g − Σ g·y) for softmax; dx = g − exp(y)·Σ g for log-softmax (y is the forward output).
void softmaxRowBackward(const float* __restrict y, const float* __restrict g, float* __restrict dx, int64_t n,
                        bool log) {
  float s = 0;
  if (log) {
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < n; j++) s += g[j];
#pragma omp simd
    for (int64_t j = 0; j < n; j++) dx[j] = g[j] - vmath::exp(y[j]) * s;
    return;
  }
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < n; j++) s += g[j] * y[j];
#pragma omp simd
  for (int64_t j = 0; j < n; j++) dx[j] = y[j] * (g[j] - s);
}

// One (n, inner) block of a non-last axis: the same steps, vectorised across the contiguous inner index.
void softmaxBlock(const float* __restrict x, float* __restrict y, int64_t n, int64_t inner, bool log,
                  std::vector<float>& scratch) {
  scratch.resize(2 * inner);
  float* __restrict m = scratch.data();
  float* __restrict s = m + inner;
  for (int64_t k = 0; k < inner; k++) m[k] = kNegInf, s[k] = 0;
  for (int64_t j = 0; j < n; j++)
#pragma omp simd
    for (int64_t k = 0; k < inner; k++) m[k] = std::max(m[k], x[j * inner + k]);
  for (int64_t j = 0; j < n; j++)
#pragma omp simd
    for (int64_t k = 0; k < inner; k++) {
      float e = vmath::exp(x[j * inner + k] - m[k]);
      y[j * inner + k] = e;  // log-softmax overwrites it below
      s[k] += e;
    }
  if (log) {
    for (int64_t k = 0; k < inner; k++) m[k] += std::log(s[k]);
    for (int64_t j = 0; j < n; j++)
#pragma omp simd
      for (int64_t k = 0; k < inner; k++) y[j * inner + k] = x[j * inner + k] - m[k];
    return;
  }
  for (int64_t k = 0; k < inner; k++) s[k] = 1.0f / s[k];
  for (int64_t j = 0; j < n; j++)
#pragma omp simd
    for (int64_t k = 0; k < inner; k++) y[j * inner + k] *= s[k];
}

void softmaxBlockBackward(const float* __restrict y, const float* __restrict g, float* __restrict dx, int64_t n,
                          int64_t inner, bool log, std::vector<float>& scratch) {
  scratch.resize(inner);
  float* __restrict s = scratch.data();
  for (int64_t k = 0; k < inner; k++) s[k] = 0;
  if (log) {
    for (int64_t j = 0; j < n; j++)
#pragma omp simd
      for (int64_t k = 0; k < inner; k++) s[k] += g[j * inner + k];
    for (int64_t j = 0; j < n; j++)
#pragma omp simd
      for (int64_t k = 0; k < inner; k++) dx[j * inner + k] = g[j * inner + k] - vmath::exp(y[j * inner + k]) * s[k];
    return;
  }
  for (int64_t j = 0; j < n; j++)
#pragma omp simd
    for (int64_t k = 0; k < inner; k++) s[k] += g[j * inner + k] * y[j * inner + k];
  for (int64_t j = 0; j < n; j++)
#pragma omp simd
    for (int64_t k = 0; k < inner; k++) dx[j * inner + k] = y[j * inner + k] * (g[j * inner + k] - s[k]);
}

// softmaxForward(x, y, outer, n, inner, log)
Napi::Value softmaxForward(const Napi::CallbackInfo& info) {
  Args args(info, "softmaxForward", 6);
  int64_t outer = args.int_(2), n = args.int_(3, 1), inner = args.int_(4, 1);
  bool log = args.flag(5);
  size_t total = outer * n * inner;
  const float* x = args.f32(0, total);
  float* y = args.f32(1, total);
  if (inner == 1) {
    parallelFor(outer, rowGrain(n), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; r++) softmaxRow(x + r * n, y + r * n, n, log);
    });
  } else {
    parallelFor(outer, rowGrain(n * inner), [&](int64_t lo, int64_t hi) {
      static thread_local std::vector<float> scratch;
      for (int64_t r = lo; r < hi; r++) softmaxBlock(x + r * n * inner, y + r * n * inner, n, inner, log, scratch);
    });
  }
  return info.Env().Undefined();
}
IK_EXPORT("softmaxForward", softmaxForward);

// softmaxBackward(y, g, dx, outer, n, inner, log)
Napi::Value softmaxBackward(const Napi::CallbackInfo& info) {
  Args args(info, "softmaxBackward", 7);
  int64_t outer = args.int_(3), n = args.int_(4, 1), inner = args.int_(5, 1);
  bool log = args.flag(6);
  size_t total = outer * n * inner;
  const float* y = args.f32(0, total);
  const float* g = args.f32(1, total);
  float* dx = args.f32(2, total);
  if (inner == 1) {
    parallelFor(outer, rowGrain(n), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; r++) softmaxRowBackward(y + r * n, g + r * n, dx + r * n, n, log);
    });
  } else {
    parallelFor(outer, rowGrain(n * inner), [&](int64_t lo, int64_t hi) {
      static thread_local std::vector<float> scratch;
      for (int64_t r = lo; r < hi; r++) {
        int64_t off = r * n * inner;
        softmaxBlockBackward(y + off, g + off, dx + off, n, inner, log, scratch);
      }
    });
  }
  return info.Env().Undefined();
}
IK_EXPORT("softmaxBackward", softmaxBackward);

}  // namespace
}  // namespace ik
