// The result file of DESIGN.md section 6. Rank 0 lays the whole file out first (/meta, /data,
// every experiment's datasets with their dimension scales, done bitmaps, activation datasets),
// allocated and filled; then every rank writes its work items' blocks into it in parallel
// (ResultWriter); at the end rank 0 adds the means. Readers need no knowledge of experiment
// kinds: every axis is a named dimension scale.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "data/prompt_pairs.h"
#include "io/hdf5_file.h"
#include "model/hooks.h"
#include "patching/sweep.h"

namespace causeway {

class Tokenizer;

struct ExperimentLayout {
  std::string name;
  std::map<std::string, AttributeValue> attributes;  // kind, sweep, direction, metric, ...
  std::vector<GridAxis> axes;                     // the grid, without the pair axis
  int n_pairs = 0;
  int n_items = 0;                                // length of the done bitmap
  int pairs_per_item = 1, lead_per_item = 1;      // chunk shape of `effect`
};

struct ActivationLayout {
  std::string hook;                 // full TransformerLens name
  std::vector<int64_t> shape;       // one prompt's value: (T, ...) with T the longest prompt
  std::vector<std::string> axes;    // names of those axes
};

class ResultStore {
 public:
  // A new file, laid out under a temporary name beside `path` (staged_path(path)) so that a job
  // killed during layout never leaves a half-made file at `path`; publish() moves it into place.
  // Destroyed unpublished (an error), it deletes the temporary file.
  static ResultStore create_staged(const std::filesystem::path& path);
  // An existing file, read-write (resume, and the final means).
  static ResultStore open(const std::filesystem::path& path);
  static std::filesystem::path staged_path(const std::filesystem::path& path);

  ResultStore(ResultStore&& o) noexcept;
  ResultStore& operator=(ResultStore&&) = delete;
  ~ResultStore();

  // Closes the laid-out file (every write checked, fsynced) and renames it to its final path,
  // replacing an older file there.
  void publish();
  // Closes the file, reporting any write that did not reach the disk (IoError).
  void close() { file_.close(); }

  void write_meta(const std::string& config_text, const std::string& model_dir,
                  const std::string& model_config_json, const std::string& rank_layout);
  void write_data(const PairDataset& data, const Tokenizer* tok);
  void create_experiment(const ExperimentLayout& e);
  void create_activations(const std::vector<ActivationLayout>& hooks, int n_pairs, int n_items,
                          int pairs_per_item);

  std::string config_text() const;
  // Done bitmap of an experiment ("activations" for the activation cache).
  std::vector<uint8_t> done(const std::string& experiment) const;
  bool has_experiment(const std::string& name) const;
  // Reads effect and baselines of a finished experiment and writes its `mean`.
  void write_mean(const std::string& name, MetricKind metric);
  // A finished experiment whose grid `axes` end in a labelled axis of quantities (self_repair):
  // each quantity's slice of effect and mean as datasets of their own, <label> [pair, ...] and
  // <label>_mean, with the other axes as dimension scales. Replaced when they exist (resume).
  void split_last_axis(const std::string& name, const std::vector<GridAxis>& axes);
  void set_attribute(const std::string& object, const std::string& key, const std::string& value);
  H5File& file() { return file_; }

 private:
  explicit ResultStore(H5File f) : file_(std::move(f)) {}
  H5File file_;
  std::filesystem::path final_path_;  // set while the file is staged under a temporary name
};

// Baselines stored per pair under /experiments/<name>/baselines/, in this order.
const std::vector<std::string>& baseline_names();

// The git commit causeway was built from, or "unknown".
std::string causeway_git_hash();

}  // namespace causeway
