// `causeway run` configuration from TOML. Every error names the file, the table and the key.
//
//   [model]       path = "models/ioi", threads = 2, dtype = "bf16"
//   [data]        file = "pairs.jsonl"   or   generator = "ioi", n = 64, seed = 0, corruption = "swap"
//   [output]      path = "results/ioi.h5", cache = ["blocks.5.attn.hook_z", ...]
//   [parallel]    tp = 1, schedule = static|dynamic, pairs_per_item = 32
//   [[experiment]] name, kind = activation|attribution|ablation|noise, sweep, positions = each|all,
//                  direction = denoising|noising, metric, ablation = zero|mean|resample,
//                  qk_fix, grad_drop, verify_top (attribution), ...
//                  kind = edges: method = eap|eap_ig_inputs|eap_ig_activations|edge_patching|
//                  path_patching, steps, freeze = heads|all, direction (default noising);
//                  kind = path_patching: receivers = ["Resid End", "A1.0.Q", ...], freeze
//                  kind = direct_logit: sweep = attn_head_out|mlp_out|mlp_neuron|components,
//                  positions, run = clean|corrupted; kind = logit_lens: positions, run;
//                  kind = self_repair: the keys of ablation (with `ablation`) or activation
//   [[circuit]]   name, method = acdc|top, threshold, metric = kl|logit_diff (acdc),
//                  experiment, size (top: the edge experiment whose mean ranks the edges),
//                  ablation = corrupted|mean, pairs (at most this many, from the first)
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "backend/ops_linear.h"
#include "data/ioi.h"
#include "data/prompt_pairs.h"
#include "model/model_config.h"
#include "patching/acdc.h"
#include "patching/attribution.h"
#include "patching/edge_sweep.h"
#include "patching/readout_runner.h"
#include "patching/sweep.h"

namespace causeway {

struct ExperimentConfig {
  std::string name;
  std::string kind;  // activation | attribution | ablation | noise | edges | path_patching |
                     // direct_logit | logit_lens | self_repair
  SweepRequest request;
  std::string ablation;  // zero | mean | resample (ablation only)
  AttributionOptions attribution;  // attribution only
  int verify_top = 0;    // attribution: activation-patch this many top cells to check it
  EdgeSweepRequest edges;              // kinds edges and path_patching (receivers resolved
  std::vector<std::string> receivers;  // from these names against the model)
  bool is_edge_kind() const { return kind == "edges" || kind == "path_patching"; }
  ReadoutRequest readout;  // kinds direct_logit and logit_lens (cli/readout_experiments.h)
};

// A circuit found after the experiments, written to /circuits/<name> with its faithfulness
// curve (patching/acdc.h, patching/circuit_eval.h).
struct CircuitConfig {
  std::string name;
  std::string method;      // acdc | top
  std::string experiment;  // top: the kind = "edges" experiment whose |mean| ranks the edges
  int64_t size = 0;        // top: edges kept
  AcdcRequest acdc;        // acdc: threshold, metric, batch_rows
  EdgeAblation ablation = EdgeAblation::Corrupted;
  int pairs = 0;           // the first this many pairs (0: all)
};

struct RunConfig {
  std::filesystem::path path;  // the config file
  std::string text;            // its contents, stored in the result file
  std::filesystem::path model;
  int threads = 0;
  std::optional<bool> prepend_bos;  // [model] prepend_bos; unset: as the tokenizer's files say
  DType dtype = DType::F32;          // [model] dtype: how weight matrices are held
  // [model] compute: bf16 weights widened to fp32 (Exact, the default) or on bf16 dot products
  cpu::SixteenBitCompute compute = cpu::SixteenBitCompute::Exact;
  std::filesystem::path data_file;
  std::string generator;       // "ioi" or empty
  IoiOptions ioi;
  std::filesystem::path output;
  std::vector<std::string> cache_hooks;  // activations stored for every pair
  bool allow_nonfinite = false;          // NaN/inf results are counted, not a stop
  int tp = 1;
  std::string schedule = "static";
  int pairs_per_item = 32;
  std::vector<ExperimentConfig> experiments;
  std::vector<CircuitConfig> circuits;

  // Everything the file alone decides is checked here (types, ranges, combinations).
  static RunConfig load(const std::filesystem::path& path);
  static RunConfig parse(const std::string& text, const std::filesystem::path& path);

  // What needs the model and the pairs: window against n_layer, positions against the prompts,
  // ablations against the pairs, cache hook names. InputError naming the file, experiment and
  // key; every rank calls it before the result file is laid out.
  void check_against(const ModelConfig& model, const PairDataset& data) const;
  // The part of check_against for edge experiments and circuits.
  void check_edges(const ModelConfig& model, const PairDataset& data) const;
};

// What differs between two config texts, one line per key ("experiment[0].sweep: 'a' in the
// file, 'b' now"), ignoring keys that cannot change results (threads, rank layout, output path).
std::vector<std::string> config_differences(const std::string& stored, const std::string& now);

}  // namespace causeway
