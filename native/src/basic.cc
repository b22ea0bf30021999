// Whole-buffer kernels the autograd engine itself needs: in-place axpy, fill, copy.
#include "common.h"

namespace ik {
namespace {

// addInPlace(y, x, alpha): y += alpha * x
Napi::Value addInPlace(const Napi::CallbackInfo& info) {
  Args args(info, "addInPlace", 3);
  size_t n = args.length(0);
  if (args.length(1) != n)
    args.fail("lengths differ: " + std::to_string(n) + " and " + std::to_string(args.length(1)));
  float* y = args.f32(0, n);
  const float* x = args.f32(1, n);
  float alpha = static_cast<float>(args.num(2));
  parallelFor(n, 1 << 14, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) y[i] += alpha * x[i];
  });
  return info.Env().Undefined();
}
IK_EXPORT("addInPlace", addInPlace);

// scaleInPlace(y, alpha): y *= alpha
Napi::Value scaleInPlace(const Napi::CallbackInfo& info) {
  Args args(info, "scaleInPlace", 2);
  size_t n = args.length(0);
  float* y = args.f32(0, n);
  float alpha = static_cast<float>(args.num(1));
  parallelFor(n, 1 << 14, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) y[i] *= alpha;
  });
  return info.Env().Undefined();
}
IK_EXPORT("scaleInPlace", scaleInPlace);

}  // namespace
}  // namespace ik
