// Failure injection for the tests of `causeway run`, through CAUSEWAY_FAULT_* environment
// variables that no user sets (tests cannot otherwise make one rank fail, a job slow, or a
// metric NaN on demand). Unset, every hook does nothing.
//   CAUSEWAY_FAULT_THROW_AT=STAGE, CAUSEWAY_FAULT_THROW_ON_RANK=R: rank R throws at STAGE
//     (set_up, prepare_file, item, after_work, finish_file)
//   CAUSEWAY_FAULT_STALL_AT=STAGE, CAUSEWAY_FAULT_STALL_ON_RANK=R: rank R hangs at STAGE
//   CAUSEWAY_FAULT_SLEEP_PER_ITEM_MS=N: every work item takes N ms longer
//   CAUSEWAY_FAULT_NONFINITE_PAIR=P: pair P's results come out NaN (its first cell of each item)
//   CAUSEWAY_FAULT_KILL_AFTER_ITEMS=N: a rank dies by SIGKILL after N items (a node failure)
//   CAUSEWAY_FAULT_KILL_DURING_LAYOUT=1: rank 0 dies by SIGKILL in the middle of the file layout
//   CAUSEWAY_FAULT_SLEEP_AFTER_LAYOUT_MS=N: rank 0 holds the laid-out file N ms (a long job)
//   CAUSEWAY_FAULT_SLEEP_PER_CIRCUIT_BATCH_MS=N: every edge-patched batch of the circuit step
//     takes N ms longer (a long ACDC)
//   CAUSEWAY_FAULT_KILL_AT_CIRCUIT=NAME: rank 0 dies by SIGKILL as it begins circuit NAME
#pragma once

#include <cstdint>
#include <string>

namespace causeway::cli {

void fault_point(const char* stage, int rank);
int fault_sleep_per_item_ms();
int fault_nonfinite_pair();  // -1 when unset
void fault_kill_after_items(int64_t items_done);
void fault_kill_during_layout();
void fault_sleep_after_layout();
void fault_sleep_per_circuit_batch();
void fault_kill_at_circuit(const std::string& name);

}  // namespace causeway::cli
