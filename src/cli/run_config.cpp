#include "cli/run_config.h"

#include <toml++/toml.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "cli/toml_table.h"
#include "core/error.h"

namespace causeway {

namespace {

ExperimentConfig parse_experiment(const toml::table& t, const std::string& file, int index) {
  ExperimentConfig e;
  Table x(&t, file, "experiment[" + std::to_string(index) + "]");
  e.name = x.require_string("name");
  if (e.name.empty() || e.name.find('/') != std::string::npos)
    x.fail("name", "must be non-empty and contain no '/'");
  SweepRequest& r = e.request;
  e.kind = choose<std::string>(x, "kind", "activation",
                               {{"activation", "activation"}, {"attribution", "attribution"},
                                {"ablation", "ablation"}, {"noise", "noise"}});
  r.spec.kind = SweepSpec::parse_kind(x.require_string("sweep"), file,
                                      "experiment[" + std::to_string(index) + "].sweep");
  if (const toml::node* pos = x.raw("positions")) {
    if (auto s = pos->value<std::string>()) {
      if (*s == "each") r.spec.by_pos = true;
      else if (*s == "all") r.spec.by_pos = false;
      // named: one position axis entry per name the pairs carry (IO, S2, ...), aligned per pair.
      else if (*s == "named") r.spec.by_pos = r.spec.named = true;
      else x.fail("positions", "must be \"each\", \"all\", \"named\" or a position number");
    } else if (auto p = pos->value<int64_t>()) {
      r.spec.by_pos = true;
      r.spec.position = static_cast<int>(*p);
    } else {
      x.fail("positions", "must be \"each\", \"all\" or a position number");
    }
  }
  r.direction = choose<Direction>(x, "direction", "denoising",
                                  {{"denoising", Direction::Denoising}, {"noising", Direction::Noising}});
  r.metric = parse_metric(x.get_or<std::string>("metric", "logit_diff"), file,
                          "experiment[" + std::to_string(index) + "].metric");
  r.seed = static_cast<uint64_t>(x.get_or<int64_t>("seed", 0));
  r.window = x.get_or<int>("window", 1);
  r.max_rows = x.get_or<int>("batch_rows", 128);
  r.pairs_per_block = x.get_or<int>("pairs_per_block", 32);
  if (r.max_rows < 1) x.fail("batch_rows", "must be at least 1");
  if (r.pairs_per_block < 1) x.fail("pairs_per_block", "must be at least 1");
  if (e.kind == "activation") {
    r.source = PatchSource::Activation;
  } else if (e.kind == "attribution") {
    r.source = PatchSource::Activation;
    for (const auto& [key, flag] : {std::pair{"qk_fix", &e.attribution.qk_fix},
                                    std::pair{"grad_drop", &e.attribution.grad_drop}})
      if (const toml::node* n = x.raw(key)) {
        if (!n->is_boolean()) x.fail(key, "must be true or false");
        *flag = n->as_boolean()->get();
      }
    e.verify_top = x.get_or<int>("verify_top", 0);
    if (e.verify_top < 0) x.fail("verify_top", "must be 0 or more");
    if (r.metric != MetricKind::LogitDiff && r.metric != MetricKind::Normalized)
      x.fail("metric", "attribution supports logit_diff and normalized");
  } else if (e.kind == "ablation") {
    r.source = choose<PatchSource>(x, "ablation", "mean",
                                   {{"zero", PatchSource::Zero}, {"mean", PatchSource::Mean},
                                    {"resample", PatchSource::Resample}});
    e.ablation = x.get_or<std::string>("ablation", "mean");
    r.mean_per_position = choose<bool>(x, "mean_over", "position", {{"position", true}, {"all", false}});
    r.resample_samples = x.get_or<int>("samples", 4);
  } else {
    r.source = PatchSource::Noise;
    r.noise.scale = x.get_or<double>("noise_scale", 3.0);
    r.noise.samples = x.get_or<int>("noise_samples", 10);
    r.noise.positions = x.int_list("noise_positions");
    if (r.noise.scale <= 0) x.fail("noise_scale", "must be positive");
  }
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
  c.threads = model.get_or<int>("threads", 0);
  model.reject_unknown();

  Table data(table_of(root, "data", file, true), file, "data");
  if (auto f = data.get<std::string>("file")) c.data_file = resolve(*f);
  c.generator = data.get_or<std::string>("generator", "");
  if (c.data_file.empty() == c.generator.empty())
    data.fail("file", "give exactly one of data.file or data.generator");
  if (!c.generator.empty()) {
    if (c.generator != "ioi") data.fail("generator", "'" + c.generator + "' is unknown (known: ioi)");
    c.ioi.n = data.get_or<int>("n", 64);
    c.ioi.seed = static_cast<uint64_t>(data.get_or<int64_t>("seed", 0));
    c.ioi.corruption = choose<IoiOptions::Corruption>(
        data, "corruption", "swap",
        {{"swap", IoiOptions::Corruption::SubjectSwap}, {"abc", IoiOptions::Corruption::ThirdName}});
    // false mixes templates of every length; per-position sweeps then need positions = "named".
    if (const toml::node* n = data.raw("same_length")) {
      if (!n->is_boolean()) data.fail("same_length", "must be true or false");
      c.ioi.same_length = n->as_boolean()->get();
    }
    if (c.ioi.n < 1) data.fail("n", "must be at least 1");
  }
  data.reject_unknown();

  Table out(table_of(root, "output", file, true), file, "output");
  c.output = resolve(out.require_string("path"));
  if (const toml::node* cache = out.raw("cache")) {
    const toml::array* a = cache->as_array();
    if (!a) out.fail("cache", "must be an array of hook names");
    for (const toml::node& h : *a) {
      auto name = h.value<std::string>();
      if (!name) out.fail("cache", "must be an array of hook names");
      c.cache_hooks.push_back(*name);
    }
  }
  out.reject_unknown();

  if (const toml::table* par = table_of(root, "parallel", file, false)) {
    Table p(par, file, "parallel");
    c.tp = p.get_or<int>("tp", 1);
    c.schedule = choose<std::string>(p, "schedule", "static", {{"static", "static"}, {"dynamic", "dynamic"}});
    c.pairs_per_item = p.get_or<int>("pairs_per_item", 32);
    if (c.tp < 1) p.fail("tp", "must be at least 1");
    if (c.pairs_per_item < 1) p.fail("pairs_per_item", "must be at least 1");
    p.reject_unknown();
  }

  const toml::node* ex = root.get("experiment");
  const toml::array* arr = ex ? ex->as_array() : nullptr;
  if (!arr || arr->empty())
    throw InputError(file, "[[experiment]]", "at least one experiment table is required");
  std::set<std::string> names;
  for (size_t i = 0; i < arr->size(); ++i) {
    const toml::table* t = (*arr)[i].as_table();
    if (!t) throw InputError(file, "experiment[" + std::to_string(i) + "]", "must be a table");
    c.experiments.push_back(parse_experiment(*t, file, static_cast<int>(i)));
    if (!names.insert(c.experiments.back().name).second)
      throw InputError(file, "experiment[" + std::to_string(i) + "].name",
                       "'" + c.experiments.back().name + "' is used twice");
  }
  for (const auto& [k, v] : root)
    if (k != "model" && k != "data" && k != "output" && k != "experiment" && k != "parallel")
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
    const bool ignored = k.starts_with("parallel.") || k == "model.threads" || k == "output.path";
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
