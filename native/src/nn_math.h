// Work sizing shared by the row-wise kernels (softmax, norms, cross-entropy); their exp is vmath::exp.
#pragma once
#include <algorithm>
#include <cstdint>

#include "vmath.h"

namespace ik {

// Rows per parallel chunk so that each chunk carries at least ~16K elements of work.
inline int64_t rowGrain(int64_t cols) { return std::max<int64_t>(1, (int64_t(1) << 14) / std::max<int64_t>(cols, 1)); }

}  // namespace ik
