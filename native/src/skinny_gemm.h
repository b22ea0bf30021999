// Matrix products with a handful of rows (a decode step: one row per sequence) against a Linear weight, which
// oneDNN runs well below this CPU's peak while the weight streams through once.
#pragma once
#include <cstdint>

namespace ik {

// Rows up to which skinnyGemmNT beats oneDNN.
constexpr int64_t kSkinnyMaxRows = 8;

// c (=|+=) a @ bᵀ (+ bias): a is M×K, b is N×K, c is M×N, all row-major and contiguous. Each output is summed by one
// thread in one order, so the result does not depend on the thread count.
void skinnyGemmNT(const float* a, const float* b, float* c, const float* bias, int64_t M, int64_t N, int64_t K,
                  bool accumulate);

}  // namespace ik
