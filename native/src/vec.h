// One AVX-512 register's worth of floats as a GCC/Clang vector extension: a single register under -march=native,
// split into narrower ones elsewhere. Explicit vectors keep register-blocked accumulators in registers, which plain
// loops do not guarantee.
#pragma once

namespace ik {

constexpr int kLanes = 16;
typedef float Vec __attribute__((vector_size(kLanes * sizeof(float))));

// Unaligned load and store.
inline Vec load(const float* p) {
  Vec v;
  __builtin_memcpy(&v, p, sizeof(Vec));
  return v;
}
inline void store(float* p, Vec v) { __builtin_memcpy(p, &v, sizeof(Vec)); }

}  // namespace ik
