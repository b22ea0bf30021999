// NumPy broadcasting for kernels with several operands. A plan drops size-1 output dimensions and merges
// neighbours that every operand walks contiguously, so same-shape operands become one flat loop, a scalar a
// stride-0 loop and a row broadcast ((B,T,D) with (D)) rows of D. The innermost stride of every operand is then
// 0 or 1, which is what lets the kernels use tight contiguous loops per segment.
#pragma once
#include <algorithm>
#include <cstdint>
#include <string>

#include "common.h"

namespace ik {
namespace bcast {

constexpr int kMaxDims = 16;

// A shape passed from JS as an Int32Array.
struct Dims {
  const int32_t* d;
  int64_t rank;
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t i = 0; i < rank; i++) n *= d[i];
    return n;
  }
};

inline std::string str(const Dims& s) {
  std::string out = "[";
  for (int64_t i = 0; i < s.rank; i++) out += (i ? ", " : "") + std::to_string(s.d[i]);
  return out + "]";
}

inline Dims dimsArg(const Args& args, size_t i) {
  int64_t rank = static_cast<int64_t>(args.length(i));
  const int32_t* d = args.i32(i, rank);
  if (rank > kMaxDims) args.fail("shapes may have at most " + std::to_string(kMaxDims) + " dimensions");
  for (int64_t k = 0; k < rank; k++)
    if (d[k] < 0) args.fail("shape " + str({d, rank}) + " has a negative dimension");
  return {d, rank};
}

template <int K>
struct Plan {
  int ndim = 0;
  int64_t numel = 0;
  int64_t shape[kMaxDims];
  int64_t stride[K][kMaxDims];  // element strides of each operand, 0 along broadcast dimensions
  int64_t innerStride(int k) const { return stride[k][ndim - 1]; }
};

// Operands are right-aligned against the output shape; each of their dimensions must equal the output's or be 1.
template <int K>
Plan<K> makePlan(const Args& args, const Dims& out, const Dims (&in)[K]) {
  Plan<K> p;
  const int64_t n = out.rank;
  int64_t full[K][kMaxDims];
  for (int k = 0; k < K; k++) {
    if (in[k].rank > n) args.fail("operand shape " + str(in[k]) + " has more dimensions than " + str(out));
    int64_t s = 1;
    for (int64_t d = n - 1; d >= 0; d--) {
      int64_t id = d - (n - in[k].rank);
      int64_t size = id >= 0 ? in[k].d[id] : 1;
      if (size != out.d[d] && size != 1)
        args.fail("operand shape " + str(in[k]) + " does not broadcast to " + str(out));
      full[k][d] = size == 1 ? 0 : s;
      s *= size;
    }
  }
  p.numel = out.numel();
  for (int64_t d = 0; d < n; d++) {
    if (out.d[d] == 1) continue;
    bool merge = p.ndim > 0;
    for (int k = 0; k < K && merge; k++) merge = p.stride[k][p.ndim - 1] == full[k][d] * out.d[d];
    if (merge) {
      p.shape[p.ndim - 1] *= out.d[d];
      for (int k = 0; k < K; k++) p.stride[k][p.ndim - 1] = full[k][d];
    } else {
      p.shape[p.ndim] = out.d[d];
      for (int k = 0; k < K; k++) p.stride[k][p.ndim] = full[k][d];
      p.ndim++;
    }
  }
  if (p.ndim == 0) {  // a one-element output
    p.ndim = 1;
    p.shape[0] = 1;
    for (int k = 0; k < K; k++) p.stride[k][0] = 0;
  }
  return p;
}

// Calls fn(outOffset, operandOffsets, length) for each run of the innermost dimension inside the flat output
// range [lo, hi). Within a run operand k advances by innerStride(k) (0 or 1).
template <int K, typename F>
inline void forSegments(const Plan<K>& p, int64_t lo, int64_t hi, F&& fn) {
  if (lo >= hi) return;
  const int nd = p.ndim;
  const int64_t inner = p.shape[nd - 1];
  int64_t idx[kMaxDims];
  int64_t rowOff[K] = {};
  int64_t rem = lo / inner;
  int64_t col = lo % inner;
  for (int d = nd - 2; d >= 0; d--) {
    idx[d] = rem % p.shape[d];
    rem /= p.shape[d];
    for (int k = 0; k < K; k++) rowOff[k] += idx[d] * p.stride[k][d];
  }
  int64_t pos = lo;
  while (true) {
    int64_t len = std::min(inner - col, hi - pos);
    int64_t off[K];
    for (int k = 0; k < K; k++) off[k] = rowOff[k] + col * p.stride[k][nd - 1];
    fn(pos, off, len);
    pos += len;
    if (pos >= hi) return;
    col = 0;
    for (int d = nd - 2; d >= 0; d--) {
      for (int k = 0; k < K; k++) rowOff[k] += p.stride[k][d];
      if (++idx[d] < p.shape[d]) break;
      for (int k = 0; k < K; k++) rowOff[k] -= p.shape[d] * p.stride[k][d];
      idx[d] = 0;
    }
  }
}

}  // namespace bcast
}  // namespace ik
