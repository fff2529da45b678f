#include "cli/run_config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "cli/compute_choice.h"
#include "cli/readout_experiments.h"
#include "cli/toml_table.h"
#include "core/error.h"
#include "model/model_weights.h"

namespace causeway {

namespace {

constexpr int64_t kIntMax = std::numeric_limits<int>::max();

// Names the file's own groups use beside experiments: a clash would mix their datasets.
bool reserved_name(const std::string& name) {
  return name == "activations" || name == "." || name == "..";
}

bool patches_patterns(SweepKind k) {
  return k == SweepKind::HeadPattern || k == SweepKind::HeadPatternDestSrc ||
         k == SweepKind::HeadEvery;
}

// `positions`: "each", "all" or (mlp_neuron only) one position number. Sweeps whose grid
// ignores the choice refuse the value that would be ignored rather than reinterpret it.
void parse_positions(Table& x, SweepSpec& spec) {
  const toml::node* pos = x.raw("positions");
  if (!pos) return;
  const bool neuron = spec.kind == SweepKind::MlpNeuron;
  if (auto s = pos->value_exact<std::string>()) {
    if (*s != "each" && *s != "all" && *s != "named")
      x.fail("positions", "'" + *s + "' is not one of: each, all, named, or a position number");
    // named: one position axis entry per name the pairs carry (IO, S2, ...), aligned per pair.
    spec.by_pos = *s != "all";
    spec.named = *s == "named";
    if (spec.named && neuron)
      x.fail("positions", "mlp_neuron has no position axis to name; give a position number or \"all\"");
    if (spec.by_pos && neuron)
      x.fail("positions", "mlp_neuron patches one position or all of them: give a position "
                          "number or \"all\", not \"each\"");
    if (!spec.by_pos && (spec.kind == SweepKind::BlockEvery || spec.kind == SweepKind::HeadPatternDestSrc))
      x.fail("positions", spec.name() + " always has a position axis; use \"each\"");
  } else if (auto p = pos->value_exact<int64_t>()) {
    if (!neuron)
      x.fail("positions", "a position number is only for sweep = \"mlp_neuron\"; use \"each\" or \"all\"");
    if (*p < 0 || *p > kIntMax)
      x.fail("positions", "position " + std::to_string(*p) + " is outside the prompt (positions count from 0)");
    spec.by_pos = true;
    spec.position = static_cast<int>(*p);
  } else {
    x.fail("positions", "must be \"each\", \"all\" or a position number");
  }
}

// kind = "edges" (a [sender, receiver] grid) or "path_patching" (a [layer, head] grid of
// sender heads into `receivers`); the metric is the logit difference.
ExperimentConfig parse_edge_experiment(ExperimentConfig e, Table& x, const std::string& file,
                                       int index) {
  const std::string where = "experiment[" + std::to_string(index) + "].";
  EdgeSweepRequest& q = e.edges;
  q.heads_grid = e.kind == "path_patching";
  if (x.raw("sweep")) x.fail("sweep", "kind = \"" + e.kind + "\" has its own grid; remove sweep");
  q.method = q.heads_grid ? EdgeSweepMethod::PathPatching
                          : parse_edge_method(x.require_string("method"), file, where + "method");
  if (q.heads_grid && x.raw("method"))
    x.fail("method", "kind = \"path_patching\" is one method; remove method");
  q.direction = choose<Direction>(x, "direction", "noising",
                                  {{"denoising", Direction::Denoising}, {"noising", Direction::Noising}});
  e.request.direction = q.direction;
  e.request.metric = parse_metric(x.get_or<std::string>("metric", "logit_diff"), file, where + "metric");
  if (e.request.metric != MetricKind::LogitDiff)
    x.fail("metric", "edge methods measure the logit difference; remove metric or use \"logit_diff\"");
  const bool ig = q.method == EdgeSweepMethod::EapIgInputs || q.method == EdgeSweepMethod::EapIgActivations;
  if (x.raw("steps") && !ig) x.fail("steps", "only EAP-IG (eap_ig_inputs, eap_ig_activations) has steps");
  q.steps = static_cast<int>(x.integer("steps", 5, 1, 1000));
  const bool paths = q.method == EdgeSweepMethod::PathPatching;
  if (x.raw("freeze") && !paths) x.fail("freeze", "only path patching freezes components");
  q.freeze = choose<PathFreeze>(x, "freeze", "heads", {{"heads", PathFreeze::Heads}, {"all", PathFreeze::All}});
  q.max_rows = static_cast<int>(x.integer("batch_rows", 64, 1, kIntMax));
  if (q.heads_grid) {
    const toml::node* n = x.raw("receivers");
    const toml::array* a = n ? n->as_array() : nullptr;
    if (!a || a->empty())
      x.fail("receivers", "path patching needs receivers = [\"Resid End\", \"A1.0.Q\", \"MLP 1\", ...]");
    for (const toml::node& r : *a) {
      auto name = r.value_exact<std::string>();
      if (!name) x.fail("receivers", "must be an array of receiver names");
      e.receivers.push_back(*name);
    }
  } else if (x.raw("receivers")) {
    x.fail("receivers", "kind = \"edges\" scores every edge; receivers are for kind = \"path_patching\"");
  }
  x.reject_unknown();
  return e;
}

// The table's `name`: a group name in the result file.
std::string group_name(Table& x) {
  const std::string name = x.require_string("name");
  if (name.empty() || name.find('/') != std::string::npos)
    x.fail("name", "must be non-empty and contain no '/'");
  for (unsigned char ch : name)
    if (ch < 0x20 || ch == 0x7f) x.fail("name", "must not contain control characters");
  if (reserved_name(name))
    x.fail("name", "'" + name + "' is reserved for the result file's own groups; choose another name");
  return name;
}

CircuitConfig parse_circuit(const toml::table& t, const std::string& file, int index) {
  CircuitConfig c;
  Table x(&t, file, "circuit[" + std::to_string(index) + "]");
  c.name = group_name(x);
  c.method = choose<std::string>(x, "method", "acdc", {{"acdc", "acdc"}, {"top", "top"}});
  if (c.method == "top") {
    c.experiment = x.require_string("experiment");
    c.size = x.integer("size", 0, 1, std::numeric_limits<int64_t>::max());
    if (!x.raw("size")) x.fail("size", "method = \"top\" keeps the size best edges; give size");
  } else {
    c.acdc.threshold = x.get_or<double>("threshold", 0.01);
    if (!(std::isfinite(c.acdc.threshold) && c.acdc.threshold >= 0))
      x.fail("threshold", "must be a finite number >= 0");
    c.acdc.metric = choose<AcdcMetric>(x, "metric", "kl", {{"kl", AcdcMetric::Kl}, {"logit_diff", AcdcMetric::LogitDiff}});
    c.acdc.max_rows = static_cast<int>(x.integer("batch_rows", 64, 1, kIntMax));
  }
  for (const char* key : {"experiment", "size"})
    if (c.method != "top" && x.raw(key)) x.fail(key, "only method = \"top\" reads a ranking");
  for (const char* key : {"threshold", "metric", "batch_rows"})
    if (c.method != "acdc" && x.raw(key)) x.fail(key, "only method = \"acdc\" has this key");
  c.ablation = choose<EdgeAblation>(x, "ablation", "corrupted",
                                    {{"corrupted", EdgeAblation::Corrupted}, {"mean", EdgeAblation::Mean}});
  c.pairs = static_cast<int>(x.integer("pairs", 0, 1, kIntMax));
  x.reject_unknown();
  return c;
}

ExperimentConfig parse_experiment(const toml::table& t, const std::string& file, int index) {
  ExperimentConfig e;
  Table x(&t, file, "experiment[" + std::to_string(index) + "]");
  e.name = group_name(x);
  SweepRequest& r = e.request;
  e.kind = choose<std::string>(x, "kind", "activation",
                               {{"activation", "activation"}, {"attribution", "attribution"},
                                {"ablation", "ablation"}, {"noise", "noise"}, {"edges", "edges"},
                                {"path_patching", "path_patching"}, {"direct_logit", "direct_logit"},
                                {"logit_lens", "logit_lens"}, {"self_repair", "self_repair"}});
  if (e.is_edge_kind()) return parse_edge_experiment(std::move(e), x, file, index);
  if (is_readout_kind(e.kind)) return parse_readout_experiment(std::move(e), x, file, index, parse_positions);
  // self_repair reads the keys of an ablation (with `ablation`) or of activation patching.
  const std::string as = e.kind != "self_repair" ? e.kind : x.raw("ablation") ? "ablation" : "activation";
  r.spec.kind = SweepSpec::parse_kind(x.require_string("sweep"), file,
                                      "experiment[" + std::to_string(index) + "].sweep");
  parse_positions(x, r.spec);
  r.direction = choose<Direction>(x, "direction", "denoising",
                                  {{"denoising", Direction::Denoising}, {"noising", Direction::Noising}});
  r.metric = parse_metric(x.get_or<std::string>("metric", "logit_diff"), file,
                          "experiment[" + std::to_string(index) + "].metric");
  r.seed = static_cast<uint64_t>(x.integer("seed", 0, 0, std::numeric_limits<int64_t>::max()));
  r.window = static_cast<int>(x.integer("window", 1, 1, kIntMax));
  r.max_rows = static_cast<int>(x.integer("batch_rows", 128, 1, kIntMax));
  r.pairs_per_block = static_cast<int>(x.integer("pairs_per_block", 32, 1, kIntMax));
  if (as == "activation") {
    r.source = PatchSource::Activation;
  } else if (as == "attribution") {
    r.source = PatchSource::Activation;
    if (r.window != 1) x.fail("window", "attribution patches one layer at a time; remove window");
    for (const auto& [key, flag] : {std::pair{"qk_fix", &e.attribution.qk_fix},
                                    std::pair{"grad_drop", &e.attribution.grad_drop}})
      if (const toml::node* n = x.raw(key)) {
        if (!n->is_boolean()) x.fail(key, "must be true or false");
        *flag = n->as_boolean()->get();
      }
    e.verify_top = static_cast<int>(x.integer("verify_top", 0, 0, kIntMax));
    if (r.metric != MetricKind::LogitDiff && r.metric != MetricKind::Normalized)
      x.fail("metric", "attribution supports logit_diff and normalized");
  } else if (as == "ablation") {
    r.source = choose<PatchSource>(x, "ablation", "mean",
                                   {{"zero", PatchSource::Zero}, {"mean", PatchSource::Mean},
                                    {"resample", PatchSource::Resample}});
    e.ablation = x.get_or<std::string>("ablation", "mean");
    if (x.raw("mean_over") && r.source != PatchSource::Mean)
      x.fail("mean_over", "only applies to ablation = \"mean\"");
    r.mean_per_position = choose<bool>(x, "mean_over", "position", {{"position", true}, {"all", false}});
    if (!r.mean_per_position && patches_patterns(r.spec.kind))
      x.fail("mean_over", "\"all\" is not defined for attention patterns (" + r.spec.name() +
                              "); use \"position\"");
    if (x.raw("samples") && r.source != PatchSource::Resample)
      x.fail("samples", "only applies to ablation = \"resample\"");
    r.resample_samples = static_cast<int>(x.integer("samples", 4, 1, kIntMax));
  } else {
    r.source = PatchSource::Noise;
    r.noise.scale = x.get_or<double>("noise_scale", 3.0);
    if (!(std::isfinite(r.noise.scale) && r.noise.scale > 0)) {
      std::ostringstream v;
      v << r.noise.scale;
      x.fail("noise_scale", "must be a positive finite number, got " + v.str());
    }
    r.noise.samples = static_cast<int>(x.integer("noise_samples", 10, 1, kIntMax));
    r.noise.positions = x.int_list("noise_positions");
    std::set<int> seen;
    for (int p : r.noise.positions) {
      if (p < 0) x.fail("noise_positions", "position " + std::to_string(p) + " is outside the prompt (positions count from 0)");
      if (!seen.insert(p).second) x.fail("noise_positions", "position " + std::to_string(p) + " is listed twice");
    }
  }
  if (e.kind == "self_repair") check_self_repair(e, x);
  x.reject_unknown();
  return e;
}

}  // namespace

RunConfig RunConfig::load(const std::filesystem::path& path) {
  return parse(read_config_text(path), path);
}

RunConfig RunConfig::parse(const std::string& text, const std::filesystem::path& path) {
  const std::string file = path.string();
  const toml::table root = parse_toml(text, file);
  RunConfig c;
  c.path = path;
  c.text = text;
  const std::filesystem::path base = path.parent_path();
  auto resolve = [&](const std::string& p) {
    std::filesystem::path q(p);
    return q.is_absolute() ? q : (base / q).lexically_normal();
  };

  Table model(table_of(root, "model", file, true), file, "model");
  c.model = resolve(model.require_string("path"));
  c.threads = static_cast<int>(model.integer("threads", 0, 0, kIntMax));
  if (const toml::node* n = model.raw("prepend_bos")) {
    if (!n->is_boolean()) model.fail("prepend_bos", "must be true or false");
    c.prepend_bos = n->as_boolean()->get();
  }
  if (model.raw("dtype"))
    c.dtype = parse_weight_dtype(model.require_string("dtype"), file, "model.dtype");
  if (model.raw("compute"))
    c.compute = parse_compute(model.require_string("compute"), file, "model.compute");
  model.reject_unknown();

  Table data(table_of(root, "data", file, true), file, "data");
  if (auto f = data.get<std::string>("file")) c.data_file = resolve(*f);
  c.generator = data.get_or<std::string>("generator", "");
  if (c.data_file.empty() == c.generator.empty())
    data.fail("file", "give exactly one of data.file or data.generator");
  if (!c.generator.empty()) {
    if (c.generator != "ioi") data.fail("generator", "'" + c.generator + "' is unknown (known: ioi)");
    c.ioi.n = static_cast<int>(data.integer("n", 64, 1, kIntMax));
    c.ioi.seed = static_cast<uint64_t>(data.integer("seed", 0, 0, std::numeric_limits<int64_t>::max()));
    c.ioi.corruption = choose<IoiOptions::Corruption>(
        data, "corruption", "swap",
        {{"swap", IoiOptions::Corruption::SubjectSwap}, {"abc", IoiOptions::Corruption::ThirdName}});
    // false mixes templates of every length; per-position sweeps then need positions = "named".
    if (const toml::node* n = data.raw("same_length")) {
      if (!n->is_boolean()) data.fail("same_length", "must be true or false");
      c.ioi.same_length = n->as_boolean()->get();
    }
  }
  data.reject_unknown();

  Table out(table_of(root, "output", file, true), file, "output");
  c.output = resolve(out.require_string("path"));
  if (const toml::node* cache = out.raw("cache")) {
    const toml::array* a = cache->as_array();
    if (!a) out.fail("cache", "must be an array of hook names");
    for (const toml::node& h : *a) {
      auto name = h.value_exact<std::string>();
      if (!name) out.fail("cache", "must be an array of hook names");
      if (std::find(c.cache_hooks.begin(), c.cache_hooks.end(), *name) != c.cache_hooks.end())
        out.fail("cache", "'" + *name + "' is listed twice");
      c.cache_hooks.push_back(*name);
    }
  }
  if (const toml::node* allow = out.raw("allow_nonfinite")) {
    const auto v = allow->value_exact<bool>();
    if (!v) out.fail("allow_nonfinite", "must be true or false");
    c.allow_nonfinite = *v;
  }
  out.reject_unknown();

  if (const toml::table* par = table_of(root, "parallel", file, false)) {
    Table p(par, file, "parallel");
    c.tp = static_cast<int>(p.integer("tp", 1, 1, kIntMax));
    c.schedule = choose<std::string>(p, "schedule", "static", {{"static", "static"}, {"dynamic", "dynamic"}});
    c.pairs_per_item = static_cast<int>(p.integer("pairs_per_item", 32, 1, kIntMax));
    p.reject_unknown();
  }

  const toml::node* ex = root.get("experiment");
  const toml::array* arr = ex ? ex->as_array() : nullptr;
  if (ex && !arr) throw InputError(file, "[[experiment]]", "must be an array of tables ([[experiment]])");
  // ACDC needs no experiment: a config of [[circuit]] tables alone is a whole job.
  const toml::node* circuit_tables = root.get("circuit");
  const bool no_circuits = !circuit_tables || (circuit_tables->as_array() && circuit_tables->as_array()->empty());
  if ((!arr || arr->empty()) && no_circuits)
    throw InputError(file, "[[experiment]]", "at least one experiment or circuit table is required");
  std::set<std::string> names;
  for (size_t i = 0; arr && i < arr->size(); ++i) {
    const toml::table* t = (*arr)[i].as_table();
    if (!t) throw InputError(file, "experiment[" + std::to_string(i) + "]", "must be a table");
    c.experiments.push_back(parse_experiment(*t, file, static_cast<int>(i)));
    if (!names.insert(c.experiments.back().name).second)
      throw InputError(file, "experiment[" + std::to_string(i) + "].name",
                       "'" + c.experiments.back().name + "' is used twice");
  }
  if (const toml::node* cn = root.get("circuit")) {
    const toml::array* ca = cn->as_array();
    if (!ca) throw InputError(file, "[[circuit]]", "must be an array of tables ([[circuit]])");
    std::set<std::string> circuit_names;
    for (size_t i = 0; i < ca->size(); ++i) {
      const toml::table* t = (*ca)[i].as_table();
      if (!t) throw InputError(file, "circuit[" + std::to_string(i) + "]", "must be a table");
      c.circuits.push_back(parse_circuit(*t, file, static_cast<int>(i)));
      const CircuitConfig& cc = c.circuits.back();
      if (!circuit_names.insert(cc.name).second)
        throw InputError(file, "circuit[" + std::to_string(i) + "].name", "'" + cc.name + "' is used twice");
      if (cc.method != "top") continue;
      const auto ranked = std::find_if(c.experiments.begin(), c.experiments.end(),
                                       [&](const ExperimentConfig& e) { return e.name == cc.experiment; });
      if (ranked == c.experiments.end() || ranked->kind != "edges")
        throw InputError(file, "circuit[" + std::to_string(i) + "].experiment",
                         "'" + cc.experiment + "' is not an experiment of kind = \"edges\" in this file");
    }
  }
  for (const auto& [k, v] : root)
    if (k != "model" && k != "data" && k != "output" && k != "experiment" && k != "parallel" &&
        k != "circuit")
      throw InputError(file, std::string(k.str()), "unknown table");
  return c;
}

namespace {

void flatten(const toml::node& n, const std::string& prefix, std::map<std::string, std::string>& out) {
  if (const toml::table* t = n.as_table()) {
    for (const auto& [k, v] : *t) flatten(v, prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str()), out);
  } else if (const toml::array* a = n.as_array(); a && !a->empty() && a->front().is_table()) {
    for (size_t i = 0; i < a->size(); ++i) flatten((*a)[i], prefix + "[" + std::to_string(i) + "]", out);
  } else {
    std::ostringstream v;
    n.visit([&](const auto& x) { v << x; });
    out[prefix] = v.str();
  }
}

std::map<std::string, std::string> flat_config(const std::string& text, const std::string& which) {
  std::map<std::string, std::string> out;
  try {
    flatten(toml::parse(text, which), "", out);
  } catch (const toml::parse_error& e) {
    throw InputError(which, "config", std::string(e.description()));
  }
  for (auto it = out.begin(); it != out.end();) {
    const std::string& k = it->first;
    const bool ignored = k.starts_with("parallel.") || k == "model.threads" || k == "output.path" ||
                         k == "output.allow_nonfinite";
    it = ignored ? out.erase(it) : std::next(it);
  }
  return out;
}

}  // namespace

std::vector<std::string> config_differences(const std::string& stored, const std::string& now) {
  const auto a = flat_config(stored, "the config stored in the result file");
  const auto b = flat_config(now, "the config");
  std::vector<std::string> diff;
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    if (it == b.end()) diff.push_back(k + ": " + v + " in the file, absent now");
    else if (it->second != v) diff.push_back(k + ": " + v + " in the file, " + it->second + " now");
  }
  for (const auto& [k, v] : b)
    if (!a.count(k)) diff.push_back(k + ": absent in the file, " + v + " now");
  return diff;
}

}  // namespace causeway
