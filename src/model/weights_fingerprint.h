// A fingerprint of a checkpoint folder's weights, stored in a result file so that --resume can
// tell whether the weights changed since the file was laid out. Per safetensors file: its name,
// its size, a hash of its header (tensor names, dtypes, shapes, offsets) and a hash of its
// tensor bytes, so two fine-tunes of one architecture (same header, same size) differ too.
// Files up to `full_hash_bytes` are hashed whole (about a second per GB from the page cache);
// larger ones through kSampledBlocks evenly spaced blocks, so that a 70B checkpoint on a
// parallel file system costs a few hundred MB of reads at layout and resume, not all of it.
// A sample still tells fine-tunes apart (every weight differs), not a single edited element.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace causeway {

// One line per weight file: "NAME bytes=N header=HEX data=HEX". InputError for an unreadable
// checkpoint, as Checkpoint::open reports it.
inline constexpr uintmax_t kFullHashBytes = uintmax_t{1} << 30;
inline constexpr int kSampledBlocks = 1024;
inline constexpr size_t kSampledBlockBytes = size_t{64} << 10;
std::string weights_fingerprint(const std::filesystem::path& model_dir,
                                uintmax_t full_hash_bytes = kFullHashBytes);

// What differs first between two fingerprints, e.g. "model.safetensors contents" or
// "model-00002-of-00002.safetensors missing now"; empty when they are equal.
std::string fingerprint_difference(const std::string& stored, const std::string& now);

}  // namespace causeway
