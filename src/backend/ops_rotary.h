// Rotary position embeddings (RoPE) as TransformerLens 3.9 and Hugging Face apply them to the
// query and key projections of Llama, Mistral, Qwen and GPT-NeoX (tests/reference/FAMILIES.md).
// Layout is NeoX-style rotate_half: within each head, dimension i (i < rotary_dim/2) is paired
// with i + rotary_dim/2, NOT the interleaved (2i, 2i+1) of GPT-J. Partial rotary (GPT-NeoX's
// rotary_pct < 1): only the first rotary_dim of the HS dimensions rotate, the rest pass through.
// Shape letters as in ops.h: N = rows (B*T), NH = heads (KV heads for keys), HS = d_head.
#pragma once

#include <cstdint>

namespace causeway::cpu {

// Llama 3's "NTK by parts" rescaling of the frequencies (HF rope_type "llama3", TL
// use_NTK_by_parts_rope): long wavelengths are divided by `factor`, short ones kept, and the
// band in between interpolated.
struct RotaryLlama3Scaling {
  double factor = 8.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  double original_max_position_embeddings = 8192.0;
};

// inv_freq[i] = theta^(-2i / rotary_dim) for i < rotary_dim/2, then rescaled when `llama3`
// is given. Computed in double and rounded once. rotary_dim must be even and > 0.
//   inv_freq: (rotary_dim / 2)
void rotary_inv_freq(float* inv_freq, int rotary_dim, double theta,
                     const RotaryLlama3Scaling* llama3 = nullptr);

// out[n, h, :] = RoPE of inp[n, h, :] at angle positions[n] * inv_freq: for i < rotary_dim/2,
//   out[i]        = x[i] cos - x[i + r/2] sin
//   out[i + r/2]  = x[i + r/2] cos + x[i] sin
// and out[j] = x[j] for rotary_dim <= j < HS. Each row carries its own position, so a block of
// rows that starts mid-sequence (the patching engine recomputing positions p..T-1 only) gets
// the same values as those rows of the full sequence. out may alias inp.
//   out, inp: (N, NH, HS)   positions: (N)   inv_freq: (rotary_dim / 2), rotary_dim <= HS
void rotary_forward(float* out, const float* inp, const int32_t* positions, int64_t N, int NH,
                    int HS, int rotary_dim, const float* inv_freq);

// The transpose (= inverse) rotation: d_inp = R(positions)^T d_out, pass-through dims copied.
// d_inp is overwritten and may alias d_out. Shapes as rotary_forward.
void rotary_backward(float* d_inp, const float* d_out, const int32_t* positions, int64_t N,
                     int NH, int HS, int rotary_dim, const float* inv_freq);

}  // namespace causeway::cpu
