// The weight rows of the Llama-style decoders (Llama, Mistral, Qwen2/3, Gemma 2): the same
// Hugging Face names, with the optional tensors (biases, q/k norms, post-norms, lm_head)
// present as the config says.
#pragma once

#include <vector>

#include "model/model_config.h"
#include "model/weight_table.h"

namespace causeway {

std::vector<WeightRow> decoder_weight_rows(const ModelConfig& cfg);

}  // namespace causeway
