// Shared helpers for every kernel family: registration, checked argument access, deterministic parallel loops.
#pragma once
#include <napi.h>
#include <omp.h>

#include <cstdint>
#include <string>

namespace ik {

using Fn = Napi::Value (*)(const Napi::CallbackInfo&);
void registerFn(const char* name, Fn fn);
struct Register {
  Register(const char* name, Fn fn) { registerFn(name, fn); }
};
// Each kernel file registers its own exports, so adding a kernel family touches no shared file.
#define IK_EXPORT(name, fn) static ::ik::Register ik_reg_##fn(name, fn)

// Checked access to a call's arguments. Every failure throws a JS Error naming the op: a bad call never crashes.
class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* op, size_t count) : info_(info), op_(op) {
    if (info.Length() < count)
      fail("expected " + std::to_string(count) + " arguments, got " + std::to_string(info.Length()));
  }
  [[noreturn]] void fail(const std::string& msg) const {
    throw Napi::Error::New(info_.Env(), std::string("native ") + op_ + ": " + msg);
  }
  float* f32(size_t i, size_t minLen) const { return typed<float>(i, minLen, napi_float32_array, "Float32Array"); }
  uint16_t* u16(size_t i, size_t minLen) const { return typed<uint16_t>(i, minLen, napi_uint16_array, "Uint16Array"); }
  int32_t* i32(size_t i, size_t minLen) const { return typed<int32_t>(i, minLen, napi_int32_array, "Int32Array"); }
  uint8_t* u8(size_t i, size_t minLen) const { return typed<uint8_t>(i, minLen, napi_uint8_array, "Uint8Array"); }
  size_t length(size_t i) const {
    if (!info_[i].IsTypedArray()) fail("argument " + std::to_string(i) + " must be a typed array");
    return info_[i].As<Napi::TypedArray>().ElementLength();
  }
  bool isNull(size_t i) const { return info_[i].IsNull() || info_[i].IsUndefined(); }
  int64_t int_(size_t i, int64_t lo = 0) const {
    if (!info_[i].IsNumber()) fail("argument " + std::to_string(i) + " must be a number");
    double v = info_[i].As<Napi::Number>().DoubleValue();
    if (v != static_cast<double>(static_cast<int64_t>(v)) || v < static_cast<double>(lo))
      fail("argument " + std::to_string(i) + " must be an integer >= " + std::to_string(lo) + ", got " +
           std::to_string(v));
    return static_cast<int64_t>(v);
  }
  double num(size_t i) const {
    if (!info_[i].IsNumber()) fail("argument " + std::to_string(i) + " must be a number");
    return info_[i].As<Napi::Number>().DoubleValue();
  }
  bool flag(size_t i) const { return info_[i].ToBoolean().Value(); }
  Napi::Env env() const { return info_.Env(); }

 private:
  template <typename T>
  T* typed(size_t i, size_t minLen, napi_typedarray_type type, const char* name) const {
    if (!info_[i].IsTypedArray()) fail("argument " + std::to_string(i) + " must be a " + name);
    auto arr = info_[i].As<Napi::TypedArray>();
    if (arr.TypedArrayType() != type) fail("argument " + std::to_string(i) + " must be a " + name);
    if (arr.ElementLength() < minLen)
      fail("argument " + std::to_string(i) + " has " + std::to_string(arr.ElementLength()) +
           " elements, the op needs " + std::to_string(minLen));
    auto* base = static_cast<uint8_t*>(arr.ArrayBuffer().Data());
    return reinterpret_cast<T*>(base + arr.ByteOffset());
  }
  const Napi::CallbackInfo& info_;
  const char* op_;
};

// Static partition of [0, n) over the OpenMP team: the same thread count always gives the same split,
// so results are bit-identical run to run. Small loops stay on the calling thread.
template <typename F>
inline void parallelFor(int64_t n, int64_t grain, F&& body) {
  int threads = omp_get_max_threads();
  if (n <= grain || threads <= 1) {
    body(int64_t(0), n);
    return;
  }
  int64_t chunks = (n + grain - 1) / grain;
  if (chunks < threads) threads = static_cast<int>(chunks);
#pragma omp parallel num_threads(threads)
  {
    int t = omp_get_thread_num(), nt = omp_get_num_threads();
    int64_t lo = n * t / nt, hi = n * (t + 1) / nt;
    if (lo < hi) body(lo, hi);
  }
}

inline float bf16ToF32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}
inline uint16_t f32ToBf16(float f) {  // round to nearest even; NaN stays NaN
  uint32_t u;
  __builtin_memcpy(&u, &f, 4);
  if ((u & 0x7fffffff) > 0x7f800000) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fff + ((u >> 16) & 1);
  return static_cast<uint16_t>(u >> 16);
}

}  // namespace ik
