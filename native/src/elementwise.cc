// Elementwise kernels: broadcasting binary ops and comparisons, where, and unary activations with their backward.
// Op codes are shared with src/tensor/ops/elementwise.ts.
#include "broadcast.h"
#include "common.h"
#include "vmath.h"

namespace ik {
namespace {

enum BinaryOp {
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMaximum,
  kMinimum,
  kEq,
  kNe,
  kLt,
  kLe,
  kGt,
  kGe,
  kMaskKeep,  // a where b != 0, else 0
  kMaskDrop,  // 0 where b != 0, else a
  kWinShare,   // 1 where a > b, 0.5 on a tie, else 0: maximum's gradient share
  kLoseShare,  // 1 where a < b, 0.5 on a tie, else 0: minimum's gradient share
};

enum UnaryOp {
  kNeg,
  kExp,
  kLog,
  kSqrt,
  kTanh,
  kSigmoid,
  kRelu,
  kPow,
  kClamp,
  kGeluTanh,
  kGeluErf,
  kSilu,
  kAbs,
  kScale,
};

constexpr int64_t kCheapGrain = 1 << 14;
constexpr int64_t kMathGrain = 1 << 12;

// A tensor operand, or a JS number standing for a one-element operand of shape [].
const float* operand(const Napi::CallbackInfo& info, const Args& args, size_t i, size_t shapeIdx, float& scalar,
                     bcast::Dims& dims) {
  if (info[i].IsNumber()) {
    scalar = static_cast<float>(args.num(i));
    dims = {nullptr, 0};
    return &scalar;
  }
  dims = bcast::dimsArg(args, shapeIdx);
  return args.f32(i, dims.numel());
}

template <typename F>
void runBinary(const bcast::Plan<2>& p, const float* a, const float* b, float* out, F f) {
  const int64_t sa = p.innerStride(0), sb = p.innerStride(1);
  parallelFor(p.numel, kCheapGrain, [&](int64_t lo, int64_t hi) {
    bcast::forSegments(p, lo, hi, [&](int64_t o, const int64_t* off, int64_t n) {
      const float* x = a + off[0];
      const float* y = b + off[1];
      float* z = out + o;
      if (sa == 1 && sb == 1) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) z[i] = f(x[i], y[i]);
      } else if (sa == 1) {
        const float v = y[0];
#pragma omp simd
        for (int64_t i = 0; i < n; i++) z[i] = f(x[i], v);
      } else if (sb == 1) {
        const float u = x[0];
#pragma omp simd
        for (int64_t i = 0; i < n; i++) z[i] = f(u, y[i]);
      } else {
        const float r = f(x[0], y[0]);
        for (int64_t i = 0; i < n; i++) z[i] = r;
      }
    });
  });
}

// binary(op, a, aShape, b, bShape, out, outShape): out = a op b with broadcasting; b may be a number.
Napi::Value binary(const Napi::CallbackInfo& info) {
  Args args(info, "binary", 7);
  int64_t op = args.int_(0);
  bcast::Dims aDims = bcast::dimsArg(args, 2), outDims = bcast::dimsArg(args, 6), bDims;
  float scalar;
  const float* b = operand(info, args, 3, 4, scalar, bDims);
  const float* a = args.f32(1, aDims.numel());
  float* out = args.f32(5, outDims.numel());
  auto p = bcast::makePlan<2>(args, outDims, {aDims, bDims});
  if (p.numel == 0) return info.Env().Undefined();
  auto mask = [](bool c) { return c ? 1.0f : 0.0f; };
  switch (op) {
    case kAdd: runBinary(p, a, b, out, [](float x, float y) { return x + y; }); break;
    case kSub: runBinary(p, a, b, out, [](float x, float y) { return x - y; }); break;
    case kMul: runBinary(p, a, b, out, [](float x, float y) { return x * y; }); break;
    case kDiv: runBinary(p, a, b, out, [](float x, float y) { return x / y; }); break;
    case kMaximum: runBinary(p, a, b, out, [](float x, float y) { return (x > y || x != x) ? x : y; }); break;
    case kMinimum: runBinary(p, a, b, out, [](float x, float y) { return (x < y || x != x) ? x : y; }); break;
    case kEq: runBinary(p, a, b, out, [&](float x, float y) { return mask(x == y); }); break;
    case kNe: runBinary(p, a, b, out, [&](float x, float y) { return mask(x != y); }); break;
    case kLt: runBinary(p, a, b, out, [&](float x, float y) { return mask(x < y); }); break;
    case kLe: runBinary(p, a, b, out, [&](float x, float y) { return mask(x <= y); }); break;
    case kGt: runBinary(p, a, b, out, [&](float x, float y) { return mask(x > y); }); break;
    case kGe: runBinary(p, a, b, out, [&](float x, float y) { return mask(x >= y); }); break;
    case kMaskKeep: runBinary(p, a, b, out, [](float x, float c) { return c != 0.0f ? x : 0.0f; }); break;
    case kMaskDrop: runBinary(p, a, b, out, [](float x, float c) { return c != 0.0f ? 0.0f : x; }); break;
    case kWinShare:
      runBinary(p, a, b, out, [](float x, float y) { return x > y ? 1.0f : (x == y ? 0.5f : 0.0f); });
      break;
    case kLoseShare:
      runBinary(p, a, b, out, [](float x, float y) { return x < y ? 1.0f : (x == y ? 0.5f : 0.0f); });
      break;
    default: args.fail("unknown op code " + std::to_string(op));
  }
  return info.Env().Undefined();
}
IK_EXPORT("binary", binary);

// where(cond, condShape, a, aShape, b, bShape, out, outShape): out = cond != 0 ? a : b; a and b may be numbers.
Napi::Value where(const Napi::CallbackInfo& info) {
  Args args(info, "where", 8);
  bcast::Dims cDims = bcast::dimsArg(args, 1), outDims = bcast::dimsArg(args, 7), aDims, bDims;
  float aScalar, bScalar;
  const float* c = args.f32(0, cDims.numel());
  const float* a = operand(info, args, 2, 3, aScalar, aDims);
  const float* b = operand(info, args, 4, 5, bScalar, bDims);
  float* out = args.f32(6, outDims.numel());
  auto p = bcast::makePlan<3>(args, outDims, {cDims, aDims, bDims});
  if (p.numel == 0) return info.Env().Undefined();
  const int64_t sc = p.innerStride(0), sa = p.innerStride(1), sb = p.innerStride(2);
  parallelFor(p.numel, kCheapGrain, [&](int64_t lo, int64_t hi) {
    bcast::forSegments(p, lo, hi, [&](int64_t o, const int64_t* off, int64_t n) {
      const float* cs = c + off[0];
      const float* as = a + off[1];
      const float* bs = b + off[2];
      float* z = out + o;
      if (sc == 1 && sa == 1 && sb == 1) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) z[i] = cs[i] != 0.0f ? as[i] : bs[i];
      } else {
        for (int64_t i = 0; i < n; i++) z[i] = cs[i * sc] != 0.0f ? as[i * sa] : bs[i * sb];
      }
    });
  });
  return info.Env().Undefined();
}
IK_EXPORT("where", where);

template <typename F>
void runUnary(const float* x, float* y, int64_t n, int64_t grain, F f) {
  parallelFor(n, grain, [&](int64_t lo, int64_t hi) {
#pragma omp simd
    for (int64_t i = lo; i < hi; i++) y[i] = f(x[i]);
  });
}

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluCubic = 0.044715f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;

// GPT-2's 0.5·x·(1 + tanh(u)), u = √(2/π)(x + 0.044715x³), written as x·sigmoid(2u): the same function without
// the cancellation in 1 + tanh(u) for negative x.
inline float geluTanh(float x) {
  float u = kSqrt2OverPi * (x + kGeluCubic * x * x * x);
  return x * vmath::sigmoid(2.0f * u);
}
inline float geluTanhGrad(float x) {
  float u = kSqrt2OverPi * (x + kGeluCubic * x * x * x);
  float du = kSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * x * x);
  float s = vmath::sigmoid(2.0f * u);
  return s + x * s * (1.0f - s) * 2.0f * du;
}

void powForward(const float* x, float* y, int64_t n, float p) {
  if (p == 2.0f) return runUnary(x, y, n, kCheapGrain, [](float v) { return v * v; });
  if (p == 3.0f) return runUnary(x, y, n, kCheapGrain, [](float v) { return v * v * v; });
  if (p == 1.0f) return runUnary(x, y, n, kCheapGrain, [](float v) { return v; });
  if (p == 0.0f) return runUnary(x, y, n, kCheapGrain, [](float) { return 1.0f; });
  if (p == -1.0f) return runUnary(x, y, n, kCheapGrain, [](float v) { return 1.0f / v; });
  if (p == 0.5f || p == -0.5f) {
    parallelFor(n, kCheapGrain, [&](int64_t lo, int64_t hi) { vmath::sqrtArray(x + lo, y + lo, hi - lo); });
    if (p < 0) runUnary(y, y, n, kCheapGrain, [](float v) { return 1.0f / v; });
    return;
  }
  parallelFor(n, kMathGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) y[i] = std::pow(x[i], p);
  });
}

// unary(op, x, out, p0, p1): p0/p1 are the exponent of pow, the bounds of clamp, the factor of scale.
Napi::Value unary(const Napi::CallbackInfo& info) {
  Args args(info, "unary", 5);
  int64_t op = args.int_(0);
  int64_t n = static_cast<int64_t>(args.length(1));
  const float* x = args.f32(1, n);
  float* y = args.f32(2, n);
  const float p0 = static_cast<float>(args.num(3)), p1 = static_cast<float>(args.num(4));
  switch (op) {
    case kNeg: runUnary(x, y, n, kCheapGrain, [](float v) { return -v; }); break;
    case kExp: runUnary(x, y, n, kMathGrain, [](float v) { return vmath::exp(v); }); break;
    case kLog: runUnary(x, y, n, kMathGrain, [](float v) { return vmath::log(v); }); break;
    case kSqrt:
      parallelFor(n, kCheapGrain, [&](int64_t lo, int64_t hi) { vmath::sqrtArray(x + lo, y + lo, hi - lo); });
      break;
    case kTanh: runUnary(x, y, n, kMathGrain, [](float v) { return vmath::tanh(v); }); break;
    case kSigmoid: runUnary(x, y, n, kMathGrain, [](float v) { return vmath::sigmoid(v); }); break;
    case kRelu: runUnary(x, y, n, kCheapGrain, [](float v) { return v > 0.0f ? v : 0.0f; }); break;
    case kPow: powForward(x, y, n, p0); break;
    case kClamp: runUnary(x, y, n, kCheapGrain, [=](float v) { return v < p0 ? p0 : (v > p1 ? p1 : v); }); break;
    case kGeluTanh: runUnary(x, y, n, kMathGrain, [](float v) { return geluTanh(v); }); break;
    case kGeluErf:
      runUnary(x, y, n, kMathGrain, [](float v) { return v * vmath::normalCdf(v); });
      break;
    case kSilu: runUnary(x, y, n, kMathGrain, [](float v) { return v * vmath::sigmoid(v); }); break;
    case kAbs: runUnary(x, y, n, kCheapGrain, [](float v) { return v < 0.0f ? -v : v; }); break;
    case kScale: runUnary(x, y, n, kCheapGrain, [=](float v) { return v * p0; }); break;
    default: args.fail("unknown op code " + std::to_string(op));
  }
  return info.Env().Undefined();
}
IK_EXPORT("unary", unary);

// dx[i] = f(x[i], y[i], g[i]) in parallel.
template <typename F>
void runGrad(const float* x, const float* y, const float* g, float* dx, int64_t n, int64_t grain, F f) {
  parallelFor(n, grain, [&](int64_t lo, int64_t hi) {
#pragma omp simd
    for (int64_t i = lo; i < hi; i++) dx[i] = f(x[i], y[i], g[i]);
  });
}

void powBackward(const float* x, const float* y, const float* g, float* dx, int64_t n, float p) {
  if (p == 2.0f) return runGrad(x, y, g, dx, n, kCheapGrain, [](float v, float, float d) { return 2.0f * v * d; });
  if (p == 1.0f) return runGrad(x, y, g, dx, n, kCheapGrain, [](float, float, float d) { return d; });
  if (p == 0.0f) return runGrad(x, y, g, dx, n, kCheapGrain, [](float, float, float) { return 0.0f; });
  if (p == 0.5f) return runGrad(x, y, g, dx, n, kCheapGrain, [](float, float r, float d) { return 0.5f * d / r; });
  if (p == -1.0f) return runGrad(x, y, g, dx, n, kCheapGrain, [](float, float r, float d) { return -d * r * r; });
  parallelFor(n, kMathGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) dx[i] = g[i] * p * std::pow(x[i], p - 1.0f);
  });
}

// unaryBackward(op, x, y, g, dx, p0, p1): dx = g · dy/dx, given the input x and the forward output y.
Napi::Value unaryBackward(const Napi::CallbackInfo& info) {
  Args args(info, "unaryBackward", 7);
  int64_t op = args.int_(0);
  int64_t n = static_cast<int64_t>(args.length(1));
  const float* x = args.f32(1, n);
  const float* y = args.f32(2, n);
  const float* g = args.f32(3, n);
  float* dx = args.f32(4, n);
  const float p0 = static_cast<float>(args.num(5)), p1 = static_cast<float>(args.num(6));
  switch (op) {
    case kNeg: runGrad(x, y, g, dx, n, kCheapGrain, [](float, float, float d) { return -d; }); break;
    case kExp: runGrad(x, y, g, dx, n, kCheapGrain, [](float, float r, float d) { return d * r; }); break;
    case kLog: runGrad(x, y, g, dx, n, kCheapGrain, [](float v, float, float d) { return d / v; }); break;
    case kSqrt: runGrad(x, y, g, dx, n, kCheapGrain, [](float, float r, float d) { return 0.5f * d / r; }); break;
    case kTanh:
      runGrad(x, y, g, dx, n, kCheapGrain, [](float, float r, float d) { return d * (1.0f - r * r); });
      break;
    case kSigmoid:
      runGrad(x, y, g, dx, n, kCheapGrain, [](float, float r, float d) { return d * r * (1.0f - r); });
      break;
    case kRelu:
      runGrad(x, y, g, dx, n, kCheapGrain, [](float v, float, float d) { return v > 0.0f ? d : 0.0f; });
      break;
    case kPow: powBackward(x, y, g, dx, n, p0); break;
    case kClamp:
      runGrad(x, y, g, dx, n, kCheapGrain, [=](float v, float, float d) { return v >= p0 && v <= p1 ? d : 0.0f; });
      break;
    case kGeluTanh:
      runGrad(x, y, g, dx, n, kMathGrain, [](float v, float, float d) { return d * geluTanhGrad(v); });
      break;
    case kGeluErf:
      runGrad(x, y, g, dx, n, kMathGrain, [](float v, float, float d) {
        return d * (vmath::normalCdf(v) + v * kInvSqrt2Pi * vmath::exp(-0.5f * v * v));
      });
      break;
    case kSilu:
      runGrad(x, y, g, dx, n, kMathGrain, [](float v, float, float d) {
        float s = vmath::sigmoid(v);
        return d * s * (1.0f + v * (1.0f - s));
      });
      break;
    case kAbs:
      runGrad(x, y, g, dx, n, kCheapGrain,
              [](float v, float, float d) { return v > 0.0f ? d : (v < 0.0f ? -d : 0.0f); });
      break;
    case kScale: runGrad(x, y, g, dx, n, kCheapGrain, [=](float, float, float d) { return d * p0; }); break;
    default: args.fail("unknown op code " + std::to_string(op));
  }
  return info.Env().Undefined();
}
IK_EXPORT("unaryBackward", unaryBackward);

}  // namespace
}  // namespace ik
