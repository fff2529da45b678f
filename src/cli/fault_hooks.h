// Failure injection for the tests of `causeway run`, through CAUSEWAY_FAULT_* environment
// variables that no user sets (tests cannot otherwise make one rank fail, a job slow, or a
// metric NaN on demand). Unset, every hook does nothing.
//   CAUSEWAY_FAULT_THROW_AT=STAGE, CAUSEWAY_FAULT_THROW_ON_RANK=R: rank R throws at STAGE
//     (set_up, prepare_file, item, after_work, finish_file)
//   CAUSEWAY_FAULT_STALL_AT=STAGE, CAUSEWAY_FAULT_STALL_ON_RANK=R: rank R hangs at STAGE
//   CAUSEWAY_FAULT_SLEEP_PER_ITEM_MS=N: every work item takes N ms longer
//   CAUSEWAY_FAULT_NONFINITE_PAIR=P: pair P's results come out NaN (its first cell of each item)
#pragma once

namespace causeway::cli {

void fault_point(const char* stage, int rank);
int fault_sleep_per_item_ms();
int fault_nonfinite_pair();  // -1 when unset

}  // namespace causeway::cli
