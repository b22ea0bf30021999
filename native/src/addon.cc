// Module entry: exports every kernel that a kernel file registered with IK_EXPORT.
#include <cstdlib>
#include <thread>
#include <utility>
#include <vector>

#include "common.h"

namespace ik {

static std::vector<std::pair<const char*, Fn>>& registry() {
  static std::vector<std::pair<const char*, Fn>> fns;
  return fns;
}
void registerFn(const char* name, Fn fn) { registry().emplace_back(name, fn); }

static Napi::Value setThreads(const Napi::CallbackInfo& info) {
  Args a(info, "setThreads", 1);
  omp_set_num_threads(static_cast<int>(a.int_(0, 1)));
  return info.Env().Undefined();
}
IK_EXPORT("setThreads", setThreads);

static Napi::Value getThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), omp_get_max_threads());
}
IK_EXPORT("getThreads", getThreads);

Napi::Object init(Napi::Env env, Napi::Object exports) {
  // One OpenMP team shared by oneDNN and our kernels: INSTRUCTKIT_THREADS, else OMP_NUM_THREADS, else the cores.
  const char* want = std::getenv("INSTRUCTKIT_THREADS");
  if (!want && std::getenv("OMP_NUM_THREADS")) want = std::getenv("OMP_NUM_THREADS");
  int threads = want ? std::atoi(want) : static_cast<int>(std::thread::hardware_concurrency());
  if (threads > 0) omp_set_num_threads(threads);
  for (auto& [name, fn] : registry()) exports.Set(name, Napi::Function::New(env, fn, name));
  return exports;
}

}  // namespace ik

static Napi::Object initModule(Napi::Env env, Napi::Object exports) { return ik::init(env, exports); }
NODE_API_MODULE(instructkit, initModule)
