#include "cli/interrupt.h"

#include <signal.h>

namespace causeway::cli {

namespace {
volatile sig_atomic_t g_signal = 0;

// Records the first signal and restores the default action of both, so a second one ends the
// process (sigaction is async-signal-safe).
void record(int signal) {
  g_signal = signal;
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGTERM, &dfl, nullptr);
  sigaction(SIGINT, &dfl, nullptr);
}
}  // namespace

void catch_interrupts() {
  struct sigaction sa = {};
  sa.sa_handler = record;
  sigemptyset(&sa.sa_mask);
  // SA_RESTART: a write interrupted by the signal carries on instead of failing with EINTR.
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
}

int interrupt_signal() { return g_signal; }

std::string signal_name(int signal) {
  if (signal == SIGTERM) return "SIGTERM";
  if (signal == SIGINT) return "SIGINT";
  return "signal " + std::to_string(signal);
}

}  // namespace causeway::cli
