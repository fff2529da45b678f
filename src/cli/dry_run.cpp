#include "cli/dry_run.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <string>

#include "cli/readout_experiments.h"
#include "model/hooks.h"
#include "model/model_weights.h"
#include "model/stored_dtype.h"
#include "model/tensor_shard.h"
#include "model/transformer_model.h"
#include "patching/circuit_graph.h"
#include "patching/patch.h"
#include "patching/run_cache.h"

namespace causeway::cli {

namespace {

// What a process of causeway holds before any model or cache: the binary, MPI, HDF5 and
// OpenBLAS (measured: about 30 MB for `causeway logits` on a tiny model), and in a CUDA
// build the CUDA libraries (about 200 MB more). The dry run reads its own resident size,
// which is exactly that, and uses this floor where /proc is missing.
constexpr int64_t kRuntimeBytes = int64_t{32} << 20;

int64_t runtime_bytes() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::max<int64_t>(kRuntimeBytes, std::atoll(line.c_str() + 6) * 1024);
  return kRuntimeBytes;
}

// Multiply-adds x 2 of one token through every block, with attention over T keys, plus
// `logit_rows_per_token` of the unembedding.
double flops_per_token(const ModelConfig& c, int T, double logit_rows_per_token) {
  const double C = c.n_embd, HS = c.d_head(), Q = c.n_head * HS, KV = c.kv_heads() * HS,
               M = c.n_inner, V = c.vocab_size;
  const double block = 2.0 * (C * Q + 2.0 * C * KV + Q * C + (c.gated_mlp ? 3.0 : 2.0) * C * M) +
                       4.0 * T * Q;
  return c.n_layer * block + logit_rows_per_token * 2.0 * C * V;
}

std::string gib(int64_t bytes) {
  char buf[32];
  if (bytes >= (int64_t{1} << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / 1073741824.0);
  else std::snprintf(buf, sizeof buf, "%.1f MiB", bytes / 1048576.0);
  return buf;
}

// "1 work item", "36 work items".
std::string count_of(int64_t n, const std::string& what) {
  return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
}

std::string grid_text(const SweepGrid& g) {
  std::string s = "[";
  for (size_t i = 0; i < g.axes.size(); ++i)
    s += (i ? ", " : "") + g.axes[i].name + " " + std::to_string(g.axes[i].size);
  return s + "]";
}

// What an edge experiment holds for a block of pairs: source - target sender outputs and the
// target's (S, T, C) each, the backward's caches, and one layer's receiver gradients.
int64_t edge_cache_bytes(const ModelConfig& m, int T, int pairs) {
  const CircuitGraph g(m);
  int64_t floats = 2 * static_cast<int64_t>(g.n_senders()) * T * m.n_embd;
  for (HookKind k : backward_hook_kinds(m)) floats += m.n_layer * hook_row_size(k, m, T, T);
  floats += static_cast<int64_t>(receivers_in_layer(m, 0)) * T * m.n_embd;
  return floats * pairs * static_cast<int64_t>(sizeof(float));
}

// Forward passes per pair of an edge method (a backward counts as 2).
double edge_forwards(const EdgeSweepRequest& q, const ModelConfig& m) {
  const double k = q.steps;
  if (q.heads_grid) return 2.0 + 2.0 * m.n_layer * m.n_head;
  switch (q.method) {
    case EdgeSweepMethod::Eap: return 4.0;
    case EdgeSweepMethod::EapIgInputs: return 1.0 + 3.0 * k;
    case EdgeSweepMethod::EapIgActivations: return 1.0 + 3.0 * (1.0 + (k - 1.0) * (m.n_layer + 1));
    case EdgeSweepMethod::EdgePatching: return 2.0 + static_cast<double>(CircuitGraph(m).edge_count());
    case EdgeSweepMethod::PathPatching: {
      const CircuitGraph g(m);
      return 2.0 + g.n_senders() + static_cast<double>(g.edge_count());
    }
  }
  return 0.0;
}

// Replica r runs items [n r / R, n (r + 1) / R), as StaticScheduler deals them; an item of
// experiment e costs an equal part of that experiment's FLOPs.
void size_replicas(const DryRunJob& job, const std::vector<double>& experiment_flops, JobSizing& s) {
  const int replicas = std::max(1, job.ranks / std::max(job.tp, 1));
  const int64_t n = job.work_items;
  std::vector<double> cost_of;  // per experiment, then 0 for activation items
  std::vector<int64_t> end_of;  // cumulative item counts
  int64_t total = 0;
  for (size_t e = 0; e < job.items_of.size(); ++e) {
    total += job.items_of[e];
    end_of.push_back(total);
    cost_of.push_back(job.items_of[e] > 0 ? experiment_flops[e] / job.items_of[e] : 0.0);
  }
  double busiest = 0.0;
  size_t e = 0;
  for (int r = 0; r < replicas; ++r) {
    const int64_t begin = n * r / replicas, end = n * (r + 1) / replicas;
    if (begin == end) s.idle_ranks += job.tp;
    double flops = 0.0;
    for (int64_t i = begin; i < end; ++i) {
      while (e < end_of.size() && i >= end_of[e]) ++e;
      if (e < cost_of.size()) flops += cost_of[e];
    }
    busiest = std::max(busiest, flops);
  }
  // The ranks of a replica share its items' work, each computing its shard.
  s.busiest_rank_flops = busiest / std::max(job.tp, 1);
}

// Bytes of one rank's weights (its shard under tp) with matrices held as `dtype`.
int64_t weight_bytes(const DryRunJob& job, DType dtype) {
  const ModelConfig& m = *job.model;
  const ModelConfig local =
      job.tp > 1 ? TensorShard::make(m, 0, job.tp, job.cfg->path.string()).local(m) : m;
  return static_cast<int64_t>(ModelWeights::bytes_for(local, dtype));
}

}  // namespace

JobSizing size_job(const DryRunJob& job) {
  const RunConfig& c = *job.cfg;
  const ModelConfig& m = *job.model;
  const TensorShard shard = TensorShard::make(m, 0, job.tp, c.path.string());
  const ModelConfig local = job.tp > 1 ? shard.local(m) : m;
  const int per_item = std::min(c.pairs_per_item, std::max(job.pairs, 1));
  JobSizing s;
  s.runtime = runtime_bytes();
  s.weights = static_cast<int64_t>(ModelWeights::bytes_for(local, c.dtype));
  const double per_seq = job.T * flops_per_token(m, job.T, 1.0 / job.T);
  std::vector<double> experiment_flops(c.experiments.size(), 0.0);
  for (size_t e = 0; e < c.experiments.size(); ++e) {
    const double flops_before = s.flops;
    const auto count = [&] { experiment_flops[e] = s.flops - flops_before; };
    const ExperimentConfig& x = c.experiments[e];
    const SweepGrid& g = job.grids[e];
    const int rows = std::max(1, x.request.max_rows);
    const bool result = std::any_of(g.cells.begin(), g.cells.end(),
                                    [](const PatchCell& p) { return p.kind == HookKind::Result; });
    s.workspace = std::max(s.workspace, TransformerModel::workspace_bytes(m, local, job.tp, rows,
                                                                          job.T, result, rows));
    // The clean and corrupted runs of an item's pairs, cached at every layer: the residual
    // stream, keys and values (prefix reuse) and the patched hooks; attribution keeps every
    // hook and its gradient.
    auto rows_of = [&](const std::vector<HookKind>& kinds) {
      int64_t n = 0;
      for (HookKind k : kinds) n += hook_row_size(k, local, job.T, job.T);
      return n;
    };
    if (x.is_edge_kind()) {
      s.caches = std::max(s.caches, edge_cache_bytes(m, job.T, per_item));
      s.flops += edge_forwards(x.edges, m) * job.pairs * per_seq;
      count();
      continue;
    }
    if (is_readout_kind(x.kind)) {
      // One forward of each run per pair, the read one caching the cells' hooks.
      s.caches = std::max(s.caches, per_item * m.n_layer * rows_of(kinds_of(g)) *
                                        static_cast<int64_t>(sizeof(float)));
      s.flops += 2.0 * job.pairs * per_seq;
      count();
      continue;
    }
    const std::vector<HookKind> patched = patched_kinds(x.request.spec);
    int64_t per_pair = 0;  // floats cached per pair and layer
    if (x.kind == "attribution") {
      // Both runs' patched hooks, the target run's backward inputs and the patched hooks'
      // gradients.
      per_pair = 3 * rows_of(patched) + rows_of(backward_hook_kinds(m));
    } else {
      per_pair = 2 * (rows_of(patched) + rows_of(prefix_hook_kinds(m)));
    }
    s.caches = std::max(s.caches, per_item * m.n_layer * per_pair *
                                      static_cast<int64_t>(sizeof(float)));
    // Each cell of each pair is at most one patched forward; attribution is about a forward
    // and a backward (2 forwards) of the clean and the corrupted run.
    // self_repair's cells are (component, quantity): one forward per component.
    const double components = static_cast<double>(g.cells.size()) / (x.kind == "self_repair" ? g.axes.back().size : 1);
    const double forwards = x.kind == "attribution" ? 6.0 * job.pairs : components * job.pairs + 2.0 * job.pairs;
    s.flops += forwards * per_seq;
    count();
  }
  size_replicas(job, experiment_flops, s);
  return s;
}

void print_dry_run(const DryRunJob& job, std::FILE* out) {
  const RunConfig& c = *job.cfg;
  const ModelConfig& m = *job.model;
  const JobSizing s = size_job(job);
  const int replicas = job.ranks / job.tp;
  std::fprintf(out, "dry run of %s: nothing is loaded or written\n", c.path.string().c_str());
  std::fprintf(out, "model: %s (%s, %d layers, d_model %d, %d heads", c.model.string().c_str(),
               m.model_type.c_str(), m.n_layer, m.n_embd, m.n_head);
  if (m.kv_heads() != m.n_head)
    std::fprintf(out, ", %d key/value head%s", m.kv_heads(), m.kv_heads() == 1 ? "" : "s");
  const StoredDtype stored = stored_dtype(c.model);  // the headers only: no weights are read
  std::fprintf(out, ", d_mlp %d, vocab %d), weights %s\n", m.n_inner, m.vocab_size,
               weights_dtype_text(stored, c.dtype).c_str());
  std::fprintf(out, "ranks: %d = %d replica%s x %d tensor-parallel shard%s\n", job.ranks, replicas,
               replicas == 1 ? "" : "s", job.tp, job.tp == 1 ? "" : "s");
  std::fprintf(out, "pairs: %d, up to %d tokens; %lld work items, %lld per replica at most\n",
               job.pairs, job.T, static_cast<long long>(job.work_items),
               static_cast<long long>((job.work_items + replicas - 1) / replicas));
  std::fprintf(out, "\n  %-24s %-14s %-40s %10s\n", "experiment", "kind", "grid", "cells");
  for (size_t e = 0; e < c.experiments.size(); ++e)
    std::fprintf(out, "  %-24s %-14s %-40s %10zu\n", c.experiments[e].name.c_str(),
                 c.experiments[e].kind.c_str(), grid_text(job.grids[e]).c_str(),
                 job.grids[e].cells.size());
  for (const CircuitConfig& cc : c.circuits)
    std::fprintf(out, "  circuit %-16s %s, after the experiments, its rows split over every rank%s\n", cc.name.c_str(),
                 cc.method.c_str(),
                 cc.method == "acdc" ? " (its cost depends on the data: about one forward row per "
                                       "pair for each edge it tests)"
                                     : "");
  std::fprintf(out, "\nmemory per rank (estimate): weights %s + workspace %s + caches %s + "
               "runtime %s = %s\n",
               gib(s.weights).c_str(), gib(s.workspace).c_str(), gib(s.caches).c_str(),
               gib(s.runtime).c_str(), gib(s.per_rank()).c_str());
  if (stored.sixteen_bit() && c.dtype == DType::F32) {
    const char* as_stored = weight_dtype_name(*stored.dtype);
    std::fprintf(out, "weights: the checkpoint's %s matrices are widened to f32 on load (%s per rank); "
                 "[model] dtype = \"%s\" or --dtype %s would hold them as stored in %s per rank "
                 "(compute is fp32 either way)\n",
                 as_stored, gib(s.weights).c_str(), as_stored, as_stored,
                 gib(weight_bytes(job, *stored.dtype)).c_str());
  }
  std::fprintf(out, "compute: %.3g FLOP in all, %.3g on the busiest rank (at most: prefix reuse "
               "and cone restriction recompute fewer rows)\n",
               s.flops, s.busiest_rank_flops);
  // A config of circuits alone has no work items: its circuits split over any ranks.
  if (s.idle_ranks > 0 && job.work_items > 0)
    std::fprintf(out, "idle: %d of the %d ranks would get no work item (%s for %d replicas); "
                 "`run` refuses more replicas than work items: use at most %s, or a smaller "
                 "parallel.pairs_per_item\n",
                 s.idle_ranks, job.ranks, count_of(job.work_items, "work item").c_str(), replicas,
                 count_of(job.work_items * job.tp, "rank").c_str());
}

}  // namespace causeway::cli
