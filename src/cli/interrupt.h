// SIGTERM and SIGINT during `causeway run`: the handler only records the signal; the job checks
// it between pieces of work, stops every rank, leaves a file that --resume continues and says
// so in one line. A second signal of either kind ends the process at once (the default action).
#pragma once

#include <string>

namespace causeway::cli {

// Installs the handlers for SIGTERM and SIGINT (after MPI is up, so they are ours).
void catch_interrupts();
// The signal received since catch_interrupts(), or 0.
int interrupt_signal();
// "SIGTERM", "SIGINT", or "signal N".
std::string signal_name(int signal);

}  // namespace causeway::cli
