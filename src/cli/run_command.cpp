// `causeway run CONFIG.toml`: every experiment of the config as one batch job over any number
// of MPI ranks. Rank 0 lays out the result file (or checks it, with --resume); the ranks then
// take work items (blocks of pairs x slabs of a sweep grid), statically or from a shared
// counter, and write each item's block into the one file through parallel HDF5; rank 0
// finally adds the means and prints the strongest components.
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <thread>

#include "cli/circuit_step.h"
#include "cli/commands.h"
#include "cli/compute_choice.h"
#include "cli/device_choice.h"
#include "cli/dry_run.h"
#include "cli/fault_hooks.h"
#include "cli/interrupt.h"
#include "cli/job_log.h"
#include "cli/number_options.h"
#include "cli/output_guard.h"
#include "cli/readout_experiments.h"
#include "cli/run_config.h"
#include "core/error.h"
#include "io/output_lock.h"
#include "io/result_store.h"
#include "io/resume_check.h"
#include "io/result_writer.h"
#include "model/hook_gather.h"
#include "model/tensor_shard.h"
#include "model/transformer_model.h"
#include "model/tokenizer.h"
#include "model/model_weights.h"
#include "model/safetensors.h"
#include "model/stored_dtype.h"
#include "model/weights_fingerprint.h"
#include "parallel/communicator.h"
#include "parallel/job_stop.h"
#include "parallel/scheduler.h"
#include "parallel/topology.h"
#include "parallel/work_plan.h"
#include "patching/attribution.h"
#include "patching/nonfinite.h"

namespace causeway::cli {

namespace {

struct RunOptions {
  std::string config;
  std::string out;
  bool overwrite = false;
  bool resume = false;
  bool quiet = false;
  std::string log_level = "info";
  std::string schedule;
  int threads = -1;
  int top = 8;
  bool allow_nonfinite = false;
  bool dry_run = false;
  int dry_ranks = 0;  // --ranks: the job to size (0: this launch's world)
  int tp = 0;         // --tp: overrides [parallel] tp (0: the config's)
  std::string dtype;  // --dtype: overrides [model] dtype ("": the config's)
  std::string compute;  // --compute: overrides [model] compute ("": the config's)
  bool tp_within_node = false;  // refuse a tensor-parallel group spread over nodes
  std::string device = "cpu";   // --device: cpu or cuda (cuda falls back to the CPU for now)
};

// Threads per rank when neither the config nor --threads says: the cores this rank may run on,
// shared with the other ranks of its node whose cores overlap (an unbound mpirun gives every
// rank all cores; more threads than cores make OpenMP's spinning workers stall each other).
int default_threads(const Communicator& world) {
  cpu_set_t set;
  CPU_ZERO(&set);
  const int mine = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
  MPI_Comm node;
  MPI_Comm_split_type(world.comm(), MPI_COMM_TYPE_SHARED, world.rank(), MPI_INFO_NULL, &node);
  int local = 1, cores_total = 0;
  MPI_Comm_size(node, &local);
  // Ranks bound to disjoint cores each see only theirs; unbound ranks all see the whole node.
  MPI_Allreduce(&mine, &cores_total, 1, MPI_INT, MPI_SUM, node);
  MPI_Comm_free(&node);
  const int node_cores = static_cast<int>(std::thread::hardware_concurrency());
  const bool shared = cores_total > std::max(node_cores, 1);
  return std::max(1, shared ? mine / local : mine);
}

// NaN over every position at or past `length` (positions past a prompt hold padding).
void mask_past_length(float* v, const std::vector<int64_t>& shape, const std::vector<std::string>& axes,
                      int length) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<int64_t> idx(shape.size());
  for (int64_t i = 0; i < n; ++i) {
    int64_t rest = i;
    bool past = false;
    for (int d = static_cast<int>(shape.size()) - 1; d >= 0; --d) {
      idx[d] = rest % shape[d];
      rest /= shape[d];
      if (axes[d].ends_with("pos") && idx[d] >= length) past = true;
    }
    if (past) v[i] = std::numeric_limits<float>::quiet_NaN();
  }
}

// Attributes of an edge experiment (kind edges or path_patching).
std::map<std::string, AttributeValue> edge_attributes(const ExperimentConfig& e) {
  const EdgeSweepRequest& q = e.edges;
  std::map<std::string, AttributeValue> a = {
      {"kind", e.kind},
      {"method", edge_method_name(q.method)},
      {"metric", metric_name(e.request.metric)},
      {"mean_definition", mean_definition(e.request.metric)},
      {"direction", q.direction == Direction::Denoising ? "denoising" : "noising"},
      {"corruption", "dataset"},
  };
  if (q.method == EdgeSweepMethod::EapIgInputs || q.method == EdgeSweepMethod::EapIgActivations)
    a["steps"] = static_cast<int64_t>(q.steps);
  if (q.method == EdgeSweepMethod::PathPatching) a["freeze"] = q.freeze == PathFreeze::All ? "all" : "heads";
  if (q.heads_grid) {
    std::string names;
    for (const std::string& r : e.receivers) names += (names.empty() ? "" : ", ") + r;
    a["receivers"] = names;
  } else {
    a["effect"] = "change of the metric from the target run when the edge is patched (measured "
                  "or estimated); 0 where the sender does not come before the receiver";
  }
  return a;
}

std::map<std::string, AttributeValue> attributes_of(const ExperimentConfig& e, const RunConfig& c) {
  if (e.is_edge_kind()) return edge_attributes(e);
  const SweepRequest& r = e.request;
  std::map<std::string, AttributeValue> a = {
      {"kind", e.kind},
      {"sweep", r.spec.name()},
      {"positions", r.spec.named ? "named" : r.spec.by_pos ? "each" : "all"},
      {"metric", metric_name(r.metric)},
      {"mean_definition", mean_definition(r.metric)},
  };
  if (e.kind == "activation" || e.kind == "attribution")
    a["direction"] = r.direction == Direction::Denoising ? "denoising" : "noising";
  if (e.kind == "attribution") {
    a["method"] = std::string("attribution patching (AtP") + (e.attribution.qk_fix || e.attribution.grad_drop ? "*" : "") + ")";
    a["qk_fix"] = e.attribution.qk_fix;
    a["grad_drop"] = e.attribution.grad_drop;
  }
  if (e.kind == "ablation") a["ablation"] = e.ablation;
  if (has_own_engine(e)) add_own_attributes(e, a);
  if (e.kind == "noise") {
    a["corruption"] = "gaussian_noise";
    a["noise_scale"] = static_cast<double>(r.noise.scale);
    a["noise_samples"] = static_cast<int64_t>(r.noise.samples);
  } else {
    a["corruption"] = c.generator == "ioi"
                          ? (c.ioi.corruption == IoiOptions::Corruption::SubjectSwap ? "ioi_subject_swap"
                                                                                     : "ioi_third_name")
                          : "dataset";
  }
  if (r.window > 1) a["window"] = static_cast<int64_t>(r.window);
  return a;
}

std::string cell_label(const std::vector<GridAxis>& axes, int64_t flat) {
  std::string s;
  for (int d = static_cast<int>(axes.size()) - 1; d >= 0; --d) {
    const GridAxis& a = axes[d];
    const int64_t i = flat % a.size;
    flat /= a.size;
    // Named positions keep their axis name: "pos END", not a bare "END".
    const std::string part = a.labels.empty()        ? a.name + " " + std::to_string(i)
                             : a.name.ends_with("pos") ? a.name + " " + a.labels[i]
                                                       : a.labels[i];
    // An edge reads as its name, "sender->receiver".
    s = part + (s.empty() ? "" : (a.name == "sender" ? "->" : ", ") + s);
  }
  return s;
}

// The run a sweep patches into: clean for noising and ablation, the corrupted (or, for causal
// tracing, the noised) run otherwise.
bool targets_clean_run(const ExperimentConfig& e) {
  return e.kind != "noise" && (e.kind == "ablation" || e.request.direction == Direction::Noising);
}

// The mean a component with no effect would have: patching leaves the target run as it was.
// The normalized metric's mean (TransformerLens') is then exactly 1 for a clean target and 0
// otherwise; every other metric's mean is the average of the target's own baseline.
double no_effect_value(const ExperimentConfig& e, const std::vector<double>& clean_metric,
                       const std::vector<double>& corrupted_metric) {
  if (e.kind == "edges") return 0.0;  // edge cells hold changes of the metric
  if (has_own_engine(e)) return 0.0;   // contributions and changes of the logit difference
  const bool target_clean = targets_clean_run(e);
  if (e.request.metric == MetricKind::Normalized) return target_clean ? 1.0 : 0.0;
  const auto& v = target_clean ? clean_metric : corrupted_metric;
  double s = 0.0;
  int n = 0;
  for (double x : v)
    if (!std::isnan(x)) s += x, ++n;
  return n ? s / n : 0.0;
}

// An experiment's per-pair baselines as the file holds them.
SweepBaselines read_baselines(ResultStore& store, const std::string& group) {
  SweepBaselines b;
  auto read = [&](const char* name) {
    const std::vector<float> v = store.file().read_floats(group + "/baselines/" + name);
    return std::vector<double>(v.begin(), v.end());
  };
  b.clean_ld = read("clean_logit_diff");
  b.corrupted_ld = read("corrupted_logit_diff");
  b.clean_metric = read("clean_metric");
  b.corrupted_metric = read("corrupted_metric");
  return b;
}

std::string fixed3(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3f", v);
  return buf;
}

// Cells ordered by how far their mean moves from `reference`, strongest first.
std::vector<int64_t> strongest(const std::vector<float>& mean, double reference, int64_t k) {
  std::vector<int64_t> order(mean.size());
  std::iota(order.begin(), order.end(), 0);
  auto key = [&](int64_t i) { return std::isnan(mean[i]) ? -1.0 : std::abs(mean[i] - reference); };
  k = std::min<int64_t>(k, static_cast<int64_t>(order.size()));
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](int64_t a, int64_t b) { return key(a) > key(b); });
  order.resize(k);
  return order;
}

// Baselines are the chosen metric's (for normalized also the raw logit differences it is made
// of), and the header says what the order of the list means.
void print_top(const ExperimentConfig& e, const std::vector<GridAxis>& axes,
               const std::vector<float>& mean, const SweepBaselines& b, double reference, int k) {
  auto avg = [](const std::vector<double>& v) {
    double s = 0.0;
    int n = 0;
    for (double x : v)
      if (!std::isnan(x)) s += x, ++n;
    return n ? s / n : std::numeric_limits<double>::quiet_NaN();
  };
  const std::string metric = metric_name(e.request.metric);
  const char* other = e.kind == "noise" ? "noised" : "corrupted";
  std::string baselines = "clean " + metric + " " + fixed3(avg(b.clean_metric)) + ", " + other + " " +
                          metric + " " + fixed3(avg(b.corrupted_metric));
  if (e.request.metric == MetricKind::Normalized)
    baselines += " (logit_diff: clean " + fixed3(avg(b.clean_ld)) + ", " + other + " " +
                 fixed3(avg(b.corrupted_ld)) + ")";
  const std::string what = e.is_edge_kind()           ? edge_method_name(e.edges.method)
                           : e.readout.components      ? "components"
                           : e.kind == "logit_lens" ? "accumulated_resid"
                                                       : e.request.spec.name();
  std::printf("\n%s (%s, %s, %s): %s; ranked by |mean - no effect| where no effect = %.3f\n",
              e.name.c_str(), e.kind.c_str(), what.c_str(), metric.c_str(), baselines.c_str(),
              reference);
  for (int64_t c : strongest(mean, reference, k))
    std::printf("  %-36s %+.4f\n", cell_label(axes, c).c_str(), mean[c]);
}

double pearson(const std::vector<double>& a, const std::vector<double>& b) {
  const double n = static_cast<double>(a.size());
  if (n < 2) return std::numeric_limits<double>::quiet_NaN();
  const double ma = std::accumulate(a.begin(), a.end(), 0.0) / n, mb = std::accumulate(b.begin(), b.end(), 0.0) / n;
  double num = 0, da = 0, db = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - ma) * (b[i] - mb);
    da += (a[i] - ma) * (a[i] - ma);
    db += (b[i] - mb) * (b[i] - mb);
  }
  return num / std::sqrt(da * db);
}

// Everything every rank knows before the work starts.
struct Job {
  RunConfig cfg;
  ModelConfig model_config;  // config.json: read by set_up, before any weights
  std::unique_ptr<Collectives> tp;  // the replica's group; outlives the model that holds it
  std::unique_ptr<TransformerModel> model;  // this rank's shard, loaded by place_ranks
  std::unique_ptr<Tokenizer> tok;
  PairDataset data;
  Topology topo;
  std::vector<ExperimentLayout> layouts;
  std::vector<HookPoint> cache_points;
  std::vector<ActivationLayout> activations;
  int T_max = 0;
  WorkPlan plan;
  Schedule schedule = Schedule::Static;
  int node_threads = 1;                // threads per rank when neither config nor flag says
  std::vector<SweepGrid> grids;        // per experiment
  int n_experiments() const { return static_cast<int>(cfg.experiments.size()); }
};

// Every rank, no collectives: a rank that fails here must not leave the others inside one.
void set_up(Job& job, const RunOptions& o) {
  RunConfig& c = job.cfg;
  c = RunConfig::load(o.config);
  if (!o.out.empty()) c.output = o.out;
  if (!o.schedule.empty()) c.schedule = o.schedule;
  if (o.tp > 0) c.tp = o.tp;
  if (!o.dtype.empty()) c.dtype = parse_weight_dtype(o.dtype, "--dtype", "");
  if (!o.compute.empty()) c.compute = parse_compute(o.compute, "--compute", "");
  check_compute_fits_dtype(c.compute, c.dtype, o.compute.empty() ? c.path.string() : "--compute",
                           o.compute.empty() ? "model.compute" : "");
  cpu::set_sixteen_bit_compute(c.compute);
  c.allow_nonfinite = c.allow_nonfinite || o.allow_nonfinite;
  job.schedule = parse_schedule(c.schedule, "--schedule");
  if (o.resume && o.overwrite)
    throw InputError("command line", "--resume", "cannot be combined with --overwrite");
  guard_output_file(c.output,
                    {{c.path, "the config"}, {c.data_file, "the pairs file"}, {c.model, "the model folder"}},
                    o.out.empty() ? "output.path" : "--out");
  set_cpu_threads(o.threads >= 0 ? o.threads : c.threads > 0 ? c.threads : job.node_threads);

  // Everything is checked against config.json; the weights load in place_ranks, sharded over
  // the replica's ranks (a dry run never loads them).
  job.model_config = ModelConfig::from_json_file(c.model / "config.json");
  const ModelConfig& mc = job.model_config;
  // Every size against the weights' headers (no tensor data), so a dry run refuses a config
  // that disagrees with them as the run would; a folder without weights is sized as it says.
  if (Checkpoint::present(c.model))
    ModelWeights::check_against(mc, Checkpoint::open(c.model), (c.model / "config.json").string());
  const std::string tp_source = o.tp > 0 ? "--tp" : c.path.string();
  // tp must fit the model: its heads, key/value heads and MLP width.
  TensorShard::make(mc, 0, c.tp, (c.model / "config.json").string());
  for (size_t e = 0; e < c.experiments.size(); ++e) {
    if (c.tp > 1 && c.experiments[e].readout.top_k > 0)
      throw InputError(tp_source, o.tp > 0 ? "" : "parallel.tp",
                       std::to_string(c.tp) + ": experiment '" + c.experiments[e].name +
                           "' lists the lens's top_k tokens, which the writing rank computes alone "
                           "over the whole vocabulary; run it with tp = 1");
    if (c.tp > 1 && c.experiments[e].kind == "attribution" && c.experiments[e].verify_top > 0)
      throw InputError(tp_source, o.tp > 0 ? "" : "parallel.tp",
                       std::to_string(c.tp) + ": experiment '" + c.experiments[e].name +
                           "' verifies attribution with verify_top, which re-runs activation "
                           "patching on the writing rank alone; verify with tp = 1");
  }
  if (std::filesystem::exists(c.model / "vocab.json") || std::filesystem::exists(c.model / "tokenizer.json"))
    job.tok = std::make_unique<Tokenizer>(c.prepend_bos ? Tokenizer::from_model_dir(c.model).with_prepend_bos(*c.prepend_bos)
                                                        : Tokenizer::from_model_dir(c.model));
  if (!c.generator.empty()) {
    if (!job.tok) throw InputError(c.model.string(), "vocab.json", "the IOI generator needs the model's tokenizer");
    job.data.pairs = generate_ioi(*job.tok, c.ioi);
    job.data.source = "ioi generator";
  } else {
    job.data = load_pairs_jsonl(c.data_file, job.tok.get());
  }
  // Before anything is laid out: clean and corrupted prompts of different lengths cannot be
  // patched onto each other (and once overran the token table of the result file).
  job.data.require_aligned();
  for (const PromptPair& p : job.data.pairs) {
    validate_tokens(mc, TokenBatch::padded({p.clean, p.corrupted}),
                    job.data.source + (p.line ? ": line " + std::to_string(p.line) : ""));
    job.T_max = std::max(job.T_max, static_cast<int>(p.clean.size()));
  }
  try {
    c.check_against(mc, job.data);
  } catch (const InputError& e) {
    // The checks read tp from the config; a --tp given on the command line is what to change.
    if (o.tp == 0 || e.field() != "parallel.tp") throw;
    throw InputError("--tp", "", e.detail());
  }
  for (const ExperimentConfig& e : c.experiments)
    if (e.request.metric == MetricKind::Normalized && e.kind != "noise" && !c.allow_nonfinite)
      refuse_identical_prompts(job.data, e.name);

  const int P = static_cast<int>(job.data.pairs.size());
  const int per_item = std::min(c.pairs_per_item, std::max(P, 1));
  std::vector<ExperimentShape> shapes;
  for (const ExperimentConfig& e : c.experiments) {
    const SweepGrid grid =
        e.is_edge_kind()   ? edge_sweep_grid(e.edges, mc)
        : has_own_engine(e) ? own_grid(e, mc, job.data, c.path.string(),
                                       "experiment[" + std::to_string(job.layouts.size()) + "].positions")
            : grid_for(e.request.spec, mc, job.data, c.path.string(),
                       "experiment[" + std::to_string(job.layouts.size()) + "].positions");
    // Edge estimates compute a pair block's whole grid at once (one item per pair block);
    // measured edges split the senders over items too.
    const int lead_per_item = e.is_edge_kind()    ? edge_sweep_lead_per_item(e.edges, mc)
                              : has_own_engine(e) ? own_lead_per_item(e, grid)
                                                  : 1;
    // More cells to verify than the grid has would silently verify fewer.
    if (e.verify_top > static_cast<int64_t>(grid.cells.size()))
      throw InputError(c.path.string(), "experiment[" + std::to_string(job.layouts.size()) + "].verify_top",
                       "must be at most the grid's " + std::to_string(grid.cells.size()) + " cells, got " +
                           std::to_string(e.verify_top));
    ExperimentLayout l;
    l.name = e.name;
    l.attributes = attributes_of(e, c);
    // attn_head_every under grouped-query attention: which cells patch nothing, and why.
    if (!grid.not_applicable.empty()) l.attributes["not_applicable"] = grid.not_applicable;
    l.axes = grid.axes;
    l.n_pairs = P;
    l.pairs_per_item = per_item;
    l.lead_per_item = lead_per_item;
    job.layouts.push_back(l);
    job.grids.push_back(grid);
    shapes.push_back({e.name, P, grid.axes.front().size, static_cast<int64_t>(grid.cells.size()),
                      lead_per_item});
  }
  for (const std::string& h : c.cache_hooks) {
    const HookPoint hp = HookPoint::parse(h, mc, c.path.string() + ": output.cache");
    const Shape s = hp.shape(mc, 1, job.T_max);
    ActivationLayout a{hp.name(), {}, hook_axes(hp.kind, mc)};
    for (int d = 1; d < s.rank; ++d) a.shape.push_back(s[d]);
    job.cache_points.push_back(hp);
    job.activations.push_back(a);
  }
  if (!job.activations.empty()) shapes.push_back({"activations", P, 1, 1});
  job.plan = WorkPlan::build(shapes, per_item, 1);
  for (size_t e = 0; e < job.layouts.size(); ++e)
    job.layouts[e].n_items = job.plan.items_of(static_cast<int>(e));
}

DryRunJob dry_run_of(const Job& job, const RunOptions& o, int world_size) {
  DryRunJob d;
  d.cfg = &job.cfg;
  d.model = &job.model_config;
  d.pairs = static_cast<int>(job.data.pairs.size());
  d.T = job.T_max;
  d.grids = job.grids;
  d.work_items = job.plan.size();
  d.tp = job.cfg.tp;  // set_up checked that it fits the model
  // Not launched under mpirun, a dry run sizes the smallest job the layout allows: one replica.
  d.ranks = o.dry_ranks > 0 ? o.dry_ranks : world_size > 1 ? world_size : d.tp;
  for (int e = 0; e < job.n_experiments(); ++e) d.items_of.push_back(job.plan.items_of(e));
  if (d.ranks % d.tp != 0)
    throw InputError(o.tp > 0 ? "--tp" : job.cfg.path.string(), o.tp > 0 ? "" : "parallel.tp",
                     std::to_string(d.tp) + " does not divide the " + std::to_string(d.ranks) +
                         " ranks of the job");
  return d;
}

// Collective (it splits the world into replicas of tp ranks), so a step of its own after
// set_up: then each rank loads its shard of the model (the whole model when tp = 1).
void place_ranks(Job& job, const Communicator& world, const RunOptions& o) {
  const RunConfig& c = job.cfg;
  const std::string source = o.tp > 0 ? "--tp" : c.path.string();
  job.topo = Topology::make(world, c.tp, job.model_config.n_head, source);
  if (o.tp_within_node && !job.topo.tp_group_within_node(world))
    throw InputError("command line", "--tp-within-node",
                     "the tensor-parallel group of world ranks " +
                         std::to_string(job.topo.dp_rank * c.tp) + "-" +
                         std::to_string(job.topo.dp_rank * c.tp + c.tp - 1) +
                         " spans nodes; start whole groups of " + std::to_string(c.tp) +
                         " consecutive ranks per node (e.g. ranks per node a multiple of tp)");
  // A config of circuits alone has no items: its circuits split over every rank after the (empty) work.
  if (job.plan.size() > 0 && job.topo.dp_size > job.plan.size())
    throw InputError(c.path.string(), "parallel",
                     std::to_string(job.topo.dp_size) + " data-parallel ranks but only " +
                         std::to_string(job.plan.size()) +
                         " work items; use fewer ranks or a smaller parallel.pairs_per_item");
  job.tp = make_mpi_collectives(job.topo.tp_comm);
  job.model = std::make_unique<TransformerModel>(TransformerModel::load(c.model, c.dtype, job.tp.get()));
}

// The replica's leader (tp rank 0) writes its items and counts them; the other ranks of the
// replica compute the same items alongside it.
bool leads_replica(const Job& job) { return job.topo.tp_rank == 0; }

// What a result file must match to be resumed, beside its config text.
ResumeIdentity identity_of(const Job& job) {
  // Every experiment's layout has this pairs_per_item; a config of circuits alone has none.
  const int per_item = std::min(job.cfg.pairs_per_item, std::max(static_cast<int>(job.data.pairs.size()), 1));
  return {per_item, job.model_config.describe().dump(),
          weights_fingerprint(job.cfg.model), weight_dtype_name(job.cfg.dtype),
          stored_dtype(job.cfg.model).text, effective_compute_name(job.cfg.compute)};
}

// Rank 0: a new file laid out in full, or an existing one checked against the config.
// Returns the done byte of every work item.
std::vector<uint8_t> prepare_file(const Job& job, const RunOptions& o, JobLog& log) {
  const RunConfig& c = job.cfg;
  std::vector<uint8_t> done;
  // A requeued job resumes whether or not its first run got as far as creating the file.
  const bool resume = o.resume && std::filesystem::exists(c.output);
  if (o.resume && !resume)
    log.info("resume: " + c.output.string() + " does not exist; starting a new run");
  if (resume) {
    ResultStore store = ResultStore::open(c.output);
    const auto diff = config_differences(store.config_text(), c.text);
    if (!diff.empty()) {
      std::string what;
      for (const std::string& d : diff) what += "\n  " + d;
      throw InputError(c.output.string(), "/meta/config",
                       "--resume: the config differs from the one this file was written with:" + what);
    }
    check_resume_identity(store.file(), identity_of(job), c.pairs_per_item, job.data);
    for (int e = 0; e < job.n_experiments(); ++e) {
      const auto d = store.done(job.layouts[e].name);
      if (static_cast<int>(d.size()) != job.plan.items_of(e))
        throw InputError(c.output.string(), "/experiments/" + job.layouts[e].name + "/done",
                         "--resume: the file has a different work split (pairs_per_item?)");
      done.insert(done.end(), d.begin(), d.end());
    }
    if (!job.activations.empty()) {
      const auto d = store.done("activations");
      done.insert(done.end(), d.begin(), d.end());
    }
    const int64_t n_done = std::count_if(done.begin(), done.end(), [](uint8_t b) { return b != 0; });
    log.info("resume: " + std::to_string(n_done) + " of " + std::to_string(done.size()) +
             " work items already done in " + c.output.string() + "; skipping them, " +
             std::to_string(done.size() - n_done) + " to run");
    return done;
  }
  if (std::filesystem::exists(c.output) && !o.overwrite)
    throw InputError(c.output.string(), "",
                     "output file exists; pass --resume to continue it or --overwrite to replace it");
  const auto parent = c.output.parent_path();
  if (!parent.empty() && !std::filesystem::is_directory(parent))
    throw InputError(c.output.string(), "", "the output folder does not exist (or is not a folder)");
  // Laid out under a temporary name and renamed into place once complete and closed: a kill
  // or a full disk during layout leaves no file (and, with --overwrite, the old one intact).
  try {
    ResultStore store = ResultStore::create_staged(c.output);
    store.write_meta(c.text, c.model.string(), job.model_config.describe().dump(), job.topo.describe());
    write_resume_identity(store.file(), identity_of(job));
    store.write_data(job.data, job.tok.get());
    fault_kill_during_layout();
    for (const ExperimentLayout& l : job.layouts) store.create_experiment(l);
    lay_out_circuits(store.file(), job.cfg);
    store.create_activations(job.activations, static_cast<int>(job.data.pairs.size()),
                             job.activations.empty() ? 0 : job.plan.items_of(job.n_experiments()),
                             job.layouts.empty() ? 1 : job.layouts.front().pairs_per_item);
    store.publish();
  } catch (const IoError& e) {
    throw IoError(std::string(e.what()) +
                  "; the output path was left as it was: free space, then run again");
  }
  done.assign(static_cast<size_t>(job.plan.size()), 0);
  return done;
}

// One activation-caching item: the hooks of its pairs' clean and corrupted runs. Under tensor
// parallelism every rank of the replica runs the forward, hooks whose heads or units are split
// are gathered whole, and the leader writes them.
void cache_activations(Job& job, const WorkItem& item, ResultWriter& writer) {
  const ModelConfig& mc = job.model->config();
  const int B = item.pair_end - item.pair_begin, T = job.T_max;
  std::map<std::string, std::vector<float>> values[2];
  for (int run = 0; run < 2; ++run) {
    TokenBatch batch;
    batch.B = B, batch.T = T;
    batch.ids.assign(static_cast<size_t>(B) * T, 0);
    for (int i = 0; i < B; ++i) {
      const PromptPair& p = job.data.pairs[item.pair_begin + i];
      const auto& ids = run == 0 ? p.clean : p.corrupted;
      std::copy(ids.begin(), ids.end(), batch.ids.begin() + static_cast<int64_t>(i) * T);
      batch.lengths.push_back(static_cast<int>(ids.size()));
    }
    HookPlan plan(mc.n_layer);
    for (const HookPoint& h : job.cache_points) plan.cache(h);
    job.model->forward(batch, plan, LogitRows::None);
    for (size_t h = 0; h < job.cache_points.size(); ++h) {
      std::vector<float> v;
      gather_hook(job.cache_points[h].kind, mc, job.model->shard(), job.tp.get(),
                  plan.activations().at(job.cache_points[h]), B, T, v);
      const int64_t per = static_cast<int64_t>(v.size()) / B;
      for (int i = 0; i < B; ++i)
        mask_past_length(v.data() + i * per, job.activations[h].shape, job.activations[h].axes,
                         batch.lengths[i]);
      values[run][job.activations[h].hook] = std::move(v);
    }
  }
  if (!leads_replica(job)) return;
  for (const ActivationLayout& a : job.activations)
    writer.write_activations(a.hook, item, a.shape, values[0][a.hook].data(), values[1][a.hook].data());
}

std::unique_ptr<SweepEngine> make_engine(Job& job, int e) {
  const ExperimentConfig& x = job.cfg.experiments[e];
  if (x.is_edge_kind()) {
    EdgeSweepRequest q = x.edges;
    const CircuitGraph graph(job.model->config());
    for (const std::string& r : x.receivers) q.receivers.push_back(graph.find_receiver(r));
    return std::make_unique<EdgeSweep>(*job.model, job.data, q);
  }
  if (has_own_engine(x)) return make_own_engine(*job.model, job.data, x);
  if (x.kind == "attribution")
    return std::make_unique<AttributionRunner>(*job.model, job.data, x.request, x.attribution);
  return std::make_unique<SweepRunner>(*job.model, job.data, x.request);
}

std::string describe(const Job& job, const WorkItem& it) {
  const bool act = it.experiment == job.n_experiments();
  std::string s = "item " + std::to_string(it.index) + " of " +
                  (act ? std::string("activations") : job.layouts[it.experiment].name) + " (pairs " +
                  std::to_string(it.pair_begin) + "-" + std::to_string(it.pair_end - 1);
  if (!act)
    s += ", " + job.layouts[it.experiment].axes.front().name + " " + std::to_string(it.lead_begin) +
         (it.lead_end - it.lead_begin > 1 ? "-" + std::to_string(it.lead_end - 1) : "");
  return s + ")";
}

struct WorkStats {
  int64_t items = 0;
  double write_seconds = 0.0;
  std::vector<double> experiment_seconds;
};

// Thrown inside a work item when the job is stopping: the item is dropped unwritten.
struct Stopped {};

// One sweep item: compute, check for NaN and inf, write, then mark done.
void run_sweep_item(Job& job, const WorkItem& it, SweepEngine& r, SweepBaselines& baselines,
                    std::vector<float>& effect, ResultWriter& writer, const SweepProgress& check) {
  const int e = it.experiment;
  effect.resize(static_cast<size_t>(it.pair_end - it.pair_begin) * (it.cell_end - it.cell_begin));
  r.run_block(it.pair_begin, it.pair_end, static_cast<int>(it.cell_begin),
              static_cast<int>(it.cell_end), effect.data(), baselines, check);
  const int bad_pair = fault_nonfinite_pair();
  if (bad_pair >= it.pair_begin && bad_pair < it.pair_end)
    for (int64_t c = it.cell_begin; c < it.cell_end; ++c)
      if (!is_padding_cell(r.grid().cells[c], job.data.pairs[bad_pair])) {
        effect[(bad_pair - it.pair_begin) * (it.cell_end - it.cell_begin) + (c - it.cell_begin)] =
            std::numeric_limits<float>::quiet_NaN();
        break;
      }
  if (!job.cfg.allow_nonfinite)
    require_finite({job.layouts[e].name, job.cfg.experiments[e].request.metric, job.data, r.grid(),
                    it.pair_begin, it.pair_end, it.cell_begin, it.cell_end, effect.data(), baselines},
                   [&](int64_t c) { return cell_label(job.layouts[e].axes, c); });
  // Every rank of a replica has the same effects (logits and metrics are whole on each).
  if (!leads_replica(job)) return;
  writer.write_item(job.layouts[e].name, it, r.grid().shape(), effect.data(), baselines);
  writer.mark_done(job.layouts[e].name, it);
}

// This rank's share of the work. A failure here is this rank's alone: it raises the job-wide
// stop, the other ranks drop what they are doing at their next check (between items, and
// between the batches of an item), and all of them meet in one agreement, so the job ends
// within seconds with one message. SIGTERM/SIGINT stop the job the same way; items not marked
// done run again on --resume. The ranks of a tensor-parallel replica run each item together
// (its forwards are collective over them), so they stop together too: at each check they agree
// whether any of them must stop.
WorkStats do_work(Job& job, const std::vector<uint8_t>& done, const Communicator& world,
                  JobStop& stop, JobLog& log) {
  WorkStats stats;
  stats.experiment_seconds.assign(job.n_experiments(), 0.0);
  const int64_t total = job.plan.size();
  const int64_t already = std::count_if(done.begin(), done.end(), [](uint8_t b) { return b != 0; });
  // Collective open: a rank whose open fails must not leave the others inside it.
  std::unique_ptr<ResultWriter> out;
  together(stop, false, [&] { out = std::make_unique<ResultWriter>(job.cfg.output, world.comm()); });
  ResultWriter& writer = *out;
  SharedCounter finished(world);
  if (world.rank() == 0) finished.fetch_add(already);
  world.barrier();
  const Communicator dp(job.topo.dp_comm), tp(job.topo.tp_comm);
  const bool leader = leads_replica(job);
  std::unique_ptr<Scheduler> sched = make_replica_scheduler(job.schedule, dp, tp, done);
  std::vector<std::unique_ptr<SweepEngine>> runners(job.n_experiments());
  std::vector<SweepBaselines> baselines(job.n_experiments());
  std::vector<float> effect;
  JobOutcome mine;
  auto must_stop = [&] {
    if (const int sig = interrupt_signal(); sig && !mine.signal) {
      mine.signal = sig;
      stop.raise_interrupt();
    }
    return mine.signal != 0 || stop.stop_raised();
  };
  auto replica_must_stop = [&] {
    const bool here = must_stop();
    return tp.size() == 1 ? here : tp.max(here ? 1.0 : 0.0) > 0.0;
  };
  const SweepProgress check = [&](int64_t, int64_t) {
    if (replica_must_stop()) throw Stopped{};
  };
  int64_t ran = 0;  // items this rank took part in
  try {
    for (int64_t g; !replica_must_stop() && (g = sched->next()) >= 0;) {
      const WorkItem& it = job.plan.items()[g];
      const auto t0 = std::chrono::steady_clock::now();
      fault_point("item", world.rank());
      if (const int ms = fault_sleep_per_item_ms()) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      if (it.experiment == job.n_experiments()) {
        cache_activations(job, it, writer);
        if (leader) writer.mark_done("activations", it);
      } else {
        const int e = it.experiment;
        if (!runners[e]) runners[e] = make_engine(job, e);
        run_sweep_item(job, it, *runners[e], baselines[e], effect, writer, check);
      }
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      // A replica's item is counted, timed and logged once, by its leader.
      if (leader) {
        if (it.experiment < job.n_experiments()) stats.experiment_seconds[it.experiment] += secs;
        ++stats.items;
        finished.fetch_add(1);
        log.debug(describe(job, it) + " done in " + std::to_string(secs) + " s");
      }
      if (world.rank() == 0) log.progress(finished.read(), total);
      fault_kill_after_items(++ran);
    }
    fault_point("after_work", world.rank());
  } catch (const Stopped&) {
  } catch (...) {
    const int signal = mine.signal;
    mine = outcome_of_current_exception(world.rank());
    mine.signal = signal;
  }
  // Rank 0 keeps the job's progress moving while it waits for the others.
  JobOutcome outcome = stop.agree(mine, [&] {
    if (world.rank() == 0) log.progress(finished.read(), total);
  });
  if (world.rank() == 0) {
    if (outcome.ok()) log.progress(total, total, true);
    log.end_progress();
  }
  if (outcome.interrupted())
    outcome.message = "interrupted by " + signal_name(outcome.signal) + "; " + std::to_string(finished.read()) +
                      " of " + std::to_string(total) + " items done, continue with --resume";
  // Every rank leaves here together; the file closes as the writer goes (done bits only ever
  // follow data made durable, so the file resumes).
  if (!outcome.ok()) throw JobFailure{outcome};
  // The close flushes what HDF5 still buffers; a full disk may show only here.
  together(stop, false, [&] { writer.close(); });
  stats.write_seconds = writer.write_seconds();
  return stats;
}

// Verify mode: true activation patching of the attribution's strongest cells, stored beside
// the estimates with their correlation, so a user sees how far the linear estimate held.
// Returns the summary line, printed once the file is safely closed.
std::string verify(const Job& job, int e, ResultStore& store, const std::vector<float>& mean,
                   double reference) {
  const ExperimentConfig& x = job.cfg.experiments[e];
  const std::string g = "/experiments/" + x.name;
  const std::vector<int64_t> cells = strongest(mean, reference, x.verify_top);
  const int P = static_cast<int>(job.data.pairs.size()), K = static_cast<int>(cells.size());
  std::vector<int64_t> shape;
  const std::vector<float> effect = store.file().read_floats(g + "/effect", &shape);
  const int64_t n_cells = effect.size() / std::max(P, 1);
  SweepRunner truth(*job.model, job.data, x.request);
  std::vector<float> estimate(static_cast<size_t>(P) * K), actual(estimate.size()), one(P);
  SweepBaselines base;
  const int per = x.request.pairs_per_block;
  std::vector<double> est_all, act_all, est_mean, act_mean;
  const std::vector<float> true_mean = [&] {
    std::vector<float> per_cell(static_cast<size_t>(P) * K);
    for (int k = 0; k < K; ++k) {
      for (int b = 0; b < P; b += per) {
        const int end = std::min(P, b + per);
        truth.run_block(b, end, static_cast<int>(cells[k]), static_cast<int>(cells[k]) + 1, one.data() + b, base);
      }
      for (int p = 0; p < P; ++p) {
        actual[p * K + k] = one[p];
        estimate[p * K + k] = effect[p * n_cells + cells[k]];
        per_cell[p * K + k] = one[p];
        if (!std::isnan(one[p]) && !std::isnan(estimate[p * K + k]))
          est_all.push_back(estimate[p * K + k]), act_all.push_back(one[p]);
      }
    }
    return sweep_mean(x.request.metric, per_cell, base, P, K);
  }();
  std::vector<int32_t> cell_ids;
  for (int k = 0; k < K; ++k) {
    cell_ids.push_back(static_cast<int32_t>(cells[k]));
    est_mean.push_back(mean[cells[k]]);
    act_mean.push_back(true_mean[k]);
  }
  // A resumed finished run verifies again: the new results replace the old ones.
  store.file().remove(g + "/verify");
  store.file().write_ints(g + "/verify/cell", cell_ids.data(), {K});
  store.file().write_floats(g + "/verify/estimate", estimate.data(), {P, K});
  store.file().write_floats(g + "/verify/actual", actual.data(), {P, K});
  store.file().write_floats(g + "/verify/mean_estimate", std::vector<float>(est_mean.begin(), est_mean.end()).data(), {K});
  store.file().write_floats(g + "/verify/mean_actual", true_mean.data(), {K});
  const double r_pairs = pearson(est_all, act_all), r_means = pearson(est_mean, act_mean);
  store.file().set_attribute(g + "/verify", "pearson_per_pair", r_pairs);
  store.file().set_attribute(g + "/verify", "pearson_of_means", r_means);
  store.file().set_attribute(g + "/verify", "description",
                             "activation patching of the top cells by |mean - no effect|; cell = flat grid index");
  char line[512];
  std::snprintf(line, sizeof(line),
                "\n%s: verified the top %d cells by activation patching: Pearson r %.3f over "
                "(pair, cell), %.3f over cell means\n", x.name.c_str(), K, r_pairs, r_means);
  return line;
}

// Rank 0, once every item is done: the means, timings and verification; `summary` gets what
// print_summary prints. Nothing is printed until the file is closed and synced (the circuits
// included, cli/circuit_step.h), so a summary means a complete file.
void finish_file(const Job& job, const RunOptions& o, const WorkStats& totals, double wall,
                 std::vector<std::function<void()>>& summary) {
  const RunConfig& c = job.cfg;
  try {
    // Room for everything below (verification tables, attributes, metadata) is reserved first:
    // a full disk then stops the job here, before the file is touched.
    int64_t bytes = int64_t{1} << 20;
    for (const ExperimentConfig& x : c.experiments)
      if (x.kind == "attribution") bytes += int64_t{16} * x.verify_top * (job.data.pairs.size() + 2);
    for (size_t e = 0; e < c.experiments.size(); ++e)  // the lens's top tokens: id and logit each
      bytes += int64_t{8} * c.experiments[e].readout.top_k * job.data.pairs.size() * job.grids[e].cells.size();
    reserve_space(c.output, bytes, "to write the means");
    ResultStore store = ResultStore::open(c.output);
    store.set_attribute("/meta", "rank_layout", job.topo.describe() + ", schedule " + schedule_name(job.schedule));
    store.file().set_attribute("/meta", "elapsed_seconds", wall);
    for (int e = 0; e < job.n_experiments(); ++e) {
      const ExperimentConfig& x = c.experiments[e];
      const std::string g = "/experiments/" + x.name;
      store.write_mean(x.name, x.request.metric);
      if (x.kind == "self_repair") store.split_last_axis(x.name, job.layouts[e].axes);
      if (x.kind == "logit_lens" && x.readout.top_k > 0) write_lens_top_tokens(*job.model, job.data, x, store.file());
      store.file().set_attribute(g, "compute_seconds", totals.experiment_seconds[e]);
      const auto mean = store.file().read_floats(g + "/mean");
      const SweepBaselines base = read_baselines(store, g);
      const double reference = no_effect_value(x, base.clean_metric, base.corrupted_metric);
      // What every ranking of this experiment measures from, for analysis tools.
      store.file().set_attribute(g, "no_effect", reference);
      // Only an allow_nonfinite run can have any; the count says how far to trust the means.
      const NonfiniteCount bad = count_nonfinite(job.data, job.grids[e], store.file().read_floats(g + "/effect"), base);
      store.file().set_int_attribute(g, "nonfinite_cells", bad.cells);
      store.file().set_int_attribute(g, "nonfinite_baselines", bad.baselines);
      if (bad.cells || bad.baselines)
        summary.push_back([&x, bad] {
          std::printf("\n%s: %lld (pair, cell) values are NaN or inf, %lld pairs have a NaN or inf "
                      "baseline (kept by allow_nonfinite; means skip NaN)\n",
                      x.name.c_str(), static_cast<long long>(bad.cells), static_cast<long long>(bad.baselines));
        });
      if (x.kind == "edges") {  // which cells are edges, for analysis tools
        const CircuitGraph graph(job.model->config());
        std::vector<int32_t> mask;
        for (int s = 0; s < graph.n_senders(); ++s)
          for (int r = 0; r < graph.n_receivers(); ++r) mask.push_back(graph.has_edge(s, r));
        if (!store.file().exists(g + "/edge_mask"))
          store.file().write_ints(g + "/edge_mask", mask.data(), {graph.n_senders(), graph.n_receivers()});
      }
      if (x.kind == "attribution" && x.verify_top > 0) {
        const std::string line = verify(job, e, store, mean, reference);
        summary.push_back([line] { std::fputs(line.c_str(), stdout); });
      }
      summary.push_back([&job, &o, &x, e, mean, base, reference] {
        if (x.kind != "self_repair") return print_top(x, job.layouts[e].axes, mean, base, reference, o.top);
        const std::vector<GridAxis> parts(job.layouts[e].axes.begin(), job.layouts[e].axes.end() - 1);
        print_self_repair_top(x, mean, [&](int64_t c) { return cell_label(parts, c); }, o.top);
      });
    }
    store.close();
    release_reserve(c.output);
  } catch (const IoError& err) {
    throw IoError(std::string(err.what()) +
                  "; every work item is done: free space, then continue with --resume to write "
                  "the means");
  }
}

// Rank 0, after the circuits: the summary finish_file gathered, each circuit's line, the total.
void print_summary(const Job& job, const RunOptions& o, double wall, double write_max, int64_t items_run,
                   const std::vector<std::function<void()>>& summary, const CircuitStep& circuits) {
  const RunConfig& c = job.cfg;
  if (!o.quiet) {
    for (const auto& print : summary) print();
    for (const std::string& line : circuits.lines) std::printf("\n%s\n", line.c_str());
    std::printf("\nwrote %s (%lld work items run in %.1f s; HDF5 writes %.2f s on the busiest rank, %.1f%%)\n",
                c.output.string().c_str(), static_cast<long long>(items_run), wall, write_max,
                100.0 * write_max / std::max(wall, 1e-9));
    std::fflush(stdout);
  }
}

int run_job(const RunOptions& o) {
  MpiSession session(nullptr, nullptr);
  const Communicator world;
  JobLog log(world.rank(), world.size(),
             o.quiet ? LogLevel::Error : parse_log_level(o.log_level));
  const auto t0 = std::chrono::steady_clock::now();
  JobStop stop(world);
  catch_interrupts();
  const int node_threads = default_threads(world);
  try {
    Job job;
    job.node_threads = node_threads;
    together(stop, false, [&] {
      fault_point("set_up", world.rank());
      set_up(job, o);
    });
    if (const std::string note = device_fallback_note(o.device); !note.empty() && world.rank() == 0)
      std::fprintf(stderr, "causeway: %s\n", note.c_str());
    if (o.dry_run) {
      if (world.rank() == 0) print_dry_run(dry_run_of(job, o, world.size()), stdout);
      return 0;
    }
    together(stop, false, [&] { place_ranks(job, world, o); });
    std::vector<uint8_t> done;
    std::unique_ptr<OutputLock> lock;  // rank 0 holds the output until the job ends
    together(stop, true, [&] {
      fault_point("prepare_file", world.rank());
      lock = std::make_unique<OutputLock>(job.cfg.output);
      if (!lock->warning().empty()) std::fprintf(stderr, "causeway: warning: %s\n", lock->warning().c_str());
      done = prepare_file(job, o, log);
      fault_sleep_after_layout();
    });
    world.broadcast(done);
    auto counted = [](size_t n, const std::string& noun) {
      return std::to_string(n) + " " + noun + (n == 1 ? "" : "s");
    };
    log.info("causeway run: " + counted(job.data.pairs.size(), "pair") + ", " +
             counted(static_cast<size_t>(job.n_experiments()), "experiment") + ", " +
             counted(job.plan.size(), "work item") + ", " + job.topo.describe() + ", " + schedule_name(job.schedule) +
             " schedule, model " + job.cfg.model.string() + " (weights " +
             weights_dtype_text(stored_dtype(job.cfg.model), job.cfg.dtype) +
             (job.cfg.compute == cpu::SixteenBitCompute::BF16 ? ", " + compute_text(job.cfg.compute)
                                                              : "") +
             ")");

    WorkStats mine = do_work(job, done, world, stop, log);
    WorkStats totals = mine;
    for (double& s : totals.experiment_seconds) s = world.sum(s);
    const int64_t items_run = world.sum(mine.items);
    const double write_max = world.max(mine.write_seconds);
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // The circuit step may run for hours (ACDC): every rank checks for a signal before every
    // round of batches, and the ranks stop together (write_circuits).
    CircuitStep circuits;
    const auto circuit_check = [&] {
      fault_sleep_per_circuit_batch();
      const int sig = interrupt_signal();
      if (sig || stop.stop_raised()) throw Interrupted{sig};
    };
    std::vector<std::function<void()>> summary;
    try {
      together(
          stop, true,
          [&] {
            fault_point("finish_file", world.rank());
            finish_file(job, o, totals, wall, summary);
          },
          interrupt_signal);
      // Circuits last (they may read the experiments' means), split over every rank.
      write_circuits(*job.model, job.data, job.cfg, job.cfg.output, !o.quiet, circuit_check, circuits,
                     stop, world);
      together(stop, true, [&] { print_summary(job, o, wall, write_max, items_run, summary, circuits); });
    } catch (JobFailure& f) {
      // Rank 0 prints it; it alone knows how far the circuits got.
      if (f.outcome.interrupted())
        f.outcome.message = "interrupted by " + signal_name(f.outcome.signal) + " during the circuit step" +
                            (circuits.current.empty() ? "" : " (circuit " + circuits.current + ")") +
                            "; every work item is done and " + std::to_string(circuits.complete) + " of " +
                            std::to_string(job.cfg.circuits.size()) +
                            " circuits are in the file, continue with --resume";
      throw;
    }
  } catch (const JobFailure& f) {
    const JobOutcome& r = f.outcome;
    if (world.rank() == 0) {
      if (r.interrupted()) std::fprintf(stderr, "causeway: %s\n", r.message.c_str());
      else if (r.rank == 0 || world.size() == 1) std::fprintf(stderr, "causeway: error: %s\n", r.message.c_str());
      else std::fprintf(stderr, "causeway: error (rank %d): %s\n", r.rank, r.message.c_str());
    }
    // The shell's convention for a process ended by a signal.
    return r.interrupted() ? 128 + r.signal : r.code;
  } catch (...) {
    // Outside the agreed steps only this rank knows of the failure: it ends the whole job.
    const JobOutcome r = outcome_of_current_exception(world.rank());
    if (world.size() > 1) std::fprintf(stderr, "causeway: error (rank %d): %s\n", r.rank, r.message.c_str());
    else std::fprintf(stderr, "causeway: error: %s\n", r.message.c_str());
    std::fflush(stderr);
    if (world.size() > 1) stop.abort(r.code);
    return r.code;
  }
  return 0;
}

}  // namespace

Command add_run_command(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* cmd = app.add_subcommand(
      "run",
      "Run the experiments of a TOML config and write one HDF5 result file. Each [[experiment]] "
      "is one kind: activation (patch each component from the other run), attribution "
      "(attribution patching, AtP/AtP*: a gradient estimate of every component at once), "
      "ablation (zero, mean or resample), noise (causal tracing), edges (every "
      "sender->receiver edge: EAP, EAP-IG, edge patching) or path_patching (which heads reach "
      "given receivers). Each [[circuit]] then finds a circuit of edges (ACDC, or the top "
      "edges of an edge experiment) and stores its faithfulness. Runs as an MPI job when "
      "started with mpirun/srun: ranks split the work items and write into the same file; "
      "--resume continues a killed job.");
  cmd->add_option("config", o->config, "Experiment config (see configs/ for ready ones)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->footer(
      "Config reference: README.md, section \"Experiment configs\" (every key of [model], "
      "[data], [output], [parallel] and [[experiment]]); edges and [[circuit]]: section "
      "\"Edges and circuits\"; pair files: section \"Prompt pairs (JSONL)\". Ready configs: "
      "configs/*.toml.");
  cmd->add_option("--out", o->out, "Result file; overrides [output] path of the config");
  cmd->add_flag("--overwrite", o->overwrite, "Replace the result file if it exists");
  cmd->add_flag("--resume", o->resume,
                "Continue an interrupted run in its result file: work items marked done are "
                "skipped; refused if the config, the pairs, the weights or pairs_per_item differ "
                "from the file's. Without a result file yet, starts a new run (a requeued job "
                "needs no special case)");
  cmd->add_option("--schedule", o->schedule,
                  "How ranks share work items: static (fixed contiguous shares; the default, "
                  "or [parallel] schedule) or dynamic (next item from a shared counter)");
  cmd->add_flag("--quiet,-q", o->quiet, "Only errors: no progress, no summary");
  cmd->add_option("--log-level", o->log_level,
                  "error, warn, info (progress and summary) or debug (also every work item, "
                  "from every rank)")
      ->capture_default_str();
  cmd->add_option("--dtype", o->dtype,
                  "How weight matrices are held: f32, bf16 or f16 (overrides [model] dtype; "
                  "default f32, which widens a 16-bit checkpoint to twice its size)");
  cmd->add_option("--compute", o->compute,
                  "How bf16 weights are multiplied: f32 (default: widened, equal to fp32 on the "
                  "rounded weights) or bf16 (the CPU's bf16 dot products where it has them; "
                  "activations rounded to bf16 too); overrides [model] compute");
  cmd->add_option("--threads", o->threads,
                  "CPU threads per rank; overrides [model] threads (0 = all cores)")
      ->check(non_negative_integer());
  cmd->add_option("--device", o->device,
                  "cpu, or cuda: the CUDA backend where the build has it and a GPU is found; "
                  "for now the model runs on the CPU either way, and cuda says why in one line")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  cmd->add_flag("--allow-nonfinite", o->allow_nonfinite,
                "Keep going when a baseline or metric is NaN or inf (by default the job stops, "
                "naming the pair); the file and the summary count such values. Same as [output] "
                "allow_nonfinite = true");
  cmd->add_flag("--dry-run", o->dry_run,
                "Print what the job would cost and exit: grid sizes, work items per replica, "
                "memory per rank (weight shard, workspace, caches) and FLOPs, from config.json, "
                "the config and the pairs (of the weights only the safetensors headers: shapes "
                "and stored dtype; nothing is written)");
  cmd->add_option("--ranks", o->dry_ranks,
                  "With --dry-run: size a job of this many ranks (default: this launch's; "
                  "without mpirun, one replica of --tp ranks)")
      ->check(positive_integer());
  cmd->add_option("--tp", o->tp,
                  "Tensor-parallel ranks per model replica (overrides [parallel] tp): ranks = "
                  "replicas x tp, each replica's model sharded over tp consecutive ranks; with "
                  "--dry-run, the layout to size")
      ->check(positive_integer());
  cmd->add_flag("--tp-within-node", o->tp_within_node,
                "Refuse to start when a tensor-parallel group's ranks are on more than one node "
                "(its allreduces would cross the network)");
  cmd->add_option("--top", o->top, "Components listed per experiment in the summary")
      ->capture_default_str()
      ->check(non_negative_integer());
  return [o]() { return run_job(*o); };
}

}  // namespace causeway::cli
