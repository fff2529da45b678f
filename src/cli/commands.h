// Each subcommand registers its options on the CLI11 app and returns the function that runs
// it; main() only parses and maps errors to exit codes.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>

namespace causeway::cli {

using Command = std::function<int()>;

Command add_logits_command(CLI::App& app);
Command add_run_command(CLI::App& app);
Command add_data_command(CLI::App& app);
Command add_train_command(CLI::App& app);

}  // namespace causeway::cli
