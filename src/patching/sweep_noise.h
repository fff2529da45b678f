// The scale of Gaussian-noise corruption (causal tracing, Meng et al. 2022): the noise is added
// at hook_embed, so its std is measured on what hook_embed holds.
#pragma once

namespace causeway {

class TransformerModel;

// Population std of every entry of the token embedding table as hook_embed sees it: W_E times
// the family's embedding scale (Gemma: sqrt(d_model); 1 elsewhere), over the whole vocabulary.
// 16-bit tables are widened first. A sweep's noise std is noise_scale times this.
double embedding_noise_std(const TransformerModel& model);

}  // namespace causeway
