// Reductions over one axis of a tensor seen as (outer, R, inner): sum, max/argmax, logsumexp, and their
// backward scatters. Every output is owned by one thread, or (few outputs, long axis) R is split into a fixed
// number of chunks whose partial sums are combined in order, so results repeat bit for bit.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "common.h"
#include "vmath.h"

namespace ik {
namespace {

constexpr int64_t kWork = 1 << 14;  // elements of input per parallel chunk, at least
constexpr int64_t kTile = 512;      // columns accumulated together: the accumulators stay in L1

struct Axis {
  int64_t outer, R, inner;
  int64_t outputs() const { return outer * inner; }
  int64_t total() const { return outer * R * inner; }
};

Axis axisArgs(const Args& args, size_t i) { return {args.int_(i), args.int_(i + 1), args.int_(i + 2)}; }

int64_t outputGrain(const Axis& a) { return std::max<int64_t>(1, kWork / std::max<int64_t>(a.R, 1)); }

// Calls fn(o, c0, c1) for the (row o, columns [c0, c1)) pieces of the flat output range [lo, hi).
template <typename F>
void forColumnRuns(int64_t inner, int64_t lo, int64_t hi, F&& fn) {
  while (lo < hi) {
    int64_t o = lo / inner, c0 = lo % inner;
    int64_t c1 = std::min(inner, c0 + (hi - lo));
    for (int64_t t = c0; t < c1; t += kTile) fn(o, t, std::min(c1, t + kTile));
    lo += c1 - c0;
  }
}

// A contiguous sum: float lanes within blocks, blocks added in double so that long rows stay accurate.
float sumContiguous(const float* x, int64_t n) {
  double total = 0;
  for (int64_t b = 0; b < n; b += 4096) {
    int64_t e = std::min(n, b + 4096);
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = b; i < e; i++) s += x[i];
    total += s;
  }
  return static_cast<float>(total);
}

// acc[0:w] = Σ_{r in [r0, r1)} x[r·inner + 0:w]
void sumColumns(const float* x, float* acc, int64_t inner, int64_t r0, int64_t r1, int64_t w) {
  for (int64_t j = 0; j < w; j++) acc[j] = 0.0f;
  for (int64_t r = r0; r < r1; r++) {
    const float* row = x + r * inner;
#pragma omp simd
    for (int64_t j = 0; j < w; j++) acc[j] += row[j];
  }
}

// sumAxis(x, out, outer, R, inner, scale): out[o, i] = scale · Σ_r x[o, r, i]
Napi::Value sumAxis(const Napi::CallbackInfo& info) {
  Args args(info, "sumAxis", 6);
  Axis a = axisArgs(args, 2);
  const float* x = args.f32(0, a.total());
  float* out = args.f32(1, a.outputs());
  const float scale = static_cast<float>(args.num(5));
  const int64_t outputs = a.outputs();
  if (a.R == 0) {
    std::fill(out, out + outputs, 0.0f);
    return info.Env().Undefined();
  }
  const int threads = omp_get_max_threads();
  if (threads > 1 && outputs < threads * 64 && a.R >= 4 * threads && a.total() > kWork) {
    // Few outputs, long axis: each chunk of R sums into its own partial row; chunks are added in order.
    const int64_t chunks = threads;
    std::vector<float> partial(chunks * outputs);
    parallelFor(chunks, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t c = lo; c < hi; c++) {
        int64_t r0 = a.R * c / chunks, r1 = a.R * (c + 1) / chunks;
        float* part = partial.data() + c * outputs;
        for (int64_t o = 0; o < a.outer; o++) {
          const float* base = x + o * a.R * a.inner;
          if (a.inner == 1) part[o] = sumContiguous(base + r0, r1 - r0);
          else sumColumns(base, part + o * a.inner, a.inner, r0, r1, a.inner);
        }
      }
    });
    for (int64_t i = 0; i < outputs; i++) {
      float s = 0;
      for (int64_t c = 0; c < chunks; c++) s += partial[c * outputs + i];
      out[i] = scale * s;
    }
    return info.Env().Undefined();
  }
  if (a.inner == 1) {
    parallelFor(a.outer, outputGrain(a), [&](int64_t lo, int64_t hi) {
      for (int64_t o = lo; o < hi; o++) out[o] = scale * sumContiguous(x + o * a.R, a.R);
    });
    return info.Env().Undefined();
  }
  parallelFor(outputs, outputGrain(a), [&](int64_t lo, int64_t hi) {
    forColumnRuns(a.inner, lo, hi, [&](int64_t o, int64_t c0, int64_t c1) {
      float* acc = out + o * a.inner + c0;
      sumColumns(x + o * a.R * a.inner + c0, acc, a.inner, 0, a.R, c1 - c0);
      if (scale != 1.0f)
        for (int64_t j = 0; j < c1 - c0; j++) acc[j] *= scale;
    });
  });
  return info.Env().Undefined();
}
IK_EXPORT("sumAxis", sumAxis);

// maxAxis(x, values | null, indices, outer, R, inner): the maximum over R and its first index. NaN wins.
Napi::Value maxAxis(const Napi::CallbackInfo& info) {
  Args args(info, "maxAxis", 6);
  Axis a = axisArgs(args, 3);
  if (a.R < 1) args.fail("cannot take the maximum over an empty axis");
  const float* x = args.f32(0, a.total());
  float* values = args.isNull(1) ? nullptr : args.f32(1, a.outputs());
  int32_t* indices = args.i32(2, a.outputs());
  if (a.R > std::numeric_limits<int32_t>::max()) args.fail("axis too long for int32 indices");
  if (a.inner == 1) {
    parallelFor(a.outer, outputGrain(a), [&](int64_t lo, int64_t hi) {
      for (int64_t o = lo; o < hi; o++) {
        const float* row = x + o * a.R;
        // One vectorised pass for the maximum, then the first position holding it.
        float m = row[0];
        int nan = 0;
#pragma omp simd reduction(max : m) reduction(| : nan)
        for (int64_t i = 0; i < a.R; i++) {
          m = row[i] > m ? row[i] : m;
          nan |= row[i] != row[i];
        }
        int64_t k = 0;
        if (nan)
          while (row[k] == row[k]) k++;
        else
          while (row[k] != m) k++;
        indices[o] = static_cast<int32_t>(k);
        if (values) values[o] = row[k];
      }
    });
    return info.Env().Undefined();
  }
  parallelFor(a.outputs(), outputGrain(a), [&](int64_t lo, int64_t hi) {
    forColumnRuns(a.inner, lo, hi, [&](int64_t o, int64_t c0, int64_t c1) {
      const float* base = x + o * a.R * a.inner + c0;
      float best[kTile];
      int32_t* idx = indices + o * a.inner + c0;
      const int64_t w = c1 - c0;
      for (int64_t j = 0; j < w; j++) {
        best[j] = base[j];
        idx[j] = 0;
      }
      for (int64_t r = 1; r < a.R; r++) {
        const float* row = base + r * a.inner;
        for (int64_t j = 0; j < w; j++) {
          float v = row[j];
          bool take = v > best[j] || (v != v && best[j] == best[j]);
          best[j] = take ? v : best[j];
          idx[j] = take ? static_cast<int32_t>(r) : idx[j];
        }
      }
      if (values)
        for (int64_t j = 0; j < w; j++) values[o * a.inner + c0 + j] = best[j];
    });
  });
  return info.Env().Undefined();
}
IK_EXPORT("maxAxis", maxAxis);

// maxBackward(g, indices, dx, outer, R, inner): dx is g at each chosen index along R, 0 elsewhere.
Napi::Value maxBackward(const Napi::CallbackInfo& info) {
  Args args(info, "maxBackward", 6);
  Axis a = axisArgs(args, 3);
  const float* g = args.f32(0, a.outputs());
  const int32_t* indices = args.i32(1, a.outputs());
  float* dx = args.f32(2, a.total());
  for (int64_t i = 0; i < a.outputs(); i++)
    if (indices[i] < 0 || indices[i] >= a.R)
      args.fail("index " + std::to_string(indices[i]) + " is outside an axis of " + std::to_string(a.R));
  parallelFor(a.total(), 1 << 15, [&](int64_t lo, int64_t hi) { std::fill(dx + lo, dx + hi, 0.0f); });
  parallelFor(a.outputs(), kWork, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) {
      int64_t o = i / a.inner, j = i % a.inner;
      dx[(o * a.R + indices[i]) * a.inner + j] = g[i];
    }
  });
  return info.Env().Undefined();
}
IK_EXPORT("maxBackward", maxBackward);

// log Σ exp over a contiguous row, shifted by its maximum so that nothing overflows.
float logSumExpRow(const float* row, int64_t n) {
  float m = row[0];
  int nan = 0;
#pragma omp simd reduction(max : m) reduction(| : nan)
  for (int64_t i = 0; i < n; i++) {
    m = row[i] > m ? row[i] : m;
    nan |= row[i] != row[i];
  }
  if (nan) return std::numeric_limits<float>::quiet_NaN();
  if (m == std::numeric_limits<float>::infinity() || m == -std::numeric_limits<float>::infinity()) return m;
  float s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < n; i++) s += vmath::exp(row[i] - m);
  return m + std::log(s);
}

// logsumexpAxis(x, out, outer, R, inner): out[o, i] = log Σ_r exp(x[o, r, i])
Napi::Value logsumexpAxis(const Napi::CallbackInfo& info) {
  Args args(info, "logsumexpAxis", 5);
  Axis a = axisArgs(args, 2);
  if (a.R < 1) args.fail("cannot take logsumexp over an empty axis");
  const float* x = args.f32(0, a.total());
  float* out = args.f32(1, a.outputs());
  if (a.inner == 1) {
    parallelFor(a.outer, outputGrain(a), [&](int64_t lo, int64_t hi) {
      for (int64_t o = lo; o < hi; o++) out[o] = logSumExpRow(x + o * a.R, a.R);
    });
    return info.Env().Undefined();
  }
  parallelFor(a.outputs(), outputGrain(a), [&](int64_t lo, int64_t hi) {
    forColumnRuns(a.inner, lo, hi, [&](int64_t o, int64_t c0, int64_t c1) {
      const float* base = x + o * a.R * a.inner + c0;
      const int64_t w = c1 - c0;
      float m[kTile], s[kTile];
      for (int64_t j = 0; j < w; j++) m[j] = base[j];
      for (int64_t r = 1; r < a.R; r++) {
        const float* row = base + r * a.inner;
        for (int64_t j = 0; j < w; j++) m[j] = (row[j] > m[j] || row[j] != row[j]) ? row[j] : m[j];
      }
      for (int64_t j = 0; j < w; j++) s[j] = 0.0f;
      for (int64_t r = 0; r < a.R; r++) {
        const float* row = base + r * a.inner;
#pragma omp simd
        for (int64_t j = 0; j < w; j++) s[j] += vmath::exp(row[j] - m[j]);
      }
      float* dst = out + o * a.inner + c0;
      // An infinite or NaN maximum is the answer itself (x - m would be NaN there).
      for (int64_t j = 0; j < w; j++) dst[j] = std::isfinite(m[j]) ? m[j] + std::log(s[j]) : m[j];
    });
  });
  return info.Env().Undefined();
}
IK_EXPORT("logsumexpAxis", logsumexpAxis);

// logsumexpBackward(x, lse, g, dx, outer, R, inner): dx[o, r, i] = g[o, i] · exp(x[o, r, i] - lse[o, i])
Napi::Value logsumexpBackward(const Napi::CallbackInfo& info) {
  Args args(info, "logsumexpBackward", 7);
  Axis a = axisArgs(args, 4);
  const float* x = args.f32(0, a.total());
  const float* lse = args.f32(1, a.outputs());
  const float* g = args.f32(2, a.outputs());
  float* dx = args.f32(3, a.total());
  const int64_t rows = a.outer * a.R;
  parallelFor(rows, std::max<int64_t>(1, kWork / std::max<int64_t>(a.inner, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t row = lo; row < hi; row++) {
      const int64_t base = (row / a.R) * a.inner;
      const float* xr = x + row * a.inner;
      float* dr = dx + row * a.inner;
#pragma omp simd
      for (int64_t j = 0; j < a.inner; j++) dr[j] = g[base + j] * vmath::exp(xr[j] - lse[base + j]);
    }
  });
  return info.Env().Undefined();
}
IK_EXPORT("logsumexpBackward", logsumexpBackward);

}  // namespace
}  // namespace ik
