// Matrix products with a handful of rows (a decode step: one row per sequence) against a weight that streams through
// once, which oneDNN runs well below this CPU's memory bandwidth. Weights are f32 or bf16 (read as stored and widened
// in registers: the products and sums are f32, the activations are never rounded).
#pragma once
#include <cstdint>

namespace ik {

// Rows up to which the skinny kernels beat oneDNN.
constexpr int64_t kSkinnyMaxRows = 8;

// c (=|+=) a @ bᵀ (+ bias): a is M×K f32, b is N×K (a Linear weight), c is M×N, all row-major and contiguous. Each
// output is summed by one thread in one order, so the result does not depend on the thread count.
void skinnyGemmNT(const float* a, const float* b, float* c, const float* bias, int64_t M, int64_t N, int64_t K,
                  bool accumulate);
void skinnyGemmNT(const float* a, const uint16_t* b, float* c, const float* bias, int64_t M, int64_t N, int64_t K,
                  bool accumulate);

// c (=|+=) a @ b (+ bias) with b K×N (GPT-2's Conv1D weight): the same contract as skinnyGemmNT.
void skinnyGemmNN(const float* a, const float* b, float* c, const float* bias, int64_t M, int64_t N, int64_t K,
                  bool accumulate);
void skinnyGemmNN(const float* a, const uint16_t* b, float* c, const float* bias, int64_t M, int64_t N, int64_t K,
                  bool accumulate);

}  // namespace ik
