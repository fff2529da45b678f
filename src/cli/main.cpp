// The causeway program: subcommands, one clear line per error, exit 2 for bad input.
#include <cstdio>
#include <exception>
#include <sstream>

#include "cli/commands.h"
#include "cli/launch_rank.h"
#include "core/error.h"
#include "model/families/families.h"

int main(int argc, char** argv) {
  CLI::App app{
      "causeway: causal-intervention experiments (activation patching, ablation, attribution,\n"
      "edges and circuits) on GPT-2, Llama, Mistral, Qwen2/Qwen3, GPT-NeoX (Pythia) and Gemma 2\n"
      "transformers (config.json model_type " + causeway::supported_model_types() + "),\n"
      "with TransformerLens hook names and HDF5 results.",
      "causeway"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("causeway ") + CAUSEWAY_VERSION);
  causeway::cli::Command logits = causeway::cli::add_logits_command(app);
  causeway::cli::Command run = causeway::cli::add_run_command(app);
  causeway::cli::Command data = causeway::cli::add_data_command(app);
  causeway::cli::Command train = causeway::cli::add_train_command(app);
  app.footer("causeway COMMAND --help explains a command's options. README.md has the config "
             "reference and a tour.");

  // No command at all: the help lists the commands. Exit 2 like any other incomplete command
  // line (git does the same with 1), so a script that forgot the command does not pass.
  if (argc == 1) {
    std::fputs(app.help().c_str(), stdout);
    return causeway::kExitInputError;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Every rank of a launch sees the same command line: rank 0 alone says what is wrong.
    std::ostringstream silent;
    const int code = causeway::cli::launch_rank() == 0 ? app.exit(e) : app.exit(e, silent, silent);
    return code == 0 ? 0 : causeway::kExitInputError;
  }
  try {
    if (app.got_subcommand("logits")) return logits();
    if (app.got_subcommand("run")) return run();
    if (app.got_subcommand("data")) return data();
    if (app.got_subcommand("train")) return train();
  } catch (const causeway::InputError& e) {
    std::fprintf(stderr, "causeway: error: %s\n", e.what());
    return causeway::kExitInputError;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "causeway: internal error: %s\n", e.what());
    return causeway::kExitInternalError;
  }
  return causeway::kExitInternalError;
}
