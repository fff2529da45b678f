// What --resume checks beyond the config text: a result file is continued only by a job that
// would write the same numbers into the same places. At layout the file records what it cannot
// recover from the config alone (the work-item size, the model config, a weights fingerprint);
// on resume each is compared with the job's, and so are the stored pairs.
#pragma once

#include <string>

#include "data/prompt_pairs.h"
#include "io/hdf5_file.h"

namespace causeway {

struct ResumeIdentity {
  int pairs_per_item = 0;           // pairs per work item as laid out (clamped to the pairs)
  std::string model_config_json;    // ModelConfig::describe().dump()
  std::string weights_fingerprint;  // weights_fingerprint(model folder)
  // How the weight matrices were held ("f32", "bf16", "f16": rounding changes every number)
  // and how the checkpoint stores them (shown only); empty: not recorded.
  std::string weights_dtype, weights_stored_dtype;
  // What the 16-bit matmuls computed in ("f32", or "bf16" where bf16 dot products ran): bf16
  // compute rounds activations, so a file is continued only in the same; empty: not recorded.
  std::string compute;
};

// Stores `id` under /meta (pairs_per_item as an integer, weights_fingerprint, weights_dtype,
// weights_stored_dtype and compute as strings; the model config is already there as /meta@model_config).
void write_resume_identity(H5File& f, const ResumeIdentity& id);

// InputError naming the file and what changed ("--resume: pairs_per_item is 4, the file was
// laid out with 2", "--resume: the pairs differ from the file's (pair 3 clean tokens)",
// "--resume: the weights differ from the file's (model.safetensors header)").
// `configured_pairs_per_item` is the config's value, for the message.
void check_resume_identity(const H5File& f, const ResumeIdentity& now, int configured_pairs_per_item,
                           const PairDataset& data);

}  // namespace causeway
