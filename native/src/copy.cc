// Copy kernels behind the shape ops: permute (a materialising strided copy), block copies for slice, concat and
// split, broadcast expansion, and int32 → f32. Copies move raw elements, so f32, i32 and bf16 all work.
#include <algorithm>
#include <cstring>

#include "broadcast.h"
#include "common.h"

namespace ik {
namespace {

struct Raw {
  char* data;
  int64_t size;  // bytes per element
};

Raw rawArray(const Napi::CallbackInfo& info, const Args& args, size_t i, size_t minLen) {
  if (!info[i].IsTypedArray()) args.fail("argument " + std::to_string(i) + " must be a typed array");
  switch (info[i].As<Napi::TypedArray>().TypedArrayType()) {
    case napi_float32_array: return {reinterpret_cast<char*>(args.f32(i, minLen)), 4};
    case napi_int32_array: return {reinterpret_cast<char*>(args.i32(i, minLen)), 4};
    case napi_uint16_array: return {reinterpret_cast<char*>(args.u16(i, minLen)), 2};
    default: args.fail("argument " + std::to_string(i) + " must be a Float32Array, Int32Array or Uint16Array");
  }
}

void sameElementSize(const Args& args, const Raw& a, const Raw& b) {
  if (a.size != b.size) args.fail("source and destination element sizes differ");
}

constexpr int64_t kCopyGrain = 1 << 15;
constexpr int64_t kTile = 32;

// permute(src, dst, shape, axes): dst = src with output axis d taken from input axis axes[d].
Napi::Value permute(const Napi::CallbackInfo& info) {
  Args args(info, "permute", 4);
  bcast::Dims shape = bcast::dimsArg(args, 2);
  const int64_t rank = shape.rank;
  const int32_t* axes = args.i32(3, rank);
  if (static_cast<int64_t>(args.length(3)) != rank) args.fail("axes and shape have different lengths");
  bool seen[bcast::kMaxDims] = {};
  for (int64_t d = 0; d < rank; d++) {
    if (axes[d] < 0 || axes[d] >= rank || seen[axes[d]]) args.fail("axes are not a permutation of the dimensions");
    seen[axes[d]] = true;
  }
  const int64_t n = shape.numel();
  Raw src = rawArray(info, args, 0, n), dst = rawArray(info, args, 1, n);
  sameElementSize(args, src, dst);
  if (n == 0) return info.Env().Undefined();
  const int64_t es = src.size;

  // Output dimensions with their input strides; size-1 dimensions dropped, contiguous neighbours merged.
  int64_t inStride[bcast::kMaxDims];
  for (int64_t k = rank - 1, s = 1; k >= 0; k--) {
    inStride[k] = s;
    s *= shape.d[k];
  }
  int nd = 0;
  int64_t sz[bcast::kMaxDims], ist[bcast::kMaxDims], ost[bcast::kMaxDims];
  for (int64_t d = 0; d < rank; d++) {
    int64_t size = shape.d[axes[d]], st = inStride[axes[d]];
    if (size == 1) continue;
    if (nd > 0 && ist[nd - 1] == st * size) {
      sz[nd - 1] *= size;
      ist[nd - 1] = st;
    } else {
      sz[nd] = size;
      ist[nd] = st;
      nd++;
    }
  }
  if (nd <= 1) {  // the order is unchanged
    parallelFor(n, kCopyGrain, [&](int64_t lo, int64_t hi) {
      std::memcpy(dst.data + lo * es, src.data + lo * es, (hi - lo) * es);
    });
    return info.Env().Undefined();
  }
  for (int64_t d = nd - 1, s = 1; d >= 0; d--) {
    ost[d] = s;
    s *= sz[d];
  }

  if (ist[nd - 1] == 1) {
    // Whole innermost rows move together: (B,T,H,D) → (B,H,T,D) copies rows of D.
    const int64_t inner = sz[nd - 1], rows = n / inner;
    parallelFor(rows, std::max<int64_t>(1, kCopyGrain / inner), [&](int64_t lo, int64_t hi) {
      int64_t idx[bcast::kMaxDims], off = 0, rem = lo;
      for (int d = nd - 2; d >= 0; d--) {
        idx[d] = rem % sz[d];
        rem /= sz[d];
        off += idx[d] * ist[d];
      }
      for (int64_t row = lo; row < hi; row++) {
        std::memcpy(dst.data + row * inner * es, src.data + off * es, inner * es);
        for (int d = nd - 2; d >= 0; d--) {
          off += ist[d];
          if (++idx[d] < sz[d]) break;
          off -= sz[d] * ist[d];
          idx[d] = 0;
        }
      }
    });
    return info.Env().Undefined();
  }

  // The input's contiguous dimension q is not last in the output: copy in square tiles over (q, last) so that
  // both the reads along q and the writes along the last dimension stay within cache lines.
  int q = 0;
  while (ist[q] != 1) q++;
  const int last = nd - 1;
  const int64_t tilesQ = (sz[q] + kTile - 1) / kTile, tilesL = (sz[last] + kTile - 1) / kTile;
  const int64_t batches = n / (sz[q] * sz[last]);
  auto copyTiles = [&](auto* s, auto* t) {
    parallelFor(batches * tilesQ * tilesL, std::max<int64_t>(1, kCopyGrain / (kTile * kTile)),
                [&](int64_t lo, int64_t hi) {
                  for (int64_t u = lo; u < hi; u++) {
                    int64_t b = u / (tilesQ * tilesL), tile = u % (tilesQ * tilesL);
                    int64_t q0 = (tile / tilesL) * kTile, l0 = (tile % tilesL) * kTile;
                    int64_t q1 = std::min(sz[q], q0 + kTile), l1 = std::min(sz[last], l0 + kTile);
                    int64_t inOff = 0, outOff = 0;
                    for (int d = nd - 2; d >= 0; d--) {
                      if (d == q) continue;
                      int64_t i = b % sz[d];
                      b /= sz[d];
                      inOff += i * ist[d];
                      outOff += i * ost[d];
                    }
                    const int64_t sL = ist[last], oQ = ost[q];
                    for (int64_t a = q0; a < q1; a++)
                      for (int64_t c = l0; c < l1; c++) t[outOff + a * oQ + c] = s[inOff + a + c * sL];
                  }
                });
  };
  if (es == 4) copyTiles(reinterpret_cast<const uint32_t*>(src.data), reinterpret_cast<uint32_t*>(dst.data));
  else copyTiles(reinterpret_cast<const uint16_t*>(src.data), reinterpret_cast<uint16_t*>(dst.data));
  return info.Env().Undefined();
}
IK_EXPORT("permute", permute);

// copyBlocks(src, dst, count, len, srcStride, srcOffset, dstStride, dstOffset): for each block o < count,
// dst[o·dstStride + dstOffset + j] = src[o·srcStride + srcOffset + j] for j < len. Slice, concat and split.
Napi::Value copyBlocks(const Napi::CallbackInfo& info) {
  Args args(info, "copyBlocks", 8);
  const int64_t count = args.int_(2), len = args.int_(3);
  const int64_t srcStride = args.int_(4), srcOff = args.int_(5), dstStride = args.int_(6), dstOff = args.int_(7);
  const bool empty = count == 0 || len == 0;
  Raw src = rawArray(info, args, 0, empty ? 0 : (count - 1) * srcStride + srcOff + len);
  Raw dst = rawArray(info, args, 1, empty ? 0 : (count - 1) * dstStride + dstOff + len);
  sameElementSize(args, src, dst);
  if (empty) return info.Env().Undefined();
  const int64_t es = src.size;
  parallelFor(count * len, kCopyGrain, [&](int64_t lo, int64_t hi) {
    while (lo < hi) {
      int64_t o = lo / len, j = lo % len;
      int64_t m = std::min(len - j, hi - lo);
      std::memcpy(dst.data + (o * dstStride + dstOff + j) * es, src.data + (o * srcStride + srcOff + j) * es, m * es);
      lo += m;
    }
  });
  return info.Env().Undefined();
}
IK_EXPORT("copyBlocks", copyBlocks);

// writeKV(src, dst, B, T, H, hd, Tmax, pos): src (B, T, H, hd) into the head-major cache dst (B, H, Tmax, hd) at times
// pos..pos+T-1.
Napi::Value writeKV(const Napi::CallbackInfo& info) {
  Args args(info, "writeKV", 8);
  const int64_t B = args.int_(2), T = args.int_(3), H = args.int_(4), hd = args.int_(5), Tmax = args.int_(6),
                pos = args.int_(7);
  if (pos + T > Tmax) args.fail("writing " + std::to_string(T) + " steps at " + std::to_string(pos) + " overruns " +
                                std::to_string(Tmax));
  const float* src = args.f32(0, B * T * H * hd);
  float* dst = args.f32(1, B * H * Tmax * hd);
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < T; t++)
      for (int64_t h = 0; h < H; h++)
        std::memcpy(dst + ((b * H + h) * Tmax + pos + t) * hd, src + ((b * T + t) * H + h) * hd, hd * sizeof(float));
  return info.Env().Undefined();
}
IK_EXPORT("writeKV", writeKV);

// broadcastCopy(src, srcShape, dst, dstShape): dst = src expanded along its size-1 (or missing) dimensions.
Napi::Value broadcastCopy(const Napi::CallbackInfo& info) {
  Args args(info, "broadcastCopy", 4);
  bcast::Dims srcDims = bcast::dimsArg(args, 1), dstDims = bcast::dimsArg(args, 3);
  Raw src = rawArray(info, args, 0, srcDims.numel()), dst = rawArray(info, args, 2, dstDims.numel());
  sameElementSize(args, src, dst);
  auto p = bcast::makePlan<1>(args, dstDims, {srcDims});
  if (p.numel == 0) return info.Env().Undefined();
  const bool contiguous = p.innerStride(0) == 1;
  auto expand = [&](auto* s, auto* t) {
    parallelFor(p.numel, kCopyGrain, [&](int64_t lo, int64_t hi) {
      bcast::forSegments(p, lo, hi, [&](int64_t o, const int64_t* off, int64_t len) {
        if (contiguous) std::memcpy(t + o, s + off[0], len * sizeof(*t));
        else std::fill(t + o, t + o + len, s[off[0]]);
      });
    });
  };
  if (src.size == 4) expand(reinterpret_cast<const uint32_t*>(src.data), reinterpret_cast<uint32_t*>(dst.data));
  else expand(reinterpret_cast<const uint16_t*>(src.data), reinterpret_cast<uint16_t*>(dst.data));
  return info.Env().Undefined();
}
IK_EXPORT("broadcastCopy", broadcastCopy);

// i32ToF32(src, dst): exact below 2^24 in magnitude, rounded to nearest beyond.
Napi::Value i32ToF32(const Napi::CallbackInfo& info) {
  Args args(info, "i32ToF32", 2);
  const int64_t n = static_cast<int64_t>(args.length(0));
  const int32_t* src = args.i32(0, n);
  float* dst = args.f32(1, n);
  parallelFor(n, kCopyGrain, [&](int64_t lo, int64_t hi) {
#pragma omp simd
    for (int64_t i = lo; i < hi; i++) dst[i] = static_cast<float>(src[i]);
  });
  return info.Env().Undefined();
}
IK_EXPORT("i32ToF32", i32ToF32);

}  // namespace
}  // namespace ik
