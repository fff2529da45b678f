#include "cli/fault_hooks.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>

namespace causeway::cli {

namespace {
int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}
}  // namespace

void fault_point(const char* stage, int rank) {
  // A rank stuck (in a collective, a hung file system): it never reaches the next agreement.
  const char* stall = std::getenv("CAUSEWAY_FAULT_STALL_AT");
  if (stall && std::string(stall) == stage && env_int("CAUSEWAY_FAULT_STALL_ON_RANK", -1) == rank)
    std::this_thread::sleep_for(std::chrono::minutes(10));
  const char* at = std::getenv("CAUSEWAY_FAULT_THROW_AT");
  if (!at || std::string(at) != stage || env_int("CAUSEWAY_FAULT_THROW_ON_RANK", -1) != rank) return;
  throw std::runtime_error(std::string("fault injected at ") + stage + " on rank " + std::to_string(rank));
}

int fault_sleep_per_item_ms() { return env_int("CAUSEWAY_FAULT_SLEEP_PER_ITEM_MS", 0); }

int fault_nonfinite_pair() { return env_int("CAUSEWAY_FAULT_NONFINITE_PAIR", -1); }

void fault_kill_after_items(int64_t items_done) {
  const int n = env_int("CAUSEWAY_FAULT_KILL_AFTER_ITEMS", 0);
  if (n > 0 && items_done >= n) ::kill(::getpid(), SIGKILL);
}

void fault_kill_during_layout() {
  if (env_int("CAUSEWAY_FAULT_KILL_DURING_LAYOUT", 0)) ::kill(::getpid(), SIGKILL);
}

void fault_sleep_after_layout() {
  if (const int ms = env_int("CAUSEWAY_FAULT_SLEEP_AFTER_LAYOUT_MS", 0); ms > 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

void fault_sleep_per_circuit_batch() {
  if (const int ms = env_int("CAUSEWAY_FAULT_SLEEP_PER_CIRCUIT_BATCH_MS", 0); ms > 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

void fault_kill_at_circuit(const std::string& name) {
  const char* at = std::getenv("CAUSEWAY_FAULT_KILL_AT_CIRCUIT");
  if (at && name == at) ::kill(::getpid(), SIGKILL);
}

}  // namespace causeway::cli
