// Few-row products against a weight read once, straight from memory, nothing packed:
// - NT (a Linear weight, N×K): dot products of rows of a with rows of b, register-blocked 4×4, each weight row read
//   by one thread;
// - NN (GPT-2's Conv1D weight, K×N): each thread owns a wide band of columns and walks the weight row by row, adding
//   a[·, k] × b[k, band] into accumulator rows kept in L1. Each row's band is kilobytes of contiguous memory, which the
//   prefetchers follow; the column tiles of a GEMM read a few cache lines a page apart instead.
#include "skinny_gemm.h"

#include <algorithm>

#include "common.h"
#include "vec.h"

namespace ik {
namespace {

typedef int32_t Lanes __attribute__((vector_size(kLanes * sizeof(int32_t))));
typedef uint32_t Words __attribute__((vector_size(kLanes * sizeof(uint32_t))));
typedef uint16_t Halves __attribute__((vector_size(kLanes * sizeof(uint16_t))));

// kLanes weights widened to f32: a bf16 value is the upper half of its f32.
inline Vec loadWeights(const float* p) { return load(p); }
inline Vec loadWeights(const uint16_t* p) {
  Halves h;
  __builtin_memcpy(&h, p, sizeof(h));
  return reinterpret_cast<Vec>(__builtin_convertvector(h, Words) << 16);
}
inline float weight(const float* p) { return *p; }
inline float weight(const uint16_t* p) { return bf16ToF32(*p); }

// Output value of column n before the products: the bias and, when accumulating, what c holds.
inline float start(const float* c, const float* bias, int64_t n, bool acc) {
  return (acc ? *c : 0.0f) + (bias ? bias[n] : 0.0f);
}

// Lane l of the result is the lane sum of s[bitReverse4(l)]: four rounds, each adding two halves of a pair.
inline Lanes halvesMask(int h, bool upper) {
  Lanes m;
  for (int l = 0; l < kLanes; l++) {
    const int g = l / (2 * h) * 2 * h, w = l % (2 * h);
    m[l] = w < h ? g + w + (upper ? h : 0) : kLanes + g + (w - h) + (upper ? h : 0);
  }
  return m;
}
const Lanes kLo[4] = {halvesMask(8, false), halvesMask(4, false), halvesMask(2, false), halvesMask(1, false)};
const Lanes kHi[4] = {halvesMask(8, true), halvesMask(4, true), halvesMask(2, true), halvesMask(1, true)};

inline Vec addHalves(Vec x, Vec y, int round) {
  return __builtin_shuffle(x, y, kLo[round]) + __builtin_shuffle(x, y, kHi[round]);
}

constexpr int bitReverse4(int i) { return ((i & 1) << 3) | ((i & 2) << 1) | ((i & 4) >> 1) | ((i & 8) >> 3); }

template <int RM, int RN, typename W>
void tile(const float* a, const W* b, float* c, const float* bias, int64_t N, int64_t K, int64_t n0, int64_t ahead,
          bool acc) {
  Vec s[RM * RN] = {};
  int64_t k = 0;
  for (; k + kLanes <= K; k += kLanes) {
    Vec x[RM], y[RN];
#pragma GCC unroll 4
    for (int i = 0; i < RM; i++) x[i] = load(a + i * K + k);
#pragma GCC unroll 4
    for (int j = 0; j < RN; j++) {
      if (n0 + ahead + j < N) __builtin_prefetch(b + (n0 + ahead + j) * K + k);
      y[j] = loadWeights(b + (n0 + j) * K + k);
    }
#pragma GCC unroll 4
    for (int i = 0; i < RM; i++)
#pragma GCC unroll 4
      for (int j = 0; j < RN; j++) s[i * RN + j] += x[i] * y[j];
  }
  float dot[RM * RN];
  if constexpr (RM * RN == kLanes) {
    Vec t[8], u[4], w[2];
    for (int i = 0; i < 8; i++) t[i] = addHalves(s[2 * i], s[2 * i + 1], 0);
    for (int i = 0; i < 4; i++) u[i] = addHalves(t[2 * i], t[2 * i + 1], 1);
    for (int i = 0; i < 2; i++) w[i] = addHalves(u[2 * i], u[2 * i + 1], 2);
    const Vec z = addHalves(w[0], w[1], 3);
    for (int l = 0; l < kLanes; l++) dot[bitReverse4(l)] = z[l];
  } else {
    for (int i = 0; i < RM * RN; i++) {
      float sum = 0.0f;
      for (int l = 0; l < kLanes; l++) sum += s[i][l];
      dot[i] = sum;
    }
  }
  for (; k < K; k++)
    for (int i = 0; i < RM; i++)
      for (int j = 0; j < RN; j++) dot[i * RN + j] += a[i * K + k] * weight(b + (n0 + j) * K + k);
  for (int i = 0; i < RM; i++)
    for (int j = 0; j < RN; j++) {
      float* out = c + i * N + n0 + j;
      *out = start(out, bias, n0 + j, acc) + dot[i * RN + j];
    }
}

// Every row of a against RN rows of b: the RN rows stay in L1 while the row groups pass over them.
template <int RN, typename W>
void columns(const float* a, const W* b, float* c, const float* bias, int64_t M, int64_t N, int64_t K, int64_t n0,
             int64_t ahead, bool acc) {
  int64_t m = 0;
  for (; m + 4 <= M; m += 4) tile<4, RN>(a + m * K, b, c + m * N, bias, N, K, n0, ahead, acc);
  for (; m + 2 <= M; m += 2) tile<2, RN>(a + m * K, b, c + m * N, bias, N, K, n0, ahead, acc);
  for (; m < M; m++) tile<1, RN>(a + m * K, b, c + m * N, bias, N, K, n0, ahead, acc);
}

// Adds weight rows k .. k+R-1 (r0 is row k's first column of the chunk) into the accumulator rows of every row of a,
// prefetching the rows 2R further down as the pass goes (without it, bf16 read ~16 GB/s on one core, not ~30).
template <int R, typename W>
void addRows(const float* a, const W* r0, float* const* sums, int64_t M, int64_t N, int64_t K, int64_t k,
             int64_t vecEnd, int64_t width) {
  static_assert(R % 2 == 0, "two chains of multiply-adds");
  const bool ahead = k + 3 * R <= K;
  for (int64_t j = 0; j < vecEnd; j += kLanes) {
    if (ahead)
#pragma GCC unroll 8
      for (int r = 0; r < R; r++) __builtin_prefetch(r0 + (2 * R + r) * N + j);
    Vec y[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) y[r] = loadWeights(r0 + r * N + j);
    for (int64_t i = 0; i < M; i++) {
      const float* x = a + i * K + k;
      // Two chains, so that a pass waits on half as many multiply-adds in a row.
      Vec s = load(sums[i] + j), t = x[1] * y[1];
      s += x[0] * y[0];
#pragma GCC unroll 8
      for (int r = 2; r < R; r += 2) {
        s += x[r] * y[r];
        t += x[r + 1] * y[r + 1];
      }
      store(sums[i] + j, s + t);
    }
  }
  for (int64_t j = vecEnd; j < width; j++)
    for (int64_t i = 0; i < M; i++) {
      const float* x = a + i * K + k;
      float s = sums[i][j];
      for (int r = 0; r < R; r++) s += x[r] * weight(r0 + r * N + j);
      sums[i][j] = s;
    }
}

// Columns [n0, n1) of c = a @ b for b K×N, in equal chunks whose accumulator rows (M × chunk ≤ 8192 floats, 32 KB)
// stay in L1. Chunks are as wide as that allows (at one row, a thread's whole band), so each weight row is one long
// contiguous run and the band streams through almost sequentially; eight weight rows are added per pass over the
// accumulators. Against 512-column chunks and four rows a pass, one core read the benchmark GPT's decode weights at
// 27-31 GB/s instead of 23-28 in f32 and 29-32 instead of 20-26 in bf16 (the 3072-row projection gained most).
template <typename W>
void band(const float* a, const W* b, float* c, const float* bias, int64_t M, int64_t N, int64_t K, int64_t n0,
          int64_t n1, bool acc) {
  constexpr int64_t kSumFloats = 8192;
  alignas(64) float sums[kSumFloats];
  const int64_t widest = kSumFloats / M / kLanes * kLanes, chunks = (n1 - n0 + widest - 1) / widest;
  const int64_t chunk = ((n1 - n0 + chunks - 1) / chunks + kLanes - 1) / kLanes * kLanes;
  for (int64_t c0 = n0; c0 < n1; c0 += chunk) {
    const int64_t width = std::min(chunk, n1 - c0), vecEnd = width / kLanes * kLanes;
    float* rowSums[kSkinnyMaxRows];
    for (int64_t i = 0; i < M; i++) {
      rowSums[i] = sums + i * chunk;
      std::fill(rowSums[i], rowSums[i] + width, 0.0f);
    }
    int64_t k = 0;
    for (; k + 8 <= K; k += 8) addRows<8>(a, b + k * N + c0, rowSums, M, N, K, k, vecEnd, width);
    for (; k + 2 <= K; k += 2) addRows<2>(a, b + k * N + c0, rowSums, M, N, K, k, vecEnd, width);
    for (; k < K; k++) {
      const W* r = b + k * N + c0;
      for (int64_t i = 0; i < M; i++) {
        const float x = a[i * K + k];
        int64_t j = 0;
        for (; j < vecEnd; j += kLanes) store(rowSums[i] + j, load(rowSums[i] + j) + x * loadWeights(r + j));
        for (; j < width; j++) rowSums[i][j] += x * weight(r + j);
      }
    }
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < width; j++) {
        float* out = c + i * N + c0 + j;
        *out = start(out, bias, c0 + j, acc) + rowSums[i][j];
      }
  }
}

template <typename W>
void gemmNT(const float* a, const W* b, float* c, const float* bias, int64_t M, int64_t N, int64_t K, bool acc) {
  // Threads split the columns in blocks of 64.
  constexpr int64_t kBlock = 64;
  const int64_t blocks = (N + kBlock - 1) / kBlock;
  const int64_t grain = std::max<int64_t>(1, (1 << 16) / (M * K * kBlock));
  // Weight rows are fetched this far ahead of their tile (about 32 KB): the row stream alone left the loads waiting
  // on memory (the benchmark GPT's LM head: 352 → 225 µs a decode step).
  const int64_t ahead = std::max<int64_t>(4, (32 << 10) / (K * static_cast<int64_t>(sizeof(W))));
  parallelFor(blocks, grain, [&](int64_t lo, int64_t hi) {
    int64_t n = lo * kBlock;
    const int64_t end = std::min(hi * kBlock, N);
    for (; n + 4 <= end; n += 4) columns<4>(a, b, c, bias, M, N, K, n, ahead, acc);
    for (; n < end; n++) columns<1>(a, b, c, bias, M, N, K, n, ahead, acc);
  });
}

template <typename W>
void gemmNN(const float* a, const W* b, float* c, const float* bias, int64_t M, int64_t N, int64_t K, bool acc) {
  // Threads split the columns in bands of whole vectors; a small product stays on one thread.
  const int64_t vectors = (N + kLanes - 1) / kLanes;
  const int64_t grain = std::max<int64_t>(1, (1 << 16) / (M * K * kLanes));
  parallelFor(vectors, grain, [&](int64_t lo, int64_t hi) {
    band(a, b, c, bias, M, N, K, lo * kLanes, std::min(hi * kLanes, N), acc);
  });
}

}  // namespace

void skinnyGemmNT(const float* a, const float* b, float* c, const float* bias, int64_t M, int64_t N, int64_t K,
                  bool accumulate) {
  gemmNT(a, b, c, bias, M, N, K, accumulate);
}
void skinnyGemmNT(const float* a, const uint16_t* b, float* c, const float* bias, int64_t M, int64_t N, int64_t K,
                  bool accumulate) {
  gemmNT(a, b, c, bias, M, N, K, accumulate);
}
void skinnyGemmNN(const float* a, const float* b, float* c, const float* bias, int64_t M, int64_t N, int64_t K,
                  bool accumulate) {
  gemmNN(a, b, c, bias, M, N, K, accumulate);
}
void skinnyGemmNN(const float* a, const uint16_t* b, float* c, const float* bias, int64_t M, int64_t N, int64_t K,
                  bool accumulate) {
  gemmNN(a, b, c, bias, M, N, K, accumulate);
}

}  // namespace ik
