#include "io/result_store.h"

#include <fcntl.h>
#include <hdf5_hl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cmath>
#include <limits>

#include "core/error.h"
#include "data/position_labels.h"
#include "model/tokenizer.h"

#ifndef CAUSEWAY_GIT_HASH
#define CAUSEWAY_GIT_HASH "unknown"
#endif

namespace causeway {

namespace {

// Writes an index dataset for an axis and makes it a dimension scale named after the axis.
void make_scale(H5File& f, const std::string& path, const std::string& axis_name,
                const std::vector<int32_t>& values, const std::vector<std::string>& labels) {
  if (labels.empty()) f.write_ints(path, values.data(), {static_cast<int64_t>(values.size())});
  else f.write_strings(path, labels);
  H5Handle ds(H5Dopen2(f.id(), path.c_str(), H5P_DEFAULT));
  h5_check(ds.get(), "H5Dopen2", f.shown_path(), path);
  h5_check(H5DSset_scale(ds.get(), axis_name.c_str()), "H5DSset_scale", f.shown_path(), path);
  h5_check(ds.close(), "H5Dclose", f.shown_path(), path);
}

// Attaches one scale per dimension of `dataset` and labels each dimension with its axis name
// (h5py: dset.dims[i].label), so readers need neither the scales nor this code to name axes.
void attach_scales(H5File& f, const std::string& dataset, const std::vector<std::string>& scales,
                   const std::vector<std::string>& labels) {
  H5Handle ds(H5Dopen2(f.id(), dataset.c_str(), H5P_DEFAULT));
  h5_check(ds.get(), "H5Dopen2", f.shown_path(), dataset);
  for (size_t d = 0; d < scales.size(); ++d) {
    H5Handle scale(H5Dopen2(f.id(), scales[d].c_str(), H5P_DEFAULT));
    h5_check(scale.get(), "H5Dopen2", f.shown_path(), scales[d]);
    h5_check(H5DSattach_scale(ds.get(), scale.get(), static_cast<unsigned>(d)), "H5DSattach_scale",
             f.shown_path(), dataset);
    h5_check(scale.close(), "H5Dclose", f.shown_path(), scales[d]);
  }
  for (size_t d = 0; d < labels.size(); ++d)
    h5_check(H5DSset_label(ds.get(), static_cast<unsigned>(d), labels[d].c_str()), "H5DSset_label",
             f.shown_path(), dataset);
  h5_check(ds.close(), "H5Dclose", f.shown_path(), dataset);
}

// The pairs' named positions, when every pair names the same ones: /data/position_names [K]
// and /data/named_positions [pair, K], each pair's token index of each name.
void write_named_positions(H5File& f, const PairDataset& data) {
  if (data.pairs.empty() || data.pairs.front().positions.empty()) return;
  std::vector<std::string> names;
  try {
    names = data.position_names();
  } catch (const InputError&) {
    return;  // no common names: nothing to align by (a named sweep refuses such data itself)
  }
  const int P = static_cast<int>(data.pairs.size()), K = static_cast<int>(names.size());
  std::vector<int32_t> index;
  index.reserve(static_cast<size_t>(P) * K);
  for (const PromptPair& p : data.pairs)
    for (const std::string& n : names)
      for (const NamedPosition& np : p.positions)
        if (np.name == n) index.push_back(np.index);
  f.write_strings("/data/position_names", names);
  f.write_ints("/data/named_positions", index.data(), {P, K});
}

std::vector<int32_t> iota(int n) {
  std::vector<int32_t> v(n);
  for (int i = 0; i < n; ++i) v[i] = i;
  return v;
}

}  // namespace

std::string causeway_git_hash() { return CAUSEWAY_GIT_HASH; }

const std::vector<std::string>& baseline_names() {
  static const std::vector<std::string> names = {"clean_logit_diff", "corrupted_logit_diff",
                                                 "clean_metric", "corrupted_metric"};
  return names;
}

std::filesystem::path ResultStore::staged_path(const std::filesystem::path& path) {
  return path.string() + ".partial";
}

ResultStore ResultStore::create_staged(const std::filesystem::path& path) {
  // Through a symbolic link the file it names is replaced (as writing through it would), not
  // the link itself; the temporary file then lies beside that file, on its file system.
  std::filesystem::path target = path;
  std::error_code ec;
  if (std::filesystem::is_symlink(path, ec)) {
    const std::filesystem::path resolved = std::filesystem::weakly_canonical(path, ec);
    if (!ec) target = resolved;
  }
  // A leftover of a job killed during layout is simply replaced (the caller holds the lock).
  ResultStore store(H5File(staged_path(target), H5Mode::Create));
  store.file_.show_as(path);
  store.final_path_ = target;
  return store;
}

ResultStore::ResultStore(ResultStore&& o) noexcept
    : file_(std::move(o.file_)), final_path_(std::move(o.final_path_)) {
  o.final_path_.clear();
}

ResultStore::~ResultStore() {
  if (final_path_.empty()) return;
  std::error_code ignored;
  std::filesystem::remove(file_.path(), ignored);
}

void ResultStore::publish() {
  const std::filesystem::path staged = file_.path();
  file_.close();
  if (std::rename(staged.c_str(), final_path_.c_str()) != 0)
    throw_io_error(errno, final_path_, "renaming " + staged.string() + " into place");
  // The rename is durable once the folder is synced.
  std::filesystem::path dir = final_path_.parent_path();
  if (dir.empty()) dir = ".";
  if (const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY); fd >= 0) {
    const int synced = ::fsync(fd), err = errno;
    ::close(fd);
    if (synced != 0) throw_io_error(err, final_path_, "fsync of its folder");
  }
  final_path_.clear();
}

ResultStore ResultStore::open(const std::filesystem::path& path) {
  return ResultStore(H5File(path, H5Mode::ReadWrite));
}


void ResultStore::write_meta(const std::string& config_text, const std::string& model_dir,
                             const std::string& model_config_json, const std::string& rank_layout) {
  file_.ensure_group("/meta");
  file_.set_attribute("/meta", "config", config_text);
  file_.set_attribute("/meta", "model", model_dir);
  file_.set_attribute("/meta", "model_config", model_config_json);
  file_.set_attribute("/meta", "causeway_version", CAUSEWAY_VERSION);
  file_.set_attribute("/meta", "git_hash", causeway_git_hash());
  file_.set_attribute("/meta", "rank_layout", rank_layout);
  file_.set_attribute("/", "schema", "causeway-results/1");
}

std::string ResultStore::config_text() const {
  if (!file_.exists("/meta"))
    throw InputError(file_.path().string(), "/meta", "not a causeway result file");
  return file_.read_string_attribute("/meta", "config");
}

bool ResultStore::has_experiment(const std::string& name) const {
  return file_.exists("/experiments/" + name + "/done");
}

std::vector<uint8_t> ResultStore::done(const std::string& experiment) const {
  const std::string path =
      experiment == "activations" ? "/activations/done" : "/experiments/" + experiment + "/done";
  if (!file_.exists(path))
    throw InputError(file_.path().string(), path,
                     "missing: the file was not written by this config's experiments");
  return file_.read_bytes(path);
}

void ResultStore::set_attribute(const std::string& object, const std::string& key,
                                const std::string& value) {
  file_.set_attribute(object, key, value);
}

void ResultStore::write_data(const PairDataset& data, const Tokenizer* tok) {
  const int P = static_cast<int>(data.pairs.size());
  // Both prompts count: a corrupted prompt longer than every clean one must still fit.
  const int T = data.max_length();
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
      clean_text.push_back(tok->decode_for_display(p.clean));
      corrupted_text.push_back(tok->decode_for_display(p.corrupted));
      answer_text.push_back(tok->display_text(p.answers.front()));
      wrong_text.push_back(tok->display_text(p.wrongs.front()));
    }
  }
  file_.write_ints("/data/clean_tokens", clean.data(), {P, T});
  file_.write_ints("/data/corrupted_tokens", corrupted.data(), {P, T});
  file_.write_ints("/data/lengths", lengths.data(), {P});
  file_.write_ints("/data/answer", answer.data(), {P});
  file_.write_ints("/data/wrong", wrong.data(), {P});
  file_.set_attribute("/data", "source", data.source);
  file_.write_strings("/data/position_labels", position_labels(data, tok));
  write_named_positions(file_, data);
  if (!tok) return;
  file_.write_strings("/data/clean_text", clean_text);
  file_.write_strings("/data/corrupted_text", corrupted_text);
  file_.write_strings("/data/answer_text", answer_text);
  file_.write_strings("/data/wrong_text", wrong_text);
}

void ResultStore::create_experiment(const ExperimentLayout& e) {
  const std::string g = "/experiments/" + e.name;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  file_.ensure_group(g + "/axes");
  for (const auto& [k, v] : e.attributes) file_.set_attribute(g, k, v);

  std::vector<int64_t> grid_shape;
  std::vector<std::string> grid_scales;
  for (const GridAxis& a : e.axes) {
    grid_shape.push_back(a.size);
    const std::string path = g + "/axes/" + a.name;
    make_scale(file_, path, a.name, iota(a.size), a.labels);
    grid_scales.push_back(path);
  }
  make_scale(file_, g + "/axes/pair", "pair", iota(e.n_pairs), {});

  // One chunk per work item: each item's write touches exactly one chunk.
  std::vector<int64_t> effect_shape{e.n_pairs}, chunk{std::min(e.pairs_per_item, e.n_pairs)};
  for (size_t d = 0; d < grid_shape.size(); ++d) {
    effect_shape.push_back(grid_shape[d]);
    chunk.push_back(d == 0 ? std::min<int64_t>(e.lead_per_item, grid_shape[0]) : grid_shape[d]);
  }
  file_.create_dataset(g + "/effect", H5Elem::Float32, effect_shape, chunk, nan);
  file_.create_dataset(g + "/mean", H5Elem::Float32, grid_shape, {}, nan);
  std::vector<std::string> effect_scales{g + "/axes/pair"}, grid_labels, effect_labels{"pair"};
  effect_scales.insert(effect_scales.end(), grid_scales.begin(), grid_scales.end());
  for (const GridAxis& a : e.axes) grid_labels.push_back(a.name);
  effect_labels.insert(effect_labels.end(), grid_labels.begin(), grid_labels.end());
  attach_scales(file_, g + "/effect", effect_scales, effect_labels);
  attach_scales(file_, g + "/mean", grid_scales, grid_labels);
  for (const std::string& name : baseline_names()) {
    const std::string path = g + "/baselines/" + name;
    file_.create_dataset(path, H5Elem::Float32, {e.n_pairs}, {}, nan);
    attach_scales(file_, path, {g + "/axes/pair"}, {"pair"});
  }
  file_.create_dataset(g + "/done", H5Elem::UInt8, {e.n_items}, {}, 0);
  file_.set_attribute(g + "/done", "description",
                      "one byte per work item (block of pairs x slab of the first grid axis); 1 "
                      "once its effects are durable in the file");
}

void ResultStore::create_activations(const std::vector<ActivationLayout>& hooks, int n_pairs,
                                     int n_items, int pairs_per_item) {
  if (hooks.empty()) return;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  file_.ensure_group("/activations");
  make_scale(file_, "/activations/axes/pair", "pair", iota(n_pairs), {});
  for (const ActivationLayout& h : hooks) {
    const std::string g = "/activations/" + h.hook;
    std::vector<int64_t> shape{n_pairs}, chunk{std::min(pairs_per_item, n_pairs)};
    shape.insert(shape.end(), h.shape.begin(), h.shape.end());
    chunk.insert(chunk.end(), h.shape.begin(), h.shape.end());
    file_.ensure_group(g);
    file_.set_attribute(g, "axes", [&] {
      std::string a = "pair";
      for (const std::string& n : h.axes) a += "," + n;
      return a;
    }());
    for (const char* run : {"clean", "corrupted"}) {
      file_.create_dataset(g + "/" + run, H5Elem::Float32, shape, chunk, nan);
      std::vector<std::string> labels{"pair"};
      labels.insert(labels.end(), h.axes.begin(), h.axes.end());
      attach_scales(file_, g + "/" + run, {"/activations/axes/pair"}, labels);
    }
  }
  file_.create_dataset("/activations/done", H5Elem::UInt8, {n_items}, {}, 0);
}

void ResultStore::split_last_axis(const std::string& name, const std::vector<GridAxis>& axes) {
  const std::string g = "/experiments/" + name;
  std::vector<int64_t> shape;
  const std::vector<float> effect = file_.read_floats(g + "/effect", &shape);
  const std::vector<float> mean = file_.read_floats(g + "/mean");
  const GridAxis& q = axes.back();
  const int64_t Q = q.size, rows = static_cast<int64_t>(effect.size()) / Q, cells = static_cast<int64_t>(mean.size()) / Q;
  std::vector<int64_t> effect_shape(shape.begin(), shape.end() - 1), mean_shape(shape.begin() + 1, shape.end() - 1);
  std::vector<std::string> scales{g + "/axes/pair"}, labels{"pair"};
  for (size_t d = 0; d + 1 < axes.size(); ++d) {
    scales.push_back(g + "/axes/" + axes[d].name);
    labels.push_back(axes[d].name);
  }
  std::vector<float> part(rows), part_mean(cells);
  for (int64_t k = 0; k < Q; ++k) {
    for (int64_t i = 0; i < rows; ++i) part[i] = effect[i * Q + k];
    for (int64_t i = 0; i < cells; ++i) part_mean[i] = mean[i * Q + k];
    const std::string path = g + "/" + q.labels[k];
    for (const std::string& p : {path, path + "_mean"})
      if (file_.exists(p)) file_.remove(p);
    file_.write_floats(path, part.data(), effect_shape);
    file_.write_floats(path + "_mean", part_mean.data(), mean_shape);
    attach_scales(file_, path, scales, labels);
    attach_scales(file_, path + "_mean", {scales.begin() + 1, scales.end()}, {labels.begin() + 1, labels.end()});
  }
}

void ResultStore::write_mean(const std::string& name, MetricKind metric) {
  const std::string g = "/experiments/" + name;
  std::vector<int64_t> shape;
  const std::vector<float> effect = file_.read_floats(g + "/effect", &shape);
  const int n_pairs = static_cast<int>(shape.at(0));
  const int64_t n_cells = n_pairs > 0 ? static_cast<int64_t>(effect.size()) / n_pairs : 0;
  SweepBaselines b;
  std::vector<std::vector<double>*> slots = {&b.clean_ld, &b.corrupted_ld, &b.clean_metric,
                                             &b.corrupted_metric};
  for (size_t i = 0; i < slots.size(); ++i) {
    const std::vector<float> v = file_.read_floats(g + "/baselines/" + baseline_names()[i]);
    slots[i]->assign(v.begin(), v.end());
  }
  const std::vector<float> mean = sweep_mean(metric, effect, b, n_pairs, n_cells);
  std::vector<int64_t> grid(shape.begin() + 1, shape.end()), zero(grid.size(), 0);
  file_.write_block(g + "/mean", zero, grid, mean.data());
}

}  // namespace causeway
