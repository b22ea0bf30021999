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
  template <class E = float>
  E* get(size_t n) {
    static_assert(sizeof(E) == sizeof(float), "scratch holds 32-bit elements");
    if (buf_.size() < n + kLanes) buf_.resize(n + kLanes);
    auto addr = reinterpret_cast<uintptr_t>(buf_.data());
    return reinterpret_cast<E*>((addr + 63) & ~uintptr_t(63));
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
  // > 0: a sliding window (Mistral): query i sees only the last `window` keys up to its own position.
  int64_t window;
  float scale;
  bool bf16;  // products on bf16-rounded operands (autocast), where the CPU has vdpbf16ps

  int64_t group() const { return Hq / Hkv; }
  // Causal queries are the last Tq of the kvLen visible keys: query i sees keys j <= i + offset().
  int64_t offset() const { return kvLen - Tq; }
  // Keys [0, keyEnd(i)) are visible to query i.
  int64_t keyEnd(int64_t i) const {
    if (!causal) return kvLen;
    int64_t e = i + offset() + 1;
    return e < 0 ? 0 : (e > kvLen ? kvLen : e);
  }
  // Keys before keyStart(i) are outside query i's window.
  int64_t keyStart(int64_t i) const {
    if (window <= 0) return 0;
    const int64_t s = i + offset() + 1 - window;
    return s < 0 ? 0 : s;
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

// ---- register-blocked products, over f32 operands or (under autocast) bf16 pairs ----
//
// Two operand formats share the blocked kernels below through a small policy:
// - F32Ops: operands are floats; one multiply-add per lane and step.
// - Bf16Ops: operands are bf16 pairs (two values along the summed axis in one 32-bit lane), multiplied with
//   vdpbf16ps, which does two multiply-adds per lane and step into f32 accumulators. As under torch's autocast, the
//   inputs of each product are rounded to bf16 and everything else (scores, softmax, accumulation) stays f32.
// The layouts are the same in both, counted in elements E (a float, or a pair): a key block "for scoring" is
// depth × BK (depth = hd, or hd/2 pairs), "as a source" is rows × W with rows paired in Bf16Ops.

// s[r][0..C·kLanes) = Σ_d q[r][d]·kt[d][0..C·kLanes) for R rows: kt is one key block for scoring.
template <class Ops, int R, int C>
inline void scoreGroup(const typename Ops::E* q, int64_t ldq, const typename Ops::E* kt, int64_t depth, float* s) {
  // Every loop over the register block is unrolled: one left rolled keeps the block in memory (measured: a memset
  // and a copy per call).
  Vec acc[R][C];
#pragma GCC unroll 8
  for (int r = 0; r < R; r++)
#pragma GCC unroll 8
    for (int c = 0; c < C; c++) acc[r][c] = Vec{};
  for (int64_t d = 0; d < depth; d++) {
    typename Ops::V kv[C];
#pragma GCC unroll 8
    for (int c = 0; c < C; c++) kv[c] = pinned(Ops::load(kt + d * BK + c * kLanes));
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) {
      const auto qd = Ops::splat(q[r * ldq + d]);
#pragma GCC unroll 8
      for (int c = 0; c < C; c++) acc[r][c] = Ops::madd(acc[r][c], qd, kv[c]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; r++)
#pragma GCC unroll 8
    for (int c = 0; c < C; c++) store(s + r * BK + c * kLanes, acc[r][c]);
}

template <class Ops, int C>
void scoreRows(const typename Ops::E* q, int64_t ldq, int64_t rows, const typename Ops::E* kt, int64_t depth,
               float* s) {
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) scoreGroup<Ops, 4, C>(q + r * ldq, ldq, kt, depth, s + r * BK);
  for (; r < rows; r++) scoreGroup<Ops, 1, C>(q + r * ldq, ldq, kt, depth, s + r * BK);
}

// Scores of `rows` query rows against the first `keys` keys of a block, rounded up to whole vectors (the rest of
// each row of s is left as it was): on the causal diagonal a block's later keys are often in every row's future.
template <class Ops>
void scoreBlock(const typename Ops::E* q, int64_t ldq, int64_t rows, const typename Ops::E* kt, int64_t depth,
                int64_t keys, float* s) {
  static_assert(BK == 4 * kLanes, "scoreBlock covers at most four vectors of keys");
  switch ((keys + kLanes - 1) / kLanes) {
    case 1: return scoreRows<Ops, 1>(q, ldq, rows, kt, depth, s);
    case 2: return scoreRows<Ops, 2>(q, ldq, rows, kt, depth, s);
    case 3: return scoreRows<Ops, 3>(q, ldq, rows, kt, depth, s);
    default: return scoreRows<Ops, 4>(q, ldq, rows, kt, depth, s);
  }
}

// Rows held in registers by accumulateRows: about 16 accumulator vectors.
constexpr int rowsFor(int nv) { return nv <= 2 ? 8 : nv <= 4 ? 4 : nv <= 8 ? 2 : 1; }

// dst[r] = alpha[r]·dst[r] + Σ_j coef[r·cRow + j·cInner]·src[j] for R rows of width NV vectors (alpha null: 1).
template <class Ops, int NV, int R>
inline void accumulateGroup(float* dst, const float* alpha, const typename Ops::E* coef, int64_t cRow, int64_t cInner,
                            const typename Ops::E* src, int64_t n) {
  constexpr int W = NV * kLanes;
  Vec acc[R][NV];
#pragma GCC unroll 16
  for (int r = 0; r < R; r++) {
    const float a = alpha ? alpha[r] : 1.0f;
#pragma GCC unroll 16
    for (int c = 0; c < NV; c++) acc[r][c] = a * load(dst + r * W + c * kLanes);
  }
  for (int64_t j = 0; j < n; j++) {
    typename Ops::V x[NV];
#pragma GCC unroll 16
    for (int c = 0; c < NV; c++) x[c] = pinned(Ops::load(src + j * W + c * kLanes));
#pragma GCC unroll 16
    for (int r = 0; r < R; r++) {
      const auto w = Ops::splat(coef[r * cRow + j * cInner]);
#pragma GCC unroll 16
      for (int c = 0; c < NV; c++) acc[r][c] = Ops::madd(acc[r][c], w, x[c]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; r++)
#pragma GCC unroll 16
    for (int c = 0; c < NV; c++) store(dst + r * W + c * kLanes, acc[r][c]);
}

// The same over `rows` rows; dst and src rows are NV·kLanes elements apart.
template <class Ops, int NV>
void accumulateRows(float* dst, const float* alpha, int64_t rows, const typename Ops::E* coef, int64_t cRow,
                    int64_t cInner, const typename Ops::E* src, int64_t n) {
  constexpr int R = rowsFor(NV);
  constexpr int W = NV * kLanes;
  int64_t r = 0;
  for (; r + R <= rows; r += R)
    accumulateGroup<Ops, NV, R>(dst + r * W, alpha ? alpha + r : nullptr, coef + r * cRow, cRow, cInner, src, n);
  for (; r < rows; r++)
    accumulateGroup<Ops, NV, 1>(dst + r * W, alpha ? alpha + r : nullptr, coef + r * cRow, cRow, cInner, src, n);
}

// Rows of q, k and v are a few cache lines each, strided across memory: packing asks for the row kAhead rows on.
constexpr int64_t kAhead = 4;
inline void prefetchRow(const float* row, int64_t hd) {
  for (int64_t d = 0; d < hd; d += kLanes) __builtin_prefetch(row + d);
}

void packRows(const float* src, int64_t stride, int64_t rows, int64_t hd, int64_t width, float scale, float* dst) {
  for (int64_t r = 0; r < rows; r++) {
    if (r + kAhead < rows) prefetchRow(src + (r + kAhead) * stride, hd);
    const float* s = src + r * stride;
    float* d = dst + r * width;
    for (int64_t c = 0; c < hd; c++) d[c] = scale * s[c];
    for (int64_t c = hd; c < width; c++) d[c] = 0.0f;
  }
}

struct F32Ops {
  using E = float;
  using V = Vec;
  static V load(const E* p) { return ik::load(p); }
  static V splat(E x) { return x - Vec{}; }
  static Vec madd(Vec acc, V w, V x) { return acc + w * x; }
  static int64_t depth(int64_t hd) { return hd; }
  static int64_t sourceAt(int64_t row, int64_t width) { return row * width; }
  // Source rows hold the same floats as rows for scoring, only wider: the backward scores from them directly.
  static constexpr bool kScoresFromSource = true;

  // Key block kb of one (b, kv head) for scoring (hd × BK), zero past kvLen.
  static void packKeysForScoring(const Problem& P, const float* src, int64_t b, int64_t kvh, int64_t kb, E* dst) {
    const int64_t j0 = kb * BK, nk = std::min(BK, P.kvLen - j0);
    for (int64_t j = 0; j < nk; j++) {
      if (j + kAhead < nk) prefetchRow(src + P.kvRow(b, j0 + j + kAhead, kvh), P.hd);
      const float* row = src + P.kvRow(b, j0 + j, kvh);
      for (int64_t d = 0; d < P.hd; d++) dst[d * BK + j] = row[d];
    }
    for (int64_t d = 0; d < P.hd; d++)
      for (int64_t j = nk; j < BK; j++) dst[d * BK + j] = 0.0f;
  }
  // `rows` rows of hd values (scaled) for scoring, and as `padded` source rows of `width` (zero past rows).
  static void packForScoring(const float* src, int64_t stride, int64_t rows, int64_t hd, float scale, E* dst) {
    packRows(src, stride, rows, hd, hd, scale, dst);
  }
  static void packAsSource(const float* src, int64_t stride, int64_t rows, int64_t padded, int64_t hd,
                           int64_t width, float scale, E* dst) {
    packRows(src, stride, rows, hd, width, scale, dst);
    for (int64_t i = rows * width; i < padded * width; i++) dst[i] = 0.0f;
  }
  // dst[r] = alpha[r]·dst[r] + Σ_{j < keys} s[r][j]·src[j]: probabilities (or dS) times key-block source rows.
  template <int NV>
  static void alongKeys(float* dst, const float* alpha, int64_t rows, const float* s, int64_t keys, const E* src,
                        E*) {
    accumulateRows<F32Ops, NV>(dst, alpha, rows, s, BK, 1, src, keys);
  }
  // dst[j] += Σ_{r < rows} s[r][j]·src[r] for j < keys: the transposed product, into key rows.
  template <int NV>
  static void alongQueries(float* dst, int64_t keys, const float* s, int64_t rows, const E* src, E*) {
    accumulateRows<F32Ops, NV>(dst, nullptr, keys, s, 1, BK, src, rows);
  }
};

#ifdef __AVX512BF16__
// A pair is two bf16 values in one 32-bit lane, the first in the low half.
struct Bf16Ops {
  using E = uint32_t;
  using V = Vec;  // pairs carried in a float vector, the type pinned() keeps in a register
  static V load(const E* p) { return ik::load(reinterpret_cast<const float*>(p)); }
  static V splat(E x) { return (V)_mm512_set1_epi32(static_cast<int>(x)); }
  static Vec madd(Vec acc, V w, V x) { return (Vec)_mm512_dpbf16_ps((__m512)acc, (__m512bh)w, (__m512bh)x); }
  static int64_t depth(int64_t hd) { return (hd + 1) / 2; }
  static int64_t sourceAt(int64_t row, int64_t width) { return row / 2 * width; }
  static constexpr bool kScoresFromSource = false;  // source rows pair two rows, scoring rows pair along each row

  typedef uint16_t Halves __attribute__((vector_size(kLanes * 2)));
  typedef uint32_t Lanes __attribute__((vector_size(kLanes * 4)));
  static __mmask16 first(int64_t n) {
    return n >= kLanes ? 0xffff : n <= 0 ? 0 : static_cast<__mmask16>((1u << n) - 1);
  }
  // kLanes floats from p (only the first n when n < kLanes, zeros after), scaled and rounded to bf16.
  static Halves round(const float* p, int64_t n, float scale) {
    return (Halves)_mm512_cvtneps_pbh((__m512)(scale * (Vec)_mm512_maskz_loadu_ps(first(n), p)));
  }
  static Lanes widen(const float* p, int64_t n, float scale) {
    return __builtin_convertvector(round(p, n, scale), Lanes);
  }
  // One row of hd values as depth pairs along the row (an odd hd pairs its last value with zero).
  static void pairRow(const float* src, int64_t hd, float scale, E* dst) {
    auto* half = reinterpret_cast<uint16_t*>(dst);
    for (int64_t c = 0; c < hd; c += kLanes) {
      const Halves h = round(src + c, hd - c, scale);
      _mm256_mask_storeu_epi16(half + c, first(hd - c), (__m256i)h);
    }
    if (hd % 2) half[hd] = 0;
  }
  // Pairs (a[c], b[c]) for c < width, a and b scaled, zero past n (and b null: zeros).
  static void pairUp(const float* a, const float* b, int64_t n, int64_t width, float scale, E* dst) {
    for (int64_t c = 0; c < width; c += kLanes) {
      Lanes pairs = widen(a + c, n - c, scale);
      if (b) pairs |= widen(b + c, n - c, scale) << 16;
      __builtin_memcpy(dst + c, &pairs, sizeof pairs);
    }
  }
  static void packKeysForScoring(const Problem& P, const float* src, int64_t b, int64_t kvh, int64_t kb, E* dst) {
    const int64_t j0 = kb * BK, nk = std::min(BK, P.kvLen - j0), depth = Bf16Ops::depth(P.hd);
    E row[kMaxHeadDim / 2 + 1];
    for (int64_t j = 0; j < BK; j++) {
      if (j + kAhead < nk) prefetchRow(src + P.kvRow(b, j0 + j + kAhead, kvh), P.hd);
      if (j < nk) pairRow(src + P.kvRow(b, j0 + j, kvh), P.hd, 1.0f, row);
      for (int64_t d = 0; d < depth; d++) dst[d * BK + j] = j < nk ? row[d] : 0u;
    }
  }
  static void packForScoring(const float* src, int64_t stride, int64_t rows, int64_t hd, float scale, E* dst) {
    for (int64_t r = 0; r < rows; r++) {
      if (r + kAhead < rows) prefetchRow(src + (r + kAhead) * stride, hd);
      pairRow(src + r * stride, hd, scale, dst + r * depth(hd));
    }
  }
  // Source rows are paired: pair row p holds rows 2p and 2p + 1 lane by lane.
  static void packAsSource(const float* src, int64_t stride, int64_t rows, int64_t padded, int64_t hd,
                           int64_t width, float scale, E* dst) {
    for (int64_t r = 0; r < padded; r += 2) {
      for (int64_t ahead = r + kAhead; ahead < std::min(r + kAhead + 2, rows); ahead++)
        prefetchRow(src + ahead * stride, hd);
      const float* a = r < rows ? src + r * stride : nullptr;
      const float* b = r + 1 < rows ? src + (r + 1) * stride : nullptr;
      if (a) pairUp(a, b, hd, width, scale, dst + r / 2 * width);
      else std::fill(dst + r / 2 * width, dst + (r / 2 + 1) * width, 0u);
    }
  }
  // The coefficients are rounded to pairs first: along keys each row of s pairs up with itself.
  template <int NV>
  static void alongKeys(float* dst, const float* alpha, int64_t rows, const float* s, int64_t keys, const E* src,
                        E* scratch) {
    for (int64_t r = 0; r < rows; r++) pairRow(s + r * BK, BK, 1.0f, scratch + r * BK / 2);
    accumulateRows<Bf16Ops, NV>(dst, alpha, rows, scratch, BK / 2, 1, src, (keys + 1) / 2);
  }
  template <int NV>
  static void alongQueries(float* dst, int64_t keys, const float* s, int64_t rows, const E* src, E* scratch) {
    for (int64_t r = 0; r < rows; r += 2)
      pairUp(s + r * BK, r + 1 < rows ? s + (r + 1) * BK : nullptr, BK, BK, 1.0f, scratch + r / 2 * BK);
    accumulateRows<Bf16Ops, NV>(dst, nullptr, keys, scratch, 1, BK, src, (rows + 1) / 2);
  }
};
#endif

// Key block kb of one (b, kv head) as source rows of `width`, zero past kvLen.
template <class Ops>
void packKeysAsSource(const Problem& P, const float* src, int64_t b, int64_t kvh, int64_t kb, int64_t width,
                      typename Ops::E* dst) {
  const int64_t j0 = kb * BK, nk = std::min(BK, P.kvLen - j0);
  Ops::packAsSource(src + P.kvRow(b, j0, kvh), P.kvStride, nk, BK, P.hd, width, 1.0f, dst);
}

// Masks one score row in place (invisible → -inf) and returns its max. Keys [first, lim) of the block pass causality
// and the window.
inline float maskRow(float* s, const float* madd, int64_t first, int64_t lim) {
  float mx = kNegInf;
#pragma omp simd reduction(max : mx)
  for (int64_t j = 0; j < BK; j++) {
    const float x = j >= first && j < lim ? s[j] + madd[j] : kNegInf;
    s[j] = x;
    mx = x > mx ? x : mx;
  }
  return mx;
}

// ---- forward, blocked: (b, head, query block) tasks, used when enough query rows share each key block ----

template <class Ops, int NV>
void forwardBlocked(const Problem& P) {
  using E = typename Ops::E;
  constexpr int64_t W = NV * kLanes;
  const int64_t hd = P.hd, depth = Ops::depth(hd), nQB = (P.Tq + BQ - 1) / BQ, nKB = (P.kvLen + BK - 1) / BK;
  const int64_t tasks = P.B * P.Hq * nQB;
  parallelFor(tasks, grainFor(BQ * P.kvLen * hd), [&](int64_t lo, int64_t hi) {
    static thread_local Scratch ktS, vpS, qS, cS, oS, sS;
    E* kt = ktS.get<E>(nKB * BK * depth);  // this thread's current (b, kv head), packed lazily block by block
    E* vp = vpS.get<E>(nKB * BK * W);
    E* qs = qS.get<E>(BQ * depth);
    E* cs = cS.get<E>(BQ * BK);
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
        Ops::packKeysForScoring(P, P.k, b, kvh, packedBlocks, kt + packedBlocks * BK * depth);
        packKeysAsSource<Ops>(P, P.v, b, kvh, packedBlocks, W, vp + Ops::sourceAt(packedBlocks * BK, W));
      }
      Ops::packForScoring(P.q + P.qRow(b, i0, h), P.qStride, nq, hd, P.scale, qs);
      for (int64_t i = 0; i < nq * W; i++) o[i] = 0.0f;
      for (int64_t r = 0; r < nq; r++) m[r] = kNegInf, l[r] = 0.0f;
      for (int64_t kb = P.keyStart(i0) / BK; kb < blocks; kb++) {  // blocks before every row's window are skipped
        const int64_t j0 = kb * BK, nk = std::min(BK, P.kvLen - j0);
        if (!blockMask(P, b, j0, nk, madd)) continue;
        const int64_t seen = std::min(nk, kEnd - j0);  // keys of this block that any of these rows sees
        scoreBlock<Ops>(qs, depth, nq, kt + kb * BK * depth, depth, seen, s);
        for (int64_t r = 0; r < nq; r++) {
          float* sr = s + r * BK;
          const float mnew = std::max(m[r], maskRow(sr, madd, P.keyStart(i0 + r) - j0, P.keyEnd(i0 + r) - j0));
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
        Ops::template alongKeys<NV>(o, alpha, nq, s, seen, vp + Ops::sourceAt(j0, W), cs);
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
      const int64_t n = P.keyEnd(i), first = P.keyStart(i);
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
        if (j < first || (mask && mask[j] == 0.0f)) s[j] = kNegInf;
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

template <class Ops, int NV>
void backwardBlocked(const Problem& P) {
  using E = typename Ops::E;
  constexpr int64_t W = NV * kLanes;
  // Each query head's rows start at an even row (Tr of them), so pairs of rows never straddle two heads.
  const int64_t hd = P.hd, depth = Ops::depth(hd), G = P.group(), Tr = (P.Tq + 1) / 2 * 2, rows = G * Tr;
  const int64_t nKB = (P.kvLen + BK - 1) / BK;
  parallelFor(P.B * P.Hkv, grainFor(5 * G * P.Tq * P.kvLen * hd), [&](int64_t lo, int64_t hi) {
    static thread_local Scratch ktS, vtS, kpS, qsS, qrS, dosS, dorS, csS, dqS, statS, sS, dpS, dkS, dvS;
    E* kt = ktS.get<E>(nKB * BK * depth);
    E* vt = vtS.get<E>(nKB * BK * depth);
    E* kp = kpS.get<E>(nKB * BK * W);
    // Scaled queries of the group's heads as source rows (row g·Tr + i), and the output gradient, same rows; each
    // also for scoring (ldS apart), where the source rows cannot serve.
    constexpr bool shared = Ops::kScoresFromSource;
    const int64_t ldS = shared ? W : depth;
    E* qr = qrS.get<E>(rows * W);
    E* dor = dorS.get<E>(rows * W);
    E* qs = shared ? qr : qsS.get<E>(rows * depth);
    E* dos = shared ? dor : dosS.get<E>(rows * depth);
    E* cs = csS.get<E>(BQ * BK);
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
        Ops::packKeysForScoring(P, P.k, b, kvh, kb, kt + kb * BK * depth);
        Ops::packKeysForScoring(P, P.v, b, kvh, kb, vt + kb * BK * depth);
        if (P.dq) packKeysAsSource<Ops>(P, P.k, b, kvh, kb, W, kp + Ops::sourceAt(kb * BK, W));
      }
      for (int64_t g = 0; g < G; g++) {
        const int64_t h = kvh * G + g;
        const float* q = P.q + P.qRow(b, 0, h);
        const float* go = P.dout + P.outRow(b, 0, h);
        Ops::packAsSource(q, P.qStride, P.Tq, Tr, hd, W, P.scale, qr + Ops::sourceAt(g * Tr, W));
        Ops::packAsSource(go, P.Hq * hd, P.Tq, Tr, hd, W, 1.0f, dor + Ops::sourceAt(g * Tr, W));
        if (!shared) {
          Ops::packForScoring(q, P.qStride, P.Tq, hd, P.scale, qs + g * Tr * depth);
          Ops::packForScoring(go, P.Hq * hd, P.Tq, hd, 1.0f, dos + g * Tr * depth);
        }
        for (int64_t i = 0; i < P.Tq; i++) {
          const float* o = P.out + P.outRow(b, i, h);
          const float* gi = go + i * P.Hq * hd;
          float dsum = 0.0f;
#pragma omp simd reduction(+ : dsum)
          for (int64_t d = 0; d < hd; d++) dsum += o[d] * gi[d];
          stat[g * Tr + i] = P.lse[P.lseAt(b, h, i)];
          stat[rows + g * Tr + i] = dsum;
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
              const int64_t nq = std::min(BQ, P.Tq - i0), row0 = g * Tr + i0;
              const int64_t seen = std::min(nk, P.keyEnd(i0 + nq - 1) - j0);
              if (seen <= 0) continue;  // the whole block is in these queries' causal future
              if (P.keyStart(i0) >= j0 + nk) continue;  // or before all their windows
              scoreBlock<Ops>(qs + row0 * ldS, ldS, nq, kt + kb * BK * depth, depth, seen, s);
              for (int64_t r = 0; r < nq; r++) {
                float* sr = s + r * BK;
                const float lse = stat[row0 + r];
                if (lse == kNegInf) {  // a row that saw no key has zero probabilities
                  for (int64_t j = 0; j < BK; j++) sr[j] = 0.0f;
                  continue;
                }
                maskRow(sr, madd, P.keyStart(i0 + r) - j0, P.keyEnd(i0 + r) - j0);
#pragma omp simd
                for (int64_t j = 0; j < BK; j++) sr[j] = vmath::exp(sr[j] - lse);
              }
              if (P.dq || P.dk) {
                // dS = P ∘ (dO·Vᵀ − D)
                scoreBlock<Ops>(dos + row0 * ldS, ldS, nq, vt + kb * BK * depth, depth, seen, dp);
                for (int64_t r = 0; r < nq; r++) {
                  const float dsum = stat[rows + row0 + r];
#pragma omp simd
                  for (int64_t j = 0; j < BK; j++) dp[r * BK + j] = s[r * BK + j] * (dp[r * BK + j] - dsum);
                }
              }
              const E* dorBlock = dor + Ops::sourceAt(row0, W);
              const E* qrBlock = qr + Ops::sourceAt(row0, W);
              if (P.dv) Ops::template alongQueries<NV>(dva, seen, s, nq, dorBlock, cs);  // dV += Pᵀ·dO
              if (P.dk) Ops::template alongQueries<NV>(dka, seen, dp, nq, qrBlock, cs);  // dK += dSᵀ·(scale·Q)
              if (P.dq)  // dQ += dS·K
                Ops::template alongKeys<NV>(dqa + row0 * W, nullptr, nq, dp, seen, kp + Ops::sourceAt(j0, W), cs);
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
            const float* src = dqa + (g * Tr + i) * W;
            for (int64_t d = 0; d < hd; d++) dst[d] = P.scale * src[d];
          }
    }
  });
}

// Head dims are padded to a whole number of vectors; a few widths cover every head dim up to kMaxHeadDim.
template <template <class, int> class K, class Ops>
void dispatchWidth(const Problem& P) {
  const int64_t nv = (P.hd + kLanes - 1) / kLanes;
  if (nv <= 1) K<Ops, 1>::run(P);
  else if (nv <= 2) K<Ops, 2>::run(P);
  else if (nv <= 3) K<Ops, 3>::run(P);
  else if (nv <= 4) K<Ops, 4>::run(P);
  else if (nv <= 6) K<Ops, 6>::run(P);
  else if (nv <= 8) K<Ops, 8>::run(P);
  else if (nv <= 12) K<Ops, 12>::run(P);
  else K<Ops, 16>::run(P);
}
// bf16 products where the compiler targets vdpbf16ps (-march=native on a CPU with AVX512-BF16); f32 elsewhere.
template <template <class, int> class K>
void dispatch(const Problem& P) {
#ifdef __AVX512BF16__
  if (P.bf16) return dispatchWidth<K, Bf16Ops>(P);
#endif
  dispatchWidth<K, F32Ops>(P);
}
template <class Ops, int NV>
struct Forward {
  static void run(const Problem& P) { forwardBlocked<Ops, NV>(P); }
};
template <class Ops, int NV>
struct Backward {
  static void run(const Problem& P) { backwardBlocked<Ops, NV>(P); }
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
  P.bf16 = args.flag(first + 13);
  P.window = args.int_(first + 14, 0);
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
// kvBatchStride, causal, scale, bf16, window). q rows (b, t) start qStride apart; k/v rows as Problem::kvRow says; mask is
// (B, Tk); out is (B, Tq, Hq, hd).
Napi::Value attentionForward(const Napi::CallbackInfo& info) {
  Args args(info, "attentionForward", 21);
  Problem P = readProblem(args, 6);
  P.q = args.f32(0, span(P.B * P.Tq, P.qStride, P.Hq * P.hd));
  P.k = args.f32(1, kvSpan(P));
  P.v = args.f32(2, kvSpan(P));
  P.mask = args.isNull(3) ? nullptr : args.f32(3, P.B * P.Tk);
  P.out = args.f32(4, P.B * P.Tq * P.Hq * P.hd);
  P.lse = args.isNull(5) ? nullptr : args.f32(5, P.B * P.Hq * P.Tq);
  // Transposing key blocks pays off only when enough query rows reuse them.
  if (P.Tq * P.group() >= 16) dispatch<Forward>(P);
  else forwardRows(P);
  return info.Env().Undefined();
}
IK_EXPORT("attentionForward", attentionForward);

// attentionBackward(q, k, v, mask|null, out, dout, lse, dq|null, dk|null, dv|null, B, Tq, Tk, kvLen, Hq, Hkv, hd,
// qStride, kvStride, kvHeadStride, kvBatchStride, causal, scale, bf16, window). dq has q's row strides, dk and dv those of k
// and v; each is written in full.
Napi::Value attentionBackward(const Napi::CallbackInfo& info) {
  Args args(info, "attentionBackward", 25);
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
  dispatch<Backward>(P);
  return info.Env().Undefined();
}
IK_EXPORT("attentionBackward", attentionBackward);

}  // namespace
}  // namespace ik
