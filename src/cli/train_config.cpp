#include "cli/train_config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "cli/toml_table.h"
#include "core/error.h"
#include "data/ioi.h"

namespace causeway {

namespace {

constexpr int64_t kMaxInt = 1 << 30;

}  // namespace

TrainConfig TrainConfig::load(const std::filesystem::path& path) {
  return parse(read_config_text(path), path);
}

TrainConfig TrainConfig::parse(const std::string& text, const std::filesystem::path& path) {
  const std::string file = path.string();
  const toml::table root = parse_toml(text, file);
  TrainConfig c;
  c.path = path;
  c.text = text;

  Table m(table_of(root, "model", file, true), file, "model");
  ModelConfig& mc = c.model;
  mc.model_type = "gpt2";
  mc.n_layer = static_cast<int>(m.required_integer("n_layer", 1, 64));
  mc.n_embd = static_cast<int>(m.required_integer("n_embd", 1, 1 << 16));
  mc.n_head = static_cast<int>(m.required_integer("n_head", 1, 1024));
  if (mc.n_embd % mc.n_head != 0)
    m.fail("n_head", std::to_string(mc.n_head) + " does not divide n_embd = " +
                         std::to_string(mc.n_embd));
  mc.n_positions = static_cast<int>(m.integer("n_positions", 0, 1, 1 << 16));
  mc.n_inner = static_cast<int>(m.integer("n_inner", 4 * mc.n_embd, 1, kMaxInt));
  mc.activation_function = m.choice("activation_function", "gelu_new", {"gelu_new", "gelu"});
  mc.layer_norm_epsilon = static_cast<float>(m.number("layer_norm_epsilon", 1e-5, 0.0, 1.0));
  m.reject_unknown();

  Table t(table_of(root, "task", file, true), file, "task");
  c.task = t.choice("kind", "", {"induction", "ioi"});
  if (c.task.empty()) t.fail("kind", "is required (induction or ioi)");
  c.train.data_seed = static_cast<uint64_t>(t.integer("seed", 0, 0, INT64_MAX));
  c.eval_sequences = static_cast<int>(t.integer("eval_sequences", 1000, 1, kMaxInt));
  if (c.task == "induction") {
    train::InductionOptions& o = c.induction;
    o.symbols = static_cast<int>(t.integer("symbols", o.symbols, 2,
                                           static_cast<int64_t>(train::kSymbolAlphabet.size())));
    o.seq_len = static_cast<int>(t.integer("seq_len", o.seq_len, 5, 1 << 16));
    o.min_repeat = static_cast<int>(t.integer("min_repeat", o.min_repeat, 2, 1 << 15));
    o.max_repeat = static_cast<int>(t.integer("max_repeat", o.max_repeat, 2, 1 << 15));
    o.segments = static_cast<int>(t.integer("segments", o.segments, 1, 1 << 15));
    if (const toml::node* v = t.raw("vary_length")) {
      auto b = v->value_exact<bool>();
      if (!b) t.fail("vary_length", "must be true or false");
      o.vary_length = *b;
    }
    if (o.max_repeat < o.min_repeat)
      t.fail("max_repeat", std::to_string(o.max_repeat) + " is below min_repeat = " +
                               std::to_string(o.min_repeat));
    if (o.symbols < o.seq_len - 1 - o.min_repeat)
      t.fail("symbols", std::to_string(o.symbols) + " are too few: every token but the repeated "
                            "segment's is distinct, so seq_len - 1 - min_repeat = " +
                            std::to_string(o.seq_len - 1 - o.min_repeat) + " are needed");
    if (2 * o.max_repeat > o.seq_len - 1)
      t.fail("max_repeat", "two copies of " + std::to_string(o.max_repeat) +
                               " tokens and the BOS do not fit in seq_len = " +
                               std::to_string(o.seq_len));
  } else {
    // names = N (the generator's first N names) or names = ["Mary", "John", ...]
    const toml::node* names = t.raw("names");
    const int64_t all = static_cast<int64_t>(ioi_names().size());
    if (!names || names->is_integer()) {
      const int64_t n = t.integer("names", 40, 3, all);
      for (int64_t i = 0; i < n; ++i) c.ioi.names.emplace_back(ioi_names()[i]);
    } else if (const toml::array* a = names->as_array()) {
      std::set<std::string> seen;
      for (const toml::node& e : *a) {
        auto v = e.value_exact<std::string>();
        if (!v) t.fail("names", "must be an integer or an array of name strings");
        if (std::find(ioi_names().begin(), ioi_names().end(), *v) == ioi_names().end())
          t.fail("names", "'" + *v + "' is not one of the IOI generator's built-in names "
                                    "(src/data/ioi.cpp)");
        if (!seen.insert(*v).second) t.fail("names", "'" + *v + "' is listed twice");
        c.ioi.names.push_back(*v);
      }
      if (c.ioi.names.size() < 3) t.fail("names", "at least 3 names are needed");
    } else {
      t.fail("names", "must be an integer or an array of name strings");
    }
  }
  t.reject_unknown();

  Table r(table_of(root, "train", file, true), file, "train");
  train::TrainOptions& o = c.train;
  o.steps = static_cast<int>(r.required_integer("steps", 1, kMaxInt));
  o.batch = static_cast<int>(r.integer("batch", 32, 1, 1 << 20));
  o.schedule.peak = r.number("lr", 1e-3, 0.0, 10.0);
  o.schedule.kind = r.choice("schedule", "cosine", {"cosine", "constant"}) == "cosine"
                        ? train::LrSchedule::Kind::Cosine
                        : train::LrSchedule::Kind::Constant;
  o.schedule.warmup = static_cast<int>(r.integer("warmup", 0, 0, kMaxInt));
  o.schedule.min_ratio = r.number("min_lr_ratio", 0.1, 0.0, 1.0);
  o.adamw.weight_decay = r.number("weight_decay", 0.01, 0.0, 1e3);
  o.decay_all = r.choice("decay", "matrices", {"matrices", "all"}) == "all";
  o.adamw.beta1 = r.number("beta1", 0.9, 0.0, 0.999999);
  o.adamw.beta2 = r.number("beta2", 0.999, 0.0, 0.999999);
  o.adamw.eps = r.number("eps", 1e-8, 0.0, 1.0);
  o.grad_clip = r.number("grad_clip", 1.0, 0.0, 1e9);
  o.init_seed = static_cast<uint64_t>(r.integer("seed", 0, 0, INT64_MAX));
  o.init_std = r.number("init_std", 0.02, 0.0, 10.0);
  o.log_every = static_cast<int>(r.integer("log_every", 100, 1, kMaxInt));
  if (o.schedule.warmup > o.steps)
    r.fail("warmup", std::to_string(o.schedule.warmup) + " is more than steps = " +
                         std::to_string(o.steps));
  r.reject_unknown();

  Table out(table_of(root, "output", file, false), file, "output");
  if (const toml::node* p = out.raw("path")) {
    auto v = p->value_exact<std::string>();
    if (!v || v->empty()) out.fail("path", "must be a non-empty string");
    const std::filesystem::path q(*v);
    c.output = q.is_absolute() ? q : path.parent_path() / q;
  }
  out.reject_unknown();

  for (const auto& [k, v] : root)
    if (k != "model" && k != "task" && k != "train" && k != "output")
      throw InputError(file, std::string(k.str()), "unknown table");
  return c;
}

}  // namespace causeway
