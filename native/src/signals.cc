// Stop requests (SIGINT, SIGTERM) during a long synchronous loop. Node runs a signal's JavaScript listeners only
// when its event loop turns, which a training loop never lets it do; so while watched, a signal only sets a flag
// that the loop reads between steps (then checkpoints and stops). A second signal ends the process as it would have.
#include <csignal>

#include "common.h"

namespace ik {
namespace {

volatile std::sig_atomic_t pending = 0;
const int kSignals[] = {SIGINT, SIGTERM};
struct sigaction previous[2];
bool watching = false;

void onSignal(int sig) {
  if (pending != 0) {
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  pending = sig;
}

Napi::Value watchSignals(const Napi::CallbackInfo& info) {
  if (!watching) {
    struct sigaction sa = {};
    sa.sa_handler = onSignal;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 2; i++) sigaction(kSignals[i], &sa, &previous[i]);
    watching = true;
  }
  pending = 0;
  return info.Env().Undefined();
}
IK_EXPORT("watchSignals", watchSignals);

// Restores the handlers watchSignals replaced and forgets any pending signal.
Napi::Value unwatchSignals(const Napi::CallbackInfo& info) {
  if (watching)
    for (int i = 0; i < 2; i++) sigaction(kSignals[i], &previous[i], nullptr);
  watching = false;
  pending = 0;
  return info.Env().Undefined();
}
IK_EXPORT("unwatchSignals", unwatchSignals);

// The signal number received since watchSignals (0: none).
Napi::Value pendingSignal(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<int>(pending));
}
IK_EXPORT("pendingSignal", pendingSignal);

}  // namespace
}  // namespace ik
