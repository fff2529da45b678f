// The experiment kinds of issue 24 as the CLI sees them: direct_logit and logit_lens (read off
// one forward per pair block) and self_repair (an ablation or patching sweep plus its direct
// effects). Parsing, grids, engines and result-file attributes live here so that run_config
// and run_command only dispatch to them.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "cli/run_config.h"
#include "cli/toml_table.h"
#include "io/hdf5_file.h"

namespace causeway {

bool is_readout_kind(const std::string& kind);  // direct_logit | logit_lens
// Kinds whose grid and engine come from this file (the readout kinds and self_repair).
bool has_own_engine(const ExperimentConfig& e);

// direct_logit / logit_lens keys: sweep (direct_logit), positions, run = clean|corrupted.
ExperimentConfig parse_readout_experiment(ExperimentConfig e, Table& x, const std::string& file, int index,
                                          void (*parse_positions)(Table&, SweepSpec&));
// self_repair after the ablation / activation keys were read: its own constraints.
void check_self_repair(const ExperimentConfig& e, Table& x);

SweepGrid own_grid(const ExperimentConfig& e, const ModelConfig& cfg, const PairDataset& data,
                   const std::string& file, const std::string& field);
// Grid slabs per work item: readouts compute a pair block whole (one item per block).
int own_lead_per_item(const ExperimentConfig& e, const SweepGrid& grid);
std::unique_ptr<SweepEngine> make_own_engine(TransformerModel& model, const PairDataset& data,
                                             const ExperimentConfig& e);
void add_own_attributes(const ExperimentConfig& e, std::map<std::string, AttributeValue>& a);

// logit_lens with top_k: the top tokens as /experiments/<name>/top_tokens (int32) and
// top_logits, (pair, ...grid, k), replacing earlier ones (resume). Rank 0, tp = 1.
void write_lens_top_tokens(TransformerModel& model, const PairDataset& data, const ExperimentConfig& e,
                           H5File& file);

// The summary of a self_repair experiment: its k components with the largest |self_repair|
// mean, each with its total, direct and LayerNorm-share means. `mean` is the experiment's
// mean (component, quantity); `label` names component c.
void print_self_repair_top(const ExperimentConfig& e, const std::vector<float>& mean,
                           const std::function<std::string(int64_t)>& label, int k);

}  // namespace causeway
