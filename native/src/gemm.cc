// Matrix products through oneDNN: f32, and bf16 inputs with f32 output (AMX or AVX512-BF16 where present).
// A primitive is created once per shape and reused: creation costs far more than a small execution.
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <unordered_map>

#include <algorithm>
#include <vector>

#include "common.h"
#include "skinny_gemm.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace ik {
namespace {

using dnnl::memory;
using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool, bool, bool, bool>;

struct Plan {
  dnnl::matmul prim;
  memory a, b, c, bias;
  // bf16: B is first reordered into the layout the primitive prefers (packed), when that differs from B's own.
  dnnl::reorder packB;
  memory packedB;
};

dnnl::engine& engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}
dnnl::stream& stream() {
  static dnnl::stream s(engine());
  return s;
}

constexpr int64_t kPackMinRows = 256;

// Row-major A is M×K (or K×M when transposed), B is K×N (or N×K), C is M×N; batch strides are whole matrices.
Plan makePlan(const Key& k) {
  auto [batchA, batchB, M, N, K, batch, tA, tB, acc, bf16, hasBias] = k;
  auto dt = bf16 ? memory::data_type::bf16 : memory::data_type::f32;
  memory::desc aD({batchA, M, K}, dt, tA ? memory::dims{M * K, 1, M} : memory::dims{M * K, K, 1});
  memory::desc bD({batchB, K, N}, dt, tB ? memory::dims{K * N, 1, K} : memory::dims{K * N, N, 1});
  memory::desc cD({batch, M, N}, memory::data_type::f32, memory::dims{M * N, N, 1});
  dnnl::primitive_attr attr;
  if (acc) {
    dnnl::post_ops po;
    po.append_sum(1.0f);
    attr.set_post_ops(po);
  }
  // The bias (one value per output column) is added inside the GEMM, saving a pass over the output.
  memory::desc biasD({1, 1, N}, memory::data_type::f32, memory::dims{N, N, 1});
  // A bf16 B operand is packed into the primitive's preferred layout before each product with enough rows of A to
  // pay for the pass (measured: 0–8 % per training shape alone, ~1 % of a bf16 step of the reference GPT). A decode
  // step's few rows would read B three times instead of once.
  const bool pack = bf16 && batch == 1 && M >= kPackMinRows;
  memory::desc bUse = pack ? memory::desc({batchB, K, N}, dt, memory::format_tag::any) : bD;
  auto desc = hasBias ? dnnl::matmul::desc(aD, bUse, biasD, cD) : dnnl::matmul::desc(aD, bUse, cD);
  dnnl::matmul::primitive_desc pd(desc, attr, engine());
  Plan plan{dnnl::matmul(pd), memory(aD, engine(), nullptr), memory(bD, engine(), nullptr),
            memory(cD, engine(), nullptr), memory(biasD, engine(), nullptr), {}, {}};
  if (pd.weights_desc() != bD) {
    plan.packedB = memory(pd.weights_desc(), engine());
    plan.packB = dnnl::reorder(plan.b, plan.packedB);
  }
  return plan;
}

std::mutex planLock;
std::map<Key, std::unique_ptr<Plan>> plans;

// Runs the oneDNN product that key describes on these buffers (a primitive made once per shape).
void runPlan(const Args& args, const Key& key, void* a, void* b, float* c, float* bias) {
  std::lock_guard<std::mutex> guard(planLock);
  auto& plan = plans[key];
  try {
    if (!plan) plan = std::make_unique<Plan>(makePlan(key));
    plan->a.set_data_handle(a);
    plan->b.set_data_handle(b);
    plan->c.set_data_handle(c);
    const bool packed = plan->packedB.get(true) != nullptr;
    if (packed) plan->packB.execute(stream(), plan->b, plan->packedB);
    std::unordered_map<int, memory> io{
        {DNNL_ARG_SRC, plan->a}, {DNNL_ARG_WEIGHTS, packed ? plan->packedB : plan->b}, {DNNL_ARG_DST, plan->c}};
    if (bias) {
      plan->bias.set_data_handle(bias);
      io.insert({DNNL_ARG_BIAS, plan->bias});
    }
    plan->prim.execute(stream(), io);
    stream().wait();
  } catch (const dnnl::error& e) {
    plans.erase(key);
    args.fail(std::string("oneDNN: ") + e.what());
  }
}

// matmul(a, b, c, batch, batchA, batchB, M, N, K, transA, transB, accumulate, bf16, bias?)
// c[batch] (=|+=) a[batchA] @ b[batchB] (+ bias[N]); a batch count of 1 broadcasts.
Napi::Value matmul(const Napi::CallbackInfo& info) {
  Args args(info, "matmul", 13);
  int64_t batch = args.int_(3, 1), batchA = args.int_(4, 1), batchB = args.int_(5, 1);
  int64_t M = args.int_(6, 1), N = args.int_(7, 1), K = args.int_(8, 1);
  bool tA = args.flag(9), tB = args.flag(10), acc = args.flag(11), bf16 = args.flag(12);
  if ((batchA != batch && batchA != 1) || (batchB != batch && batchB != 1))
    args.fail("batch counts " + std::to_string(batchA) + " and " + std::to_string(batchB) + " do not broadcast to " +
              std::to_string(batch));
  void *a, *b;
  if (bf16) {
    a = args.u16(0, batchA * M * K);
    b = args.u16(1, batchB * K * N);
  } else {
    a = args.f32(0, batchA * M * K);
    b = args.f32(1, batchB * K * N);
  }
  float* c = args.f32(2, batch * M * N);
  float* bias = info.Length() > 13 && !args.isNull(13) ? args.f32(13, N) : nullptr;
  // Decode steps against Linear (N×K) and Conv1D (K×N) weights.
  if (!bf16 && !tA && batch == 1 && M <= kSkinnyMaxRows) {
    const auto* af = static_cast<const float*>(a);
    const auto* bf = static_cast<const float*>(b);
    if (tB) skinnyGemmNT(af, bf, c, bias, M, N, K, acc);
    else skinnyGemmNN(af, bf, c, bias, M, N, K, acc);
    return info.Env().Undefined();
  }
  runPlan(args, Key{batchA, batchB, M, N, K, batch, tA, tB, acc, bf16, bias != nullptr}, a, b, c, bias);
  return info.Env().Undefined();
}
IK_EXPORT("matmul", matmul);

// matmulBf16Weights(a, w, c, M, N, K, transB, accumulate, bias?): c (=|+=) a @ op(w) (+ bias) for f32 activations a
// (M×K) and a bf16 weight w (N×K with transB, as a Linear's; else K×N, as a Conv1D's). A few rows read the weight
// once through the skinny kernels with the activations kept f32; more rows go through oneDNN's bf16 product on a
// bf16 copy of a, as under autocast.
Napi::Value matmulBf16Weights(const Napi::CallbackInfo& info) {
  Args args(info, "matmulBf16Weights", 8);
  const int64_t M = args.int_(3, 1), N = args.int_(4, 1), K = args.int_(5, 1);
  const bool tB = args.flag(6), acc = args.flag(7);
  const float* a = args.f32(0, M * K);
  uint16_t* w = args.u16(1, N * K);
  float* c = args.f32(2, M * N);
  float* bias = info.Length() > 8 && !args.isNull(8) ? args.f32(8, N) : nullptr;
  if (M <= kSkinnyMaxRows) {
    if (tB) skinnyGemmNT(a, w, c, bias, M, N, K, acc);
    else skinnyGemmNN(a, w, c, bias, M, N, K, acc);
    return info.Env().Undefined();
  }
  std::vector<uint16_t> a16(static_cast<size_t>(M * K));
  parallelFor(M * K, 1 << 15, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) a16[i] = f32ToBf16(a[i]);
  });
  runPlan(args, Key{1, 1, M, N, K, 1, false, tB, acc, true, bias != nullptr}, a16.data(), w, c, bias);
  return info.Env().Undefined();
}
IK_EXPORT("matmulBf16Weights", matmulBf16Weights);

// f32 → bf16 (round to nearest even) and back.
Napi::Value toBf16(const Napi::CallbackInfo& info) {
  Args args(info, "toBf16", 2);
  size_t n = args.length(0);
  const float* x = args.f32(0, n);
  uint16_t* y = args.u16(1, n);
  parallelFor(n, 1 << 15, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) y[i] = f32ToBf16(x[i]);
  });
  return info.Env().Undefined();
}
IK_EXPORT("toBf16", toBf16);

// toBf16ColumnSums(x, y, sums, rows, cols): y = bf16(x) and sums[c] = Σ_r x[r, c] in one pass over x (rows × cols).
// Under autocast a Linear's backward needs both of its output gradient: the bf16 copy for the GEMMs and the column
// sums for the bias; reading the gradient once instead of twice saves a pass over the largest activations.
Napi::Value toBf16ColumnSums(const Napi::CallbackInfo& info) {
  Args args(info, "toBf16ColumnSums", 5);
  const int64_t rows = args.int_(3), cols = args.int_(4, 1);
  const float* x = args.f32(0, rows * cols);
  uint16_t* y = args.u16(1, rows * cols);
  float* sums = args.f32(2, cols);
  const int threads = omp_get_max_threads();
  // Kept across calls so a backward step allocates nothing. The workers get its address: a thread_local named
  // inside the parallel region would be each worker's own, empty copy.
  static thread_local std::vector<float> scratch;
  scratch.assign(static_cast<size_t>(threads) * cols, 0.0f);
  float* const partial = scratch.data();
  // Static row partition, each thread summing into its own row of partials, combined in thread order: the result
  // depends only on the thread count.
  parallelFor(rows, std::max<int64_t>(1, (1 << 15) / cols), [&](int64_t lo, int64_t hi) {
    float* __restrict part = partial + static_cast<size_t>(omp_get_thread_num()) * cols;
    for (int64_t r = lo; r < hi; r++) {
      const float* __restrict xr = x + r * cols;
      uint16_t* __restrict yr = y + r * cols;
#pragma omp simd
      for (int64_t c = 0; c < cols; c++) {
        yr[c] = f32ToBf16(xr[c]);
        part[c] += xr[c];
      }
    }
  });
  for (int64_t c = 0; c < cols; c++) {
    float s = 0.0f;
    for (int t = 0; t < threads; t++) s += partial[static_cast<size_t>(t) * cols + c];
    sums[c] = s;
  }
  return info.Env().Undefined();
}
IK_EXPORT("toBf16ColumnSums", toBf16ColumnSums);

Napi::Value fromBf16(const Napi::CallbackInfo& info) {
  Args args(info, "fromBf16", 2);
  size_t n = args.length(0);
  const uint16_t* x = args.u16(0, n);
  float* y = args.f32(1, n);
  parallelFor(n, 1 << 15, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; i++) y[i] = bf16ToF32(x[i]);
  });
  return info.Env().Undefined();
}
IK_EXPORT("fromBf16", fromBf16);

}  // namespace
}  // namespace ik
