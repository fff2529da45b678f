#include "io/resume_check.h"

#include <hdf5.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "model/weights_fingerprint.h"

namespace causeway {

namespace {

bool has_attribute(const H5File& f, const char* object, const char* key) {
  return H5Aexists_by_name(f.id(), object, key, H5P_DEFAULT) > 0;
}

void write_int64_attribute(H5File& f, const char* object, const char* key, int64_t value) {
  const std::string where = std::string(object) + "@" + key;
  if (has_attribute(f, object, key)) h5_check(H5Adelete_by_name(f.id(), object, key, H5P_DEFAULT), "H5Adelete_by_name", f.path(), where);
  H5Handle space(H5Screate(H5S_SCALAR));
  h5_check(space.get(), "H5Screate", f.path(), where);
  H5Handle attr(H5Acreate_by_name(f.id(), object, key, H5T_STD_I64LE, space.get(), H5P_DEFAULT,
                                  H5P_DEFAULT, H5P_DEFAULT));
  h5_check(attr.get(), "H5Acreate_by_name", f.path(), where);
  h5_check(H5Awrite(attr.get(), H5T_NATIVE_INT64, &value), "H5Awrite", f.path(), where);
}

int64_t read_int64_attribute(const H5File& f, const char* object, const char* key) {
  const std::string where = std::string(object) + "@" + key;
  H5Handle attr(H5Aopen_by_name(f.id(), object, key, H5P_DEFAULT, H5P_DEFAULT));
  h5_check(attr.get(), "H5Aopen_by_name", f.path(), where);
  int64_t v = 0;
  h5_check(H5Aread(attr.get(), H5T_NATIVE_INT64, &v), "H5Aread", f.path(), where);
  return v;
}

// Row `i` of a [pairs, T] token table without its -1 padding.
std::vector<int32_t> row(const std::vector<int32_t>& table, int64_t T, int64_t i) {
  std::vector<int32_t> r(table.begin() + i * T, table.begin() + (i + 1) * T);
  while (!r.empty() && r.back() == -1) r.pop_back();
  return r;
}

// What differs first between the pairs stored in /data and the job's, or "".
std::string pairs_difference(const H5File& f, const PairDataset& data) {
  const auto n_stored = static_cast<int64_t>(f.read_ints("/data/answer").size());
  const auto n = static_cast<int64_t>(data.pairs.size());
  if (n_stored != n) return std::to_string(n_stored) + " pairs in the file, " + std::to_string(n) + " now";
  const std::vector<int32_t> clean = f.read_ints("/data/clean_tokens"), corrupted = f.read_ints("/data/corrupted_tokens"),
                             answer = f.read_ints("/data/answer"), wrong = f.read_ints("/data/wrong");
  const int64_t T = n ? static_cast<int64_t>(clean.size()) / n : 0;
  const int64_t Tc = n ? static_cast<int64_t>(corrupted.size()) / n : 0;
  for (int64_t i = 0; i < n; ++i) {
    const PromptPair& p = data.pairs[i];
    const std::string which = "pair " + std::to_string(i) + (p.line ? " (line " + std::to_string(p.line) + ")" : "");
    if (row(clean, T, i) != p.clean) return which + " clean tokens";
    if (row(corrupted, Tc, i) != p.corrupted) return which + " corrupted tokens";
    if (answer[i] != p.answers.front()) return which + " answer";
    if (wrong[i] != p.wrongs.front()) return which + " wrong answer";
  }
  return "";
}

}  // namespace

void write_resume_identity(H5File& f, const ResumeIdentity& id) {
  write_int64_attribute(f, "/meta", "pairs_per_item", id.pairs_per_item);
  f.set_attribute("/meta", "weights_fingerprint", id.weights_fingerprint);
  if (!id.weights_dtype.empty()) f.set_attribute("/meta", "weights_dtype", id.weights_dtype);
  if (!id.weights_stored_dtype.empty())
    f.set_attribute("/meta", "weights_stored_dtype", id.weights_stored_dtype);
  if (!id.compute.empty()) f.set_attribute("/meta", "compute", id.compute);
}

void check_resume_identity(const H5File& f, const ResumeIdentity& now, int configured_pairs_per_item,
                           const PairDataset& data) {
  const std::string file = f.path().string();
  for (const char* key : {"pairs_per_item", "weights_fingerprint", "model_config"})
    if (!has_attribute(f, "/meta", key))
      throw InputError(file, std::string("/meta@") + key,
                       "--resume: missing, so this file cannot be checked against the job (written by an "
                       "older causeway?); start a new file with --overwrite or another --out");
  const int64_t laid_out = read_int64_attribute(f, "/meta", "pairs_per_item");
  if (laid_out != now.pairs_per_item)
    throw InputError(file, "/meta@pairs_per_item",
                     "--resume: pairs_per_item is " + std::to_string(configured_pairs_per_item) +
                         ", the file was laid out with " + std::to_string(laid_out));
  if (const std::string d = pairs_difference(f, data); !d.empty())
    throw InputError(file, "/data", "--resume: the pairs differ from the file's (" + d + ")");
  if (f.read_string_attribute("/meta", "model_config") != now.model_config_json)
    throw InputError(file, "/meta@model_config", "--resume: the model's config.json differs from the file's");
  if (const std::string d = fingerprint_difference(f.read_string_attribute("/meta", "weights_fingerprint"),
                                                   now.weights_fingerprint);
      !d.empty())
    throw InputError(file, "/meta@weights_fingerprint", "--resume: the weights differ from the file's (" + d + ")");
  // Files from before weights_dtype was recorded held f32 unless their config said otherwise,
  // which the config text comparison already covers.
  if (!now.weights_dtype.empty() && has_attribute(f, "/meta", "weights_dtype")) {
    const std::string then = f.read_string_attribute("/meta", "weights_dtype");
    if (then != now.weights_dtype)
      throw InputError(file, "/meta@weights_dtype",
                       "--resume: the weights are held as " + now.weights_dtype + ", the file was written with " +
                           then + " (pass --dtype " + then + ")");
  }
  // Files from before compute was recorded computed in f32.
  if (!now.compute.empty()) {
    const std::string then = has_attribute(f, "/meta", "compute") ? f.read_string_attribute("/meta", "compute") : "f32";
    if (then != now.compute)
      throw InputError(file, "/meta@compute",
                       "--resume: this job computes in " + now.compute + ", the file was written computing in " +
                           then + (then == "f32" ? " (pass --compute f32)"
                                                 : " (pass --compute bf16 on a CPU with bf16 dot products)"));
  }
}

}  // namespace causeway
