// Fused scaled-dot-product attention, flash style: queries stream over key blocks with an online softmax, so the
// Tq×Tk probability matrix never exists; backward recomputes it block by block from the saved row logsumexp.
// Rows are addressed through strides, so split q/k/v (B, T, H, hd) and GPT-2's packed [q | k | v] share the kernels.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "common.h"
#include "vec.h"
#include "vmath.h"

namespace ik {
namespace {

constexpr int64_t BQ = 32;  // query rows per block
constexpr int64_t BK = 64;  // keys per block (a multiple of kLanes)
constexpr int64_t kMaxHeadDim = 256;
constexpr int64_t kMinParallelWork = 1 << 15;  // multiply-adds below which a call stays on one thread
constexpr float kNegInf = -std::numeric_limits<float>::infinity();
// Decode reads every cached key and value once per step, and the cache outgrows the L3 cache that should keep the
// weights: keys and values are prefetched this many rows ahead as non-temporal, so they pass through without
// evicting the weights (measured: decode steps ~6 % faster on the benchmark GPT).
constexpr int64_t kStreamAhead = 8;

// Aligned, grow-only scratch. Held thread_local, so each thread allocates once and never in a hot loop.
class Scratch {
 public:
  float* get(size_t n) {
    if (buf_.size() < n + kLanes) buf_.resize(n + kLanes);
    auto addr = reinterpret_cast<uintptr_t>(buf_.data());
    return reinterpret_cast<float*>((addr + 63) & ~uintptr_t(63));
  }

 private:
  std::vector<float> buf_;
};

struct Problem {
  const float *q, *k, *v, *mask;
  float* out;  // (B, Tq, Hq, hd), contiguous
  float* lse;  // (B, Hq, Tq) or null
  const float* dout;
  float *dq, *dk, *dv;  // gradients with q's and k's row strides, or null when not wanted
  // k/v row (b, j, h) starts at b·kvBatchStride + j·kvStride + h·kvHeadStride: token-major (B, Tk, Hkv, hd) as a
  // projection writes it, or head-major (B, Hkv, Tk, hd) as the KV cache keeps it.
  int64_t B, Tq, Tk, kvLen, Hq, Hkv, hd, qStride, kvStride, kvHeadStride, kvBatchStride;
  bool causal;
  float scale;

  int64_t group() const { return Hq / Hkv; }
  // Causal queries are the last Tq of the kvLen visible keys: query i sees keys j <= i + offset().
  int64_t offset() const { return kvLen - Tq; }
  // Keys [0, keyEnd(i)) are visible to query i.
  int64_t keyEnd(int64_t i) const {
    if (!causal) return kvLen;
    int64_t e = i + offset() + 1;
    return e < 0 ? 0 : (e > kvLen ? kvLen : e);
  }
  int64_t qRow(int64_t b, int64_t i, int64_t h) const { return (b * Tq + i) * qStride + h * hd; }
  int64_t kvRow(int64_t b, int64_t j, int64_t h) const { return b * kvBatchStride + j * kvStride + h * kvHeadStride; }
  int64_t outRow(int64_t b, int64_t i, int64_t h) const { return ((b * Tq + i) * Hq + h) * hd; }
  int64_t lseAt(int64_t b, int64_t h, int64_t i) const { return (b * Hq + h) * Tq + i; }
};

int64_t grainFor(int64_t workPerTask) {
  if (workPerTask < 1) workPerTask = 1;
  return workPerTask >= kMinParallelWork ? 1 : (kMinParallelWork + workPerTask - 1) / workPerTask;
}

// Additive key mask of one key block (0 or -inf; -inf past the block's end). Returns whether any key is visible.
bool blockMask(const Problem& P, int64_t b, int64_t j0, int64_t nk, float* madd) {
  const float* m = P.mask ? P.mask + b * P.Tk + j0 : nullptr;
  bool any = false;
  for (int64_t j = 0; j < BK; j++) {
    bool on = j < nk && (!m || m[j] != 0.0f);
    madd[j] = on ? 0.0f : kNegInf;
    any |= on;
  }
  return any;
}

// s[r][0..BK) = Σ_d q[r][d]·kt[d][0..BK) for R rows: kt is one key block transposed (hd × BK).
template <int R>
inline void scoreGroup(const float* q, int64_t ldq, const float* kt, int64_t hd, float* s) {
  constexpr int C = BK / kLanes;
  // Every loop over the register block is unrolled: one left rolled keeps the block in memory (measured: a memset
  // and a copy per call).
  Vec acc[R][C];
#pragma GCC unroll 8
  for (int r = 0; r < R; r++)
#pragma GCC unroll 8
    for (int c = 0; c < C; c++) acc[r][c] = Vec{};
  for (int64_t d = 0; d < hd; d++) {
    Vec kv[C];
#pragma GCC unroll 8
    for (int c = 0; c < C; c++) kv[c] = load(kt + d * BK + c * kLanes), pin(kv[c]);
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
      const float qd = q[r * ldq + d];
#pragma GCC unroll 8
      for (int c = 0; c < C; c++) acc[r][c] += qd * kv[c];
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; r++)
#pragma GCC unroll 8
    for (int c = 0; c < C; c++) store(s + r * BK + c * kLanes, acc[r][c]);
}

void scoreBlock(const float* q, int64_t ldq, int64_t rows, const float* kt, int64_t hd, float* s) {
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) scoreGroup<4>(q + r * ldq, ldq, kt, hd, s + r * BK);
  for (; r < rows; r++) scoreGroup<1>(q + r * ldq, ldq, kt, hd, s + r * BK);
}

// Rows held in registers by rowsAccumulate: about 16 accumulator vectors.
constexpr int rowsFor(int nv) { return nv <= 2 ? 8 : nv <= 4 ? 4 : nv <= 8 ? 2 : 1; }

// dst[r] = alpha[r]·dst[r] + Σ_j coef[r·cRow + j·cInner]·src[j] for R rows of width NV vectors (alpha null: 1).
template <int NV, int R>
inline void accumulateGroup(float* dst, const float* alpha, const float* coef, int64_t cRow, int64_t cInner,
                            const float* src, int64_t n) {
  constexpr int W = NV * kLanes;
  Vec acc[R][NV];
#pragma GCC unroll 16
  for (int r = 0; r < R; r++) {
    const float a = alpha ? alpha[r] : 1.0f;
#pragma GCC unroll 16
    for (int c = 0; c < NV; c++) acc[r][c] = a * load(dst + r * W + c * kLanes);
  }
  for (int64_t j = 0; j < n; j++) {
    Vec x[NV];
#pragma GCC unroll 16
    for (int c = 0; c < NV; c++) x[c] = load(src + j * W + c * kLanes), pin(x[c]);
#pragma GCC unroll 16
    for (int r = 0; r < R; r++) {
      const float w = coef[r * cRow + j * cInner];
#pragma GCC unroll 16
      for (int c = 0; c < NV; c++) acc[r][c] += w * x[c];
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; r++)
#pragma GCC unroll 16
    for (int c = 0; c < NV; c++) store(dst + r * W + c * kLanes, acc[r][c]);
}

// The same over `rows` rows; dst and src rows are NV·kLanes floats apart.
template <int NV>
void accumulateRows(float* dst, const float* alpha, int64_t rows, const float* coef, int64_t cRow, int64_t cInner,
                    const float* src, int64_t n) {
  constexpr int R = rowsFor(NV);
  constexpr int W = NV * kLanes;
  int64_t r = 0;
  for (; r + R <= rows; r += R)
    accumulateGroup<NV, R>(dst + r * W, alpha ? alpha + r : nullptr, coef + r * cRow, cRow, cInner, src, n);
  for (; r < rows; r++)
    accumulateGroup<NV, 1>(dst + r * W, alpha ? alpha + r : nullptr, coef + r * cRow, cRow, cInner, src, n);
}

// Key block kb of one (b, kv head): transposed (hd × BK) and/or as rows padded to `width`, zero past kvLen.
void packTransposed(const Problem& P, const float* src, int64_t b, int64_t kvh, int64_t kb, float* dst) {
  const int64_t j0 = kb * BK, nk = std::min(BK, P.kvLen - j0);
  for (int64_t j = 0; j < nk; j++) {
    const float* row = src + P.kvRow(b, j0 + j, kvh);
    for (int64_t d = 0; d < P.hd; d++) dst[d * BK + j] = row[d];
  }
  for (int64_t d = 0; d < P.hd; d++)
    for (int64_t j = nk; j < BK; j++) dst[d * BK + j] = 0.0f;
}

void packRows(const float* src, int64_t stride, int64_t rows, int64_t hd, int64_t width, float scale, float* dst) {
  for (int64_t r = 0; r < rows; r++) {
    const float* s = src + r * stride;
    float* d = dst + r * width;
    for (int64_t c = 0; c < hd; c++) d[c] = scale * s[c];
    for (int64_t c = hd; c < width; c++) d[c] = 0.0f;
  }
}

void packKeyRows(const Problem& P, const float* src, int64_t b, int64_t kvh, int64_t kb, int64_t width, float* dst) {
  const int64_t j0 = kb * BK, nk = std::min(BK, P.kvLen - j0);
  packRows(src + P.kvRow(b, j0, kvh), P.kvStride, nk, P.hd, width, 1.0f, dst);
  for (int64_t i = nk * width; i < BK * width; i++) dst[i] = 0.0f;
}

// Masks one score row in place (invisible → -inf) and returns its max. lim: keys [0, lim) of the block pass causality.
inline float maskRow(float* s, const float* madd, int64_t lim) {
  float mx = kNegInf;
#pragma omp simd reduction(max : mx)
  for (int64_t j = 0; j < BK; j++) {
    const float x = j < lim ? s[j] + madd[j] : kNegInf;
    s[j] = x;
    mx = x > mx ? x : mx;
  }
  return mx;
}

// ---- forward, blocked: (b, head, query block) tasks, used when enough query rows share each key block ----

template <int NV>
void forwardBlocked(const Problem& P) {
  constexpr int64_t W = NV * kLanes;
  const int64_t hd = P.hd, nQB = (P.Tq + BQ - 1) / BQ, nKB = (P.kvLen + BK - 1) / BK;
  const int64_t tasks = P.B * P.Hq * nQB;
  parallelFor(tasks, grainFor(BQ * P.kvLen * hd), [&](int64_t lo, int64_t hi) {
    static thread_local Scratch ktS, vpS, qS, oS, sS;
    float* kt = ktS.get(nKB * BK * hd);  // this thread's current (b, kv head), packed lazily block by block
    float* vp = vpS.get(nKB * BK * W);
    float* qs = qS.get(BQ * hd);
    float* o = oS.get(BQ * W);
    float* s = sS.get(BQ * BK);
    float madd[BK], m[BQ], l[BQ], alpha[BQ];
    int64_t packedFor = -1, packedBlocks = 0;
    for (int64_t t = lo; t < hi; t++) {
      const int64_t head = t / nQB, z = t % nQB;
      // Zigzag over query blocks, so a static split of a causal head gives each thread a similar share of work.
      const int64_t qb = z % 2 == 0 ? z / 2 : nQB - 1 - z / 2;
      const int64_t b = head / P.Hq, h = head % P.Hq, kvh = h / P.group();
      const int64_t i0 = qb * BQ, nq = std::min(BQ, P.Tq - i0);
      if (b * P.Hkv + kvh != packedFor) {
        packedFor = b * P.Hkv + kvh;
        packedBlocks = 0;
      }
      const int64_t kEnd = P.keyEnd(i0 + nq - 1), blocks = (kEnd + BK - 1) / BK;
      for (; packedBlocks < blocks; packedBlocks++) {
        packTransposed(P, P.k, b, kvh, packedBlocks, kt + packedBlocks * BK * hd);
        packKeyRows(P, P.v, b, kvh, packedBlocks, W, vp + packedBlocks * BK * W);
      }
      packRows(P.q + P.qRow(b, i0, h), P.qStride, nq, hd, hd, P.scale, qs);
      for (int64_t i = 0; i < nq * W; i++) o[i] = 0.0f;
      for (int64_t r = 0; r < nq; r++) m[r] = kNegInf, l[r] = 0.0f;
      for (int64_t kb = 0; kb < blocks; kb++) {
        const int64_t j0 = kb * BK, nk = std::min(BK, P.kvLen - j0);
        if (!blockMask(P, b, j0, nk, madd)) continue;
        scoreBlock(qs, hd, nq, kt + kb * BK * hd, hd, s);
        for (int64_t r = 0; r < nq; r++) {
          float* sr = s + r * BK;
          const float mnew = std::max(m[r], maskRow(sr, madd, P.keyEnd(i0 + r) - j0));
          if (mnew == kNegInf) {  // nothing visible yet: the row stays empty
            alpha[r] = 1.0f;
            for (int64_t j = 0; j < BK; j++) sr[j] = 0.0f;
            continue;
          }
          float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
          for (int64_t j = 0; j < BK; j++) {
            const float p = vmath::exp(sr[j] - mnew);
            sr[j] = p;
            sum += p;
          }
          alpha[r] = vmath::exp(m[r] - mnew);
          l[r] = l[r] * alpha[r] + sum;
          m[r] = mnew;
        }
        accumulateRows<NV>(o, alpha, nq, s, BK, 1, vp + kb * BK * W, nk);
      }
      for (int64_t r = 0; r < nq; r++) {
        const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;  // a row with no visible key outputs zeros
        float* dst = P.out + P.outRow(b, i0 + r, h);
        for (int64_t d = 0; d < hd; d++) dst[d] = o[r * W + d] * inv;
        if (P.lse) P.lse[P.lseAt(b, h, i0 + r)] = l[r] > 0.0f ? m[r] + std::log(l[r]) : kNegInf;
      }
    }
  });
}

// ---- forward, one query row per task: decode (Tq = 1) and other short query runs ----

// Non-temporal prefetch of four rows (one cache line per 16 floats).
inline void streamAhead(const float* row, int64_t stride, int64_t hd) {
  for (int64_t r = 0; r < 4; r++)
    for (int64_t d = 0; d < hd; d += kLanes) __builtin_prefetch(row + r * stride + d, 0, 0);
}

void forwardRows(const Problem& P) {
  const int64_t hd = P.hd, tasks = P.B * P.Hq * P.Tq;
  parallelFor(tasks, grainFor(2 * P.kvLen * hd), [&](int64_t lo, int64_t hi) {
    static thread_local Scratch sS, oS;
    float* s = sS.get(P.kvLen);
    float* o = oS.get(hd);
    for (int64_t t = lo; t < hi; t++) {
      const int64_t i = t % P.Tq, h = (t / P.Tq) % P.Hq, b = t / (P.Tq * P.Hq), kvh = h / P.group();
      const int64_t n = P.keyEnd(i);
      const float* q = P.q + P.qRow(b, i, h);
      const float* mask = P.mask ? P.mask + b * P.Tk : nullptr;
      const float* k0 = P.k + P.kvRow(b, 0, kvh);
      const float* v0 = P.v + P.kvRow(b, 0, kvh);
      const int64_t ks = P.kvStride;
      int64_t j = 0;
      for (; j + 4 <= n; j += 4) {  // four keys per pass over q
        const float *ka = k0 + j * ks, *kb = ka + ks, *kc = kb + ks, *kd = kc + ks;
        if (j + kStreamAhead + 4 <= n) streamAhead(k0 + (j + kStreamAhead) * ks, ks, hd);
        float sa = 0.0f, sb = 0.0f, sc = 0.0f, sd = 0.0f;
#pragma omp simd reduction(+ : sa, sb, sc, sd)
        for (int64_t d = 0; d < hd; d++) {
          sa += q[d] * ka[d];
          sb += q[d] * kb[d];
          sc += q[d] * kc[d];
          sd += q[d] * kd[d];
        }
        s[j] = sa * P.scale, s[j + 1] = sb * P.scale, s[j + 2] = sc * P.scale, s[j + 3] = sd * P.scale;
      }
      for (; j < n; j++) {
        const float* kr = k0 + j * ks;
        float sa = 0.0f;
#pragma omp simd reduction(+ : sa)
        for (int64_t d = 0; d < hd; d++) sa += q[d] * kr[d];
        s[j] = sa * P.scale;
      }
      float mx = kNegInf;
      for (j = 0; j < n; j++) {
        if (mask && mask[j] == 0.0f) s[j] = kNegInf;
        mx = s[j] > mx ? s[j] : mx;
      }
      float* dst = P.out + P.outRow(b, i, h);
      if (mx == kNegInf) {
        for (int64_t d = 0; d < hd; d++) dst[d] = 0.0f;
        if (P.lse) P.lse[P.lseAt(b, h, i)] = kNegInf;
        continue;
      }
      float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
      for (j = 0; j < n; j++) {
        const float p = vmath::exp(s[j] - mx);
        s[j] = p;
        sum += p;
      }
      for (int64_t d = 0; d < hd; d++) o[d] = 0.0f;
      for (j = 0; j + 4 <= n; j += 4) {
        const float pa = s[j], pb = s[j + 1], pc = s[j + 2], pd = s[j + 3];
        if (pa == 0.0f && pb == 0.0f && pc == 0.0f && pd == 0.0f) continue;  // masked (e.g. padding) keys
        const float *va = v0 + j * ks, *vb = va + ks, *vc = vb + ks, *vd = vc + ks;
        if (j + kStreamAhead + 4 <= n) streamAhead(v0 + (j + kStreamAhead) * ks, ks, hd);
#pragma omp simd
        for (int64_t d = 0; d < hd; d++) o[d] += pa * va[d] + pb * vb[d] + pc * vc[d] + pd * vd[d];
      }
      for (; j < n; j++) {
        const float p = s[j];
        const float* vr = v0 + j * ks;
#pragma omp simd
        for (int64_t d = 0; d < hd; d++) o[d] += p * vr[d];
      }
      const float inv = 1.0f / sum;
      for (int64_t d = 0; d < hd; d++) dst[d] = o[d] * inv;
      if (P.lse) P.lse[P.lseAt(b, h, i)] = mx + std::log(sum);
    }
  });
}

// ---- backward: one task per (b, kv head), which owns dK and dV of that head and dQ of its query heads ----

template <int NV>
void backwardBlocked(const Problem& P) {
  constexpr int64_t W = NV * kLanes;
  const int64_t hd = P.hd, G = P.group(), rows = G * P.Tq, nKB = (P.kvLen + BK - 1) / BK;
  parallelFor(P.B * P.Hkv, grainFor(5 * rows * P.kvLen * hd), [&](int64_t lo, int64_t hi) {
    static thread_local Scratch ktS, vtS, kpS, qsS, dopS, dqS, statS, sS, dpS, dkS, dvS;
    float* kt = ktS.get(nKB * BK * hd);
    float* vt = vtS.get(nKB * BK * hd);
    float* kp = kpS.get(nKB * BK * W);
    float* qs = qsS.get(rows * W);   // scaled queries of the group's heads, row g·Tq + i
    float* dop = dopS.get(rows * W);  // output gradient, same rows
    float* dqa = dqS.get(rows * W);
    float* stat = statS.get(2 * rows);  // logsumexp, then D = rowsum(dO ∘ O)
    float* s = sS.get(BQ * BK);
    float* dp = dpS.get(BQ * BK);
    float* dka = dkS.get(BK * W);
    float* dva = dvS.get(BK * W);
    float madd[BK];
    for (int64_t t = lo; t < hi; t++) {
      const int64_t b = t / P.Hkv, kvh = t % P.Hkv;
      for (int64_t kb = 0; kb < nKB; kb++) {
        packTransposed(P, P.k, b, kvh, kb, kt + kb * BK * hd);
        packTransposed(P, P.v, b, kvh, kb, vt + kb * BK * hd);
        if (P.dq) packKeyRows(P, P.k, b, kvh, kb, W, kp + kb * BK * W);
      }
      for (int64_t g = 0; g < G; g++) {
        const int64_t h = kvh * G + g;
        packRows(P.q + P.qRow(b, 0, h), P.qStride, P.Tq, hd, W, P.scale, qs + g * P.Tq * W);
        packRows(P.dout + P.outRow(b, 0, h), P.Hq * hd, P.Tq, hd, W, 1.0f, dop + g * P.Tq * W);
        for (int64_t i = 0; i < P.Tq; i++) {
          const float* o = P.out + P.outRow(b, i, h);
          const float* go = P.dout + P.outRow(b, i, h);
          float dsum = 0.0f;
#pragma omp simd reduction(+ : dsum)
          for (int64_t d = 0; d < hd; d++) dsum += o[d] * go[d];
          stat[g * P.Tq + i] = P.lse[P.lseAt(b, h, i)];
          stat[rows + g * P.Tq + i] = dsum;
        }
      }
      if (P.dq)
        for (int64_t i = 0; i < rows * W; i++) dqa[i] = 0.0f;
      for (int64_t kb = 0; kb < nKB; kb++) {
        const int64_t j0 = kb * BK, nk = std::min(BK, P.kvLen - j0);
        for (int64_t i = 0; i < BK * W; i++) dka[i] = dva[i] = 0.0f;
        if (blockMask(P, b, j0, nk, madd)) {
          for (int64_t g = 0; g < G; g++)
            for (int64_t i0 = 0; i0 < P.Tq; i0 += BQ) {
              const int64_t nq = std::min(BQ, P.Tq - i0), row0 = g * P.Tq + i0;
              if (P.keyEnd(i0 + nq - 1) <= j0) continue;  // the whole block is in these queries' causal future
              scoreBlock(qs + row0 * W, W, nq, kt + kb * BK * hd, hd, s);
              for (int64_t r = 0; r < nq; r++) {
                float* sr = s + r * BK;
                const float lse = stat[row0 + r];
                if (lse == kNegInf) {  // a row that saw no key has zero probabilities
                  for (int64_t j = 0; j < BK; j++) sr[j] = 0.0f;
                  continue;
                }
                maskRow(sr, madd, P.keyEnd(i0 + r) - j0);
#pragma omp simd
                for (int64_t j = 0; j < BK; j++) sr[j] = vmath::exp(sr[j] - lse);
              }
              if (P.dq || P.dk) {
                // dS = P ∘ (dO·Vᵀ − D)
                scoreBlock(dop + row0 * W, W, nq, vt + kb * BK * hd, hd, dp);
                for (int64_t r = 0; r < nq; r++) {
                  const float dsum = stat[rows + row0 + r];
#pragma omp simd
                  for (int64_t j = 0; j < BK; j++) dp[r * BK + j] = s[r * BK + j] * (dp[r * BK + j] - dsum);
                }
              }
              if (P.dv) accumulateRows<NV>(dva, nullptr, nk, s, 1, BK, dop + row0 * W, nq);  // dV += Pᵀ·dO
              if (P.dk) accumulateRows<NV>(dka, nullptr, nk, dp, 1, BK, qs + row0 * W, nq);  // dK += dSᵀ·(scale·Q)
              if (P.dq) accumulateRows<NV>(dqa + row0 * W, nullptr, nq, dp, BK, 1, kp + j0 * W, nk);  // dQ += dS·K
            }
        }
        for (int64_t j = 0; j < nk; j++) {
          if (P.dk) {
            float* dst = P.dk + P.kvRow(b, j0 + j, kvh);
            for (int64_t d = 0; d < hd; d++) dst[d] = dka[j * W + d];
          }
          if (P.dv) {
            float* dst = P.dv + P.kvRow(b, j0 + j, kvh);
            for (int64_t d = 0; d < hd; d++) dst[d] = dva[j * W + d];
          }
        }
      }
      for (int64_t j = P.kvLen; j < P.Tk; j++)  // keys past kvLen took no part
        for (int64_t d = 0; d < hd; d++) {
          if (P.dk) P.dk[P.kvRow(b, j, kvh) + d] = 0.0f;
          if (P.dv) P.dv[P.kvRow(b, j, kvh) + d] = 0.0f;
        }
      if (P.dq)
        for (int64_t g = 0; g < G; g++)
          for (int64_t i = 0; i < P.Tq; i++) {
            float* dst = P.dq + P.qRow(b, i, kvh * G + g);
            const float* src = dqa + (g * P.Tq + i) * W;
            for (int64_t d = 0; d < hd; d++) dst[d] = P.scale * src[d];
          }
    }
  });
}

// Head dims are padded to a whole number of vectors; a few widths cover every head dim up to kMaxHeadDim.
template <template <int> class K>
void dispatchWidth(int64_t hd, const Problem& P) {
  const int64_t nv = (hd + kLanes - 1) / kLanes;
  if (nv <= 1) K<1>::run(P);
  else if (nv <= 2) K<2>::run(P);
  else if (nv <= 3) K<3>::run(P);
  else if (nv <= 4) K<4>::run(P);
  else if (nv <= 6) K<6>::run(P);
  else if (nv <= 8) K<8>::run(P);
  else if (nv <= 12) K<12>::run(P);
  else K<16>::run(P);
}
template <int NV>
struct Forward {
  static void run(const Problem& P) { forwardBlocked<NV>(P); }
};
template <int NV>
struct Backward {
  static void run(const Problem& P) { backwardBlocked<NV>(P); }
};

// Reads the shared arguments (from index `first`) and checks every buffer against the lengths they imply.
Problem readProblem(const Args& args, size_t first) {
  Problem P{};
  P.B = args.int_(first, 0), P.Tq = args.int_(first + 1, 0), P.Tk = args.int_(first + 2, 0);
  P.kvLen = args.int_(first + 3, 0), P.Hq = args.int_(first + 4, 1), P.Hkv = args.int_(first + 5, 1);
  P.hd = args.int_(first + 6, 1), P.qStride = args.int_(first + 7, 1), P.kvStride = args.int_(first + 8, 1);
  P.kvHeadStride = args.int_(first + 9, 1), P.kvBatchStride = args.int_(first + 10, 0);
  P.causal = args.flag(first + 11);
  P.scale = static_cast<float>(args.num(first + 12));
  if (P.kvLen > P.Tk) args.fail("kvLen " + std::to_string(P.kvLen) + " exceeds Tk " + std::to_string(P.Tk));
  if (P.Hq % P.Hkv != 0)
    args.fail(std::to_string(P.Hq) + " query heads are not a multiple of " + std::to_string(P.Hkv) + " kv heads");
  if (P.hd > kMaxHeadDim) args.fail("head dim " + std::to_string(P.hd) + " exceeds " + std::to_string(kMaxHeadDim));
  if (P.qStride < P.Hq * P.hd) args.fail("q's row stride is shorter than its rows");
  const bool tokenMajor = P.kvHeadStride >= P.hd && P.kvStride >= P.Hkv * P.kvHeadStride &&
                          P.kvBatchStride >= P.Tk * P.kvStride;
  const bool headMajor = P.kvStride >= P.hd && P.kvHeadStride >= P.Tk * P.kvStride &&
                         P.kvBatchStride >= P.Hkv * P.kvHeadStride;
  if (!(tokenMajor || headMajor)) args.fail("k/v strides make rows overlap");
  return P;
}

size_t span(int64_t rows, int64_t stride, int64_t width) {
  return rows == 0 ? 0 : static_cast<size_t>((rows - 1) * stride + width);
}
// Floats from k's (or v's) first row to the end of its last.
size_t kvSpan(const Problem& P) {
  return P.B == 0 || P.Tk == 0 ? 0 : static_cast<size_t>(P.kvRow(P.B - 1, P.Tk - 1, P.Hkv - 1) + P.hd);
}

// attentionForward(q, k, v, mask|null, out, lse|null, B, Tq, Tk, kvLen, Hq, Hkv, hd, qStride, kvStride, kvHeadStride,
// kvBatchStride, causal, scale). q rows (b, t) start qStride apart; k/v rows as Problem::kvRow says; mask is (B, Tk);
// out is (B, Tq, Hq, hd).
Napi::Value attentionForward(const Napi::CallbackInfo& info) {
  Args args(info, "attentionForward", 19);
  Problem P = readProblem(args, 6);
  P.q = args.f32(0, span(P.B * P.Tq, P.qStride, P.Hq * P.hd));
  P.k = args.f32(1, kvSpan(P));
  P.v = args.f32(2, kvSpan(P));
  P.mask = args.isNull(3) ? nullptr : args.f32(3, P.B * P.Tk);
  P.out = args.f32(4, P.B * P.Tq * P.Hq * P.hd);
  P.lse = args.isNull(5) ? nullptr : args.f32(5, P.B * P.Hq * P.Tq);
  // Transposing key blocks pays off only when enough query rows reuse them.
  if (P.Tq * P.group() >= 16) dispatchWidth<Forward>(P.hd, P);
  else forwardRows(P);
  return info.Env().Undefined();
}
IK_EXPORT("attentionForward", attentionForward);

// attentionBackward(q, k, v, mask|null, out, dout, lse, dq|null, dk|null, dv|null, B, Tq, Tk, kvLen, Hq, Hkv, hd,
// qStride, kvStride, kvHeadStride, kvBatchStride, causal, scale). dq has q's row strides, dk and dv those of k and v;
// each is written in full.
Napi::Value attentionBackward(const Napi::CallbackInfo& info) {
  Args args(info, "attentionBackward", 23);
  Problem P = readProblem(args, 10);
  const size_t qLen = span(P.B * P.Tq, P.qStride, P.Hq * P.hd), kvLen = kvSpan(P);
  const size_t outLen = P.B * P.Tq * P.Hq * P.hd;
  P.q = args.f32(0, qLen);
  P.k = args.f32(1, kvLen);
  P.v = args.f32(2, kvLen);
  P.mask = args.isNull(3) ? nullptr : args.f32(3, P.B * P.Tk);
  P.out = args.f32(4, outLen);
  P.dout = args.f32(5, outLen);
  P.lse = args.f32(6, P.B * P.Hq * P.Tq);
  P.dq = args.isNull(7) ? nullptr : args.f32(7, qLen);
  P.dk = args.isNull(8) ? nullptr : args.f32(8, kvLen);
  P.dv = args.isNull(9) ? nullptr : args.f32(9, kvLen);
  dispatchWidth<Backward>(P.hd, P);
  return info.Env().Undefined();
}
IK_EXPORT("attentionBackward", attentionBackward);

}  // namespace
}  // namespace ik
