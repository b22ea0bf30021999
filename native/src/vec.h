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

// Returns a loaded vector pinned to a register. Without it GCC folds the load into every multiply-add that reads
// the vector, so a row reused by R accumulators is loaded R times and the loads, not the multiply-adds, set the pace.
// It takes and returns a value: pinning an array element in place made GCC spill the array to the stack.
inline Vec pinned(Vec v) {
  asm("" : "+v"(v));
  return v;
}

}  // namespace ik
