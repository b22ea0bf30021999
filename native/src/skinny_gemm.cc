// Few-row products with a Linear weight (N×K, rows contiguous along k): dot products of rows of a with rows of b,
// register-blocked 4×4. Nothing is packed, so each weight row is read once, straight from memory, by one thread.
#include "skinny_gemm.h"

#include <algorithm>

#include "common.h"
#include "vec.h"

namespace ik {
namespace {

typedef int32_t Lanes __attribute__((vector_size(kLanes * sizeof(int32_t))));

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

template <int RM, int RN>
void tile(const float* a, const float* b, float* c, const float* bias, int64_t N, int64_t K, int64_t n0, int64_t ahead,
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
      y[j] = load(b + (n0 + j) * K + k);
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
      for (int j = 0; j < RN; j++) dot[i * RN + j] += a[i * K + k] * b[(n0 + j) * K + k];
  for (int i = 0; i < RM; i++)
    for (int j = 0; j < RN; j++) {
      float* out = c + i * N + n0 + j;
      *out = start(out, bias, n0 + j, acc) + dot[i * RN + j];
    }
}

// Every row of a against RN rows of b: the RN rows stay in L1 while the row groups pass over them.
template <int RN>
void columns(const float* a, const float* b, float* c, const float* bias, int64_t M, int64_t N, int64_t K, int64_t n0,
             int64_t ahead, bool acc) {
  int64_t m = 0;
  for (; m + 4 <= M; m += 4) tile<4, RN>(a + m * K, b, c + m * N, bias, N, K, n0, ahead, acc);
  for (; m + 2 <= M; m += 2) tile<2, RN>(a + m * K, b, c + m * N, bias, N, K, n0, ahead, acc);
  for (; m < M; m++) tile<1, RN>(a + m * K, b, c + m * N, bias, N, K, n0, ahead, acc);
}

}  // namespace

void skinnyGemmNT(const float* a, const float* b, float* c, const float* bias, int64_t M, int64_t N, int64_t K,
                  bool accumulate) {
  // Threads split the columns in blocks of 64.
  constexpr int64_t kBlock = 64;
  const int64_t blocks = (N + kBlock - 1) / kBlock;
  const int64_t grain = std::max<int64_t>(1, (1 << 16) / (M * K * kBlock));
  // Weight rows are fetched this far ahead of their tile (about 32 KB): the row stream alone left the loads waiting
  // on memory (the benchmark GPT's LM head: 352 → 225 µs a decode step).
  const int64_t ahead = std::max<int64_t>(4, (32 << 10) / (K * static_cast<int64_t>(sizeof(float))));
  parallelFor(blocks, grain, [&](int64_t lo, int64_t hi) {
    int64_t n = lo * kBlock;
    const int64_t end = std::min(hi * kBlock, N);
    for (; n + 4 <= end; n += 4) columns<4>(a, b, c, bias, M, N, K, n, ahead, accumulate);
    for (; n < end; n++) columns<1>(a, b, c, bias, M, N, K, n, ahead, accumulate);
  });
}

}  // namespace ik
