#include "io/result_store.h"

#include <hdf5_hl.h>

#include <cmath>

#include "core/error.h"
#include "model/tokenizer.h"

#ifndef CAUSEWAY_GIT_HASH
#define CAUSEWAY_GIT_HASH "unknown"
#endif

namespace causeway {

namespace {

H5File open_new(const std::filesystem::path& path, bool overwrite) {
  if (std::filesystem::exists(path) && !overwrite)
    throw InputError(path.string(), "",
                     "output file exists; pass --overwrite to replace it (or --resume to "
                     "continue it, once resume lands)");
  return H5File(path, H5Mode::Create);
}

// Writes an index dataset for an axis and makes it a dimension scale named after the axis.
void make_scale(H5File& f, const std::string& path, const std::string& axis_name,
                const std::vector<int32_t>& values, const std::vector<std::string>& labels) {
  if (labels.empty()) f.write_ints(path, values.data(), {static_cast<int64_t>(values.size())});
  else f.write_strings(path, labels);
  H5Handle ds(H5Dopen2(f.id(), path.c_str(), H5P_DEFAULT));
  h5_check(ds.get(), "H5Dopen2", f.path(), path);
  h5_check(H5DSset_scale(ds.get(), axis_name.c_str()), "H5DSset_scale", f.path(), path);
}

void attach_scales(H5File& f, const std::string& dataset, const std::vector<std::string>& scales) {
  H5Handle ds(H5Dopen2(f.id(), dataset.c_str(), H5P_DEFAULT));
  h5_check(ds.get(), "H5Dopen2", f.path(), dataset);
  for (size_t d = 0; d < scales.size(); ++d) {
    H5Handle scale(H5Dopen2(f.id(), scales[d].c_str(), H5P_DEFAULT));
    h5_check(scale.get(), "H5Dopen2", f.path(), scales[d]);
    h5_check(H5DSattach_scale(ds.get(), scale.get(), static_cast<unsigned>(d)), "H5DSattach_scale",
             f.path(), dataset);
  }
}

std::vector<int32_t> iota(int n) {
  std::vector<int32_t> v(n);
  for (int i = 0; i < n; ++i) v[i] = i;
  return v;
}

}  // namespace

std::string causeway_git_hash() { return CAUSEWAY_GIT_HASH; }

ResultStore::ResultStore(const std::filesystem::path& path, bool overwrite)
    : file_(open_new(path, overwrite)) {}

void ResultStore::write_meta(const std::string& config_text, const std::string& model_dir,
                             const std::string& model_config_json) {
  file_.ensure_group("/meta");
  file_.set_attribute("/meta", "config", config_text);
  file_.set_attribute("/meta", "model", model_dir);
  file_.set_attribute("/meta", "model_config", model_config_json);
  file_.set_attribute("/meta", "causeway_version", CAUSEWAY_VERSION);
  file_.set_attribute("/meta", "git_hash", causeway_git_hash());
  file_.set_attribute("/", "schema", "causeway-results/1");
}

void ResultStore::write_data(const PairDataset& data, const Tokenizer* tok) {
  const int P = static_cast<int>(data.pairs.size());
  int T = 0;
  for (const auto& p : data.pairs) T = std::max(T, static_cast<int>(p.clean.size()));
  // Token ids padded with -1 past each prompt's end.
  std::vector<int32_t> clean(static_cast<size_t>(P) * T, -1), corrupted(clean.size(), -1),
      lengths(P), answer(P), wrong(P);
  std::vector<std::string> clean_text, corrupted_text, answer_text, wrong_text;
  for (int i = 0; i < P; ++i) {
    const PromptPair& p = data.pairs[i];
    std::copy(p.clean.begin(), p.clean.end(), clean.begin() + static_cast<int64_t>(i) * T);
    std::copy(p.corrupted.begin(), p.corrupted.end(), corrupted.begin() + static_cast<int64_t>(i) * T);
    lengths[i] = static_cast<int32_t>(p.clean.size());
    answer[i] = p.answers.front();
    wrong[i] = p.wrongs.front();
    if (tok) {
      clean_text.push_back(tok->decode(p.clean));
      corrupted_text.push_back(tok->decode(p.corrupted));
      answer_text.push_back(tok->token_text(p.answers.front()));
      wrong_text.push_back(tok->token_text(p.wrongs.front()));
    }
  }
  file_.write_ints("/data/clean_tokens", clean.data(), {P, T});
  file_.write_ints("/data/corrupted_tokens", corrupted.data(), {P, T});
  file_.write_ints("/data/lengths", lengths.data(), {P});
  file_.write_ints("/data/answer", answer.data(), {P});
  file_.write_ints("/data/wrong", wrong.data(), {P});
  file_.set_attribute("/data", "source", data.source);
  if (!tok) return;
  file_.write_strings("/data/clean_text", clean_text);
  file_.write_strings("/data/corrupted_text", corrupted_text);
  file_.write_strings("/data/answer_text", answer_text);
  file_.write_strings("/data/wrong_text", wrong_text);
  // Position labels for plots: the first pair's clean tokens.
  std::vector<std::string> labels;
  for (int32_t id : data.pairs.front().clean) labels.push_back(tok->token_text(id));
  file_.write_strings("/data/position_labels", labels);
}

void ResultStore::write_experiment(const ExperimentRecord& rec) {
  const SweepResult& r = *rec.result;
  const std::string g = "/experiments/" + rec.name;
  file_.ensure_group(g + "/axes");
  for (const auto& [k, v] : rec.attributes) file_.set_attribute(g, k, v);

  std::vector<int64_t> grid_shape;
  std::vector<std::string> grid_scales;
  for (const GridAxis& a : r.grid.axes) {
    grid_shape.push_back(a.size);
    const std::string path = g + "/axes/" + a.name;
    make_scale(file_, path, a.name, iota(a.size), a.labels);
    grid_scales.push_back(path);
  }
  make_scale(file_, g + "/axes/pair", "pair", iota(r.n_pairs), {});

  std::vector<int64_t> effect_shape{r.n_pairs};
  effect_shape.insert(effect_shape.end(), grid_shape.begin(), grid_shape.end());
  file_.write_floats(g + "/effect", r.effect.data(), effect_shape);
  file_.write_floats(g + "/mean", r.mean.data(), grid_shape);
  std::vector<std::string> effect_scales{g + "/axes/pair"};
  effect_scales.insert(effect_scales.end(), grid_scales.begin(), grid_scales.end());
  attach_scales(file_, g + "/effect", effect_scales);
  attach_scales(file_, g + "/mean", grid_scales);

  auto as_float = [](const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); };
  const auto& b = r.baselines;
  const std::vector<std::pair<std::string, const std::vector<double>*>> baselines = {
      {"clean_logit_diff", &b.clean_ld},
      {"corrupted_logit_diff", &b.corrupted_ld},
      {"clean_metric", &b.clean_metric},
      {"corrupted_metric", &b.corrupted_metric}};
  for (const auto& [name, values] : baselines) {
    const std::string path = g + "/baselines/" + name;
    file_.write_floats(path, as_float(*values).data(), {r.n_pairs});
    attach_scales(file_, path, {g + "/axes/pair"});
  }
}

}  // namespace causeway
