// A fingerprint of a checkpoint folder's weights, stored in a result file so that --resume can
// tell whether the weights changed since the file was laid out. Per safetensors file: its name,
// its size, a hash of its header (tensor names, dtypes, shapes, offsets) and a hash of its
// tensor bytes, so two fine-tunes of one architecture (same header, same size) differ too.
// Computing it reads every weight file once (about a second per GB from the page cache).
#pragma once

#include <filesystem>
#include <string>

namespace causeway {

// One line per weight file: "NAME bytes=N header=HEX data=HEX". InputError for an unreadable
// checkpoint, as Checkpoint::open reports it.
std::string weights_fingerprint(const std::filesystem::path& model_dir);

// What differs first between two fingerprints, e.g. "model.safetensors contents" or
// "model-00002-of-00002.safetensors missing now"; empty when they are equal.
std::string fingerprint_difference(const std::string& stored, const std::string& now);

}  // namespace causeway
