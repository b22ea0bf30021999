// Rotary position embedding, Hugging Face Llama convention (rotate_half): within each head, dimension i of the
// first half of the rotary dims pairs with dimension i + rotaryDim/2, rotated by angle pos·invFreq[i] (the caller
// computes the frequencies: theta^(-2i/rotaryDim), or a scaled variant such as Llama 3's). Dimensions past rotaryDim
// pass through. The inverse rotation (the backward) is the same with sin negated.
#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "common.h"

namespace ik {
namespace {

// cos/sin of every (position, frequency) pair for one set of frequencies, for positions [0, count): the
// trigonometry costs far more than a rotation, so it is done once per position for the life of the process.
struct Table {
  std::vector<float> invFreq, cs, sn;
  int64_t count = 0;
};
constexpr int64_t kMaxTableValues = int64_t(1) << 22;  // per array; positions past it are computed per call
std::mutex tablesLock;
std::map<std::vector<float>, Table> tables;

// Angles are rounded to f32 as Hugging Face computes them, so the rotations match its tables.
void anglesAt(const Table& t, int64_t pos, float* cs, float* sn) {
  float p = static_cast<float>(pos);
  for (size_t i = 0; i < t.invFreq.size(); i++) {
    double angle = static_cast<double>(p * t.invFreq[i]);
    cs[i] = static_cast<float>(std::cos(angle));
    sn[i] = static_cast<float>(std::sin(angle));
  }
}

Table& tableFor(const std::vector<float>& invFreq, int64_t needed) {
  Table& t = tables[invFreq];
  int64_t half = static_cast<int64_t>(invFreq.size());
  if (t.invFreq.empty()) t.invFreq = invFreq;
  needed = std::min(needed, kMaxTableValues / half);
  if (needed <= t.count) return t;
  int64_t from = t.count, to = std::min(std::max(needed, 2 * t.count), kMaxTableValues / half);
  t.cs.resize(to * half);
  t.sn.resize(to * half);
  parallelFor(to - from, 16, [&](int64_t lo, int64_t hi) {
    for (int64_t p = from + lo; p < from + hi; p++) anglesAt(t, p, t.cs.data() + p * half, t.sn.data() + p * half);
  });
  t.count = to;
  return t;
}

// ropeApply(x, positions, y, B, T, H, hd, rotaryDim, invFreq, perBatch, inverse)
// x, y (B, T, H, hd); positions (T), or (B, T) when perBatch; invFreq (rotaryDim / 2).
Napi::Value ropeApply(const Napi::CallbackInfo& info) {
  Args args(info, "ropeApply", 11);
  int64_t B = args.int_(3), T = args.int_(4), H = args.int_(5), hd = args.int_(6, 1), rd = args.int_(7, 2);
  bool perBatch = args.flag(9), inverse = args.flag(10);
  if (rd % 2 != 0 || rd > hd)
    args.fail("rotaryDim " + std::to_string(rd) + " must be even and at most the head dim " + std::to_string(hd));
  const float* freqs = args.f32(8, rd / 2);
  std::vector<float> invFreq(freqs, freqs + rd / 2);
  for (float f : invFreq)
    if (!(f > 0 && std::isfinite(f))) args.fail("every frequency must be positive and finite");
  size_t total = B * T * H * hd;
  const float* x = args.f32(0, total);
  int64_t npos = perBatch ? B * T : T;
  const int32_t* pos = args.i32(1, npos);
  float* y = args.f32(2, total);
  int64_t half = rd / 2;
  int64_t maxPos = -1;
  for (int64_t i = 0; i < npos; i++) maxPos = std::max<int64_t>(maxPos, pos[i]);
  std::lock_guard<std::mutex> hold(tablesLock);
  const Table& table = tableFor(invFreq, maxPos + 1);
  float sign = inverse ? -1.0f : 1.0f;
  parallelFor(B * T, std::max<int64_t>(1, (1 << 13) / std::max<int64_t>(H * hd, 1)), [&](int64_t lo, int64_t hi) {
    static thread_local std::vector<float> scratch;
    for (int64_t bt = lo; bt < hi; bt++) {
      int64_t p = pos[perBatch ? bt : bt % T];
      const float* cs;
      const float* sn;
      if (p >= 0 && p < table.count) {
        cs = table.cs.data() + p * half;
        sn = table.sn.data() + p * half;
      } else {  // negative, or past the table's cap
        scratch.resize(2 * half);
        anglesAt(table, p, scratch.data(), scratch.data() + half);
        cs = scratch.data();
        sn = scratch.data() + half;
      }
      for (int64_t h = 0; h < H; h++) {
        const float* __restrict xr = x + (bt * H + h) * hd;
        float* __restrict yr = y + (bt * H + h) * hd;
#pragma omp simd
        for (int64_t i = 0; i < half; i++) {
          float a = xr[i], b = xr[i + half], c = cs[i], s = sign * sn[i];
          yr[i] = a * c - b * s;
          yr[i + half] = b * c + a * s;
        }
        for (int64_t i = rd; i < hd; i++) yr[i] = xr[i];
      }
    }
  });
  return info.Env().Undefined();
}
IK_EXPORT("ropeApply", ropeApply);

}  // namespace
}  // namespace ik
