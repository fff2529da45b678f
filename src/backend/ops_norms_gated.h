// RMSNorm, gated MLP activations and the tanh soft-cap, as TransformerLens 3.9 computes them for
// the Llama, Mistral, Qwen and Gemma 2 families (conventions: tests/reference/FAMILIES.md).
// Shape letters as in ops.h: N = rows, C = features of a row, n = element count. fp32,
// row-major. Backward ops overwrite their input gradients unless they say `+=`.
#pragma once

#include <cstdint>

namespace causeway::cpu {

// RMSNorm as TransformerLens splits it, so `ln.hook_scale` can be read or replaced between the
// two steps: scale[n] = sqrt(mean_i(inp[n, i]^2) + eps) (no mean subtraction), then
// out[n, i] = (inp[n, i] / scale[n]) * weight[i]. TL's `hook_normalized` is inp / scale, BEFORE
// the weight: pass weight = null to get it. Gemma's `1 + w` is folded into the weight when the
// checkpoint is loaded (as TL's converter does), so one op serves every family.
//   inp, out (N, C)   scale (N)   weight (C) or null.   out may alias inp.
void rmsnorm_stats(float* scale, const float* inp, int64_t N, int C, float eps);
void rmsnorm_apply(float* out, const float* inp, const float* scale, const float* weight,
                   int64_t N, int C);
// Backward through stats and apply together: d_inp += the input gradient (scale depends on
// inp); d_weight (C) += sum over rows of d_out * inp / scale when not null. weight null: as in
// rmsnorm_apply (unit weight). Shapes as above.
void rmsnorm_backward(float* d_inp, float* d_weight, const float* d_out, const float* inp,
                      const float* scale, const float* weight, int64_t N, int C);

// SiLU: out = x * sigmoid(x) (PyTorch F.silu). out may alias inp.
void silu_forward(float* out, const float* inp, int64_t n);
// d_inp = d_out * silu'(inp). d_inp may alias d_out.
void silu_backward(float* d_inp, const float* d_out, const float* inp, int64_t n);

// Activation of a gated MLP's gate: kSilu for SwiGLU (Llama, Mistral, Qwen `silu`), kGeluTanh
// for GeGLU with the tanh approximation (Gemma 2 `gelu_pytorch_tanh`, = GPT-2's `gelu_new`).
enum class GatedActivation { kSilu, kGeluTanh };

// out = act(gate) * up, elementwise over n = N * d_mlp entries. In TL terms gate is
// `mlp.hook_pre` (x @ W_gate, HF gate_proj), up is `mlp.hook_pre_linear` (x @ W_in, HF
// up_proj) and out is `mlp.hook_post`. out may alias gate or up.
void gated_forward(float* out, const float* gate, const float* up, int64_t n,
                   GatedActivation activation);
// d_gate = d_out * up * act'(gate), d_up = d_out * act(gate) (both overwritten; either may alias
// d_out but not each other, gate or up).
void gated_backward(float* d_gate, float* d_up, const float* d_out, const float* gate,
                    const float* up, int64_t n, GatedActivation activation);

// Soft-cap: out = cap * tanh(inp / cap), cap > 0 (Gemma 2: attention scores before the mask,
// cap 5 in the tiny checkpoint / 50 released; final logits, cap 3 / 30). -inf maps to -cap, so
// masking must come after the cap, as in TL. out may alias inp.
void softcap_forward(float* out, const float* inp, int64_t n, float cap);
// d_inp = d_out * (1 - tanh(inp / cap)^2). d_inp may alias d_out.
void softcap_backward(float* d_inp, const float* d_out, const float* inp, int64_t n, float cap);

}  // namespace causeway::cpu
