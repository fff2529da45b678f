// Loading a checkpoint into ModelWeights from the family's weight table: each stored tensor
// is checked (shape, finiteness), copied in row chunks (fp32, or rounded to the 16-bit dtype)
// and its mapped pages released, so peak memory stays near the final copy.
#include <algorithm>
#include <cstdio>

#include "core/error.h"
#include "core/finite.h"
#include "backend/ops_linear.h"
#include "model/families/families.h"
#include "model/model_weights.h"
#include "model/safetensors.h"
#include "model/tensor_shard.h"
#include "model/weight_table.h"

namespace causeway {

namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::vector<std::string> split_names(const std::string& tl_name) {
  // "blocks.3.attn.W_Q,W_K,W_V" -> the three full names; "embed.W_E,unembed.W_U" -> both.
  std::vector<std::string> parts;
  size_t at = 0;
  while (true) {
    const size_t comma = tl_name.find(',', at);
    parts.push_back(tl_name.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  const size_t dot = parts[0].rfind('.');
  for (size_t i = 1; i < parts.size(); ++i)
    if (parts[i].find('.') == std::string::npos && dot != std::string::npos)
      parts[i] = parts[0].substr(0, dot + 1) + parts[i];
  return parts;
}

// TransformerLens' name -> the arena's: W_E, W_pos and W_U drop their module; the grouped-query
// _W_K / _W_V / _b_K / _b_V lose the underscore.
std::string param_name(std::string n) {
  for (const char* module : {"pos_embed.", "unembed.", "embed."})
    if (n.starts_with(module)) return n.substr(std::string(module).size());
  const size_t dot = n.rfind('.');
  if (dot != std::string::npos && n.compare(dot + 1, 1, "_") == 0) n.erase(dot + 1, 1);
  return n;
}

// The config field that sets each stored axis of a row, to name it when the weights disagree:
// read from the row's TransformerLens name, its rank and the family's layout. `value` is the
// field's own value; `product` says how the axis size follows from it, when not equal.
struct AxisField {
  std::string field;
  int64_t value = 0;
  std::string product;
};

std::vector<AxisField> axis_fields(const WeightRow& r, const ModelConfig& cfg) {
  const bool gpt2 = cfg.is_gpt2();
  const std::string hd = " x head_dim " + std::to_string(cfg.d_head());
  const AxisField C{gpt2 ? "n_embd" : "hidden_size", cfg.n_embd, ""};
  const AxisField M{gpt2 ? "n_inner" : "intermediate_size", cfg.n_inner, ""};
  const AxisField Q = gpt2 ? C : AxisField{"num_attention_heads", cfg.n_head, hd};
  const AxisField KV = gpt2 ? C : AxisField{"num_key_value_heads", cfg.kv_heads(), hd};
  const std::string& n = r.tl_name;
  auto has = [&](const char* part) { return n.find(part) != std::string::npos; };
  AxisField out = C, in = C;
  if (has("W_E") || has("W_U")) return {{"vocab_size", cfg.vocab_size, ""}, C};
  if (has("W_pos")) return {{"n_positions", cfg.n_positions, ""}, C};
  if (has("norm.w")) return {{"head_dim", cfg.d_head(), ""}};
  if (has("W_Q,") || has("b_Q,")) out = gpt2 ? C : AxisField{"num_attention_heads", cfg.n_head, " x 3" + hd};
  else if (has("W_Q") || has("b_Q")) out = Q;
  else if (has("W_K") || has("W_V") || has("b_K") || has("b_V")) out = KV;
  else if (has("W_O")) in = Q;
  else if (has("W_gate") || has("W_in") || has("b_gate") || has("b_in")) out = M;
  else if (has("W_out")) in = M;
  if (r.shape.size() == 1) return {out};
  // GPT-2's Conv1D stores (in, out); nn.Linear (out, in).
  return gpt2 ? std::vector<AxisField>{in, out} : std::vector<AxisField>{out, in};
}

// The layer count, then every stored tensor of the table against its expected shape, before
// anything is allocated; a mismatch names the config field that set the expected size.
void check_shapes(const ModelConfig& cfg, const Checkpoint& ckpt, const std::string& prefix,
                  const std::vector<WeightRow>& rows, const std::string& config_source) {
  const std::string layers_field = cfg.is_gpt2() ? "n_layer" : "num_hidden_layers";
  for (const WeightRow& r : family_for(cfg.model_type, config_source).weights(cfg)) {
    if (r.hf_name.find("{L}") == std::string::npos) continue;
    auto name_at = [&](int L) { return prefix + expand_layers({r}, L + 1).back().hf_name; };
    int stored = 0;
    while (stored <= cfg.n_layer && ckpt.has(name_at(stored))) ++stored;
    if (stored != cfg.n_layer)
      throw InputError(config_source, layers_field,
                       std::to_string(cfg.n_layer) + " disagrees with the weights: they" +
                           (stored < cfg.n_layer
                                ? " hold " + std::to_string(stored) + " blocks (no " +
                                      name_at(stored) + ")"
                                : " hold more blocks (" + name_at(cfg.n_layer) + " exists)"));
    break;
  }
  for (const WeightRow& r : rows) {
    const std::string name = prefix + r.hf_name;
    const TensorInfo& t = ckpt.info(name);  // InputError naming a missing tensor and the file
    if (t.shape == r.shape) continue;
    AxisField field{"shape", 0, ""};
    const std::vector<AxisField> fields = axis_fields(r, cfg);
    if (t.shape.size() == r.shape.size())
      for (size_t d = 0; d < r.shape.size() && d < fields.size(); ++d)
        if (t.shape[d] != r.shape[d]) {
          field = fields[d];
          break;
        }
    throw InputError(config_source, field.field,
                     (field.value ? std::to_string(field.value) + " " : std::string()) +
                         "disagrees with the weights: " + ckpt.file_of(name) + " holds " +
                         t.name + " of shape " + shape_text(t.shape) + " (expected " +
                         shape_text(r.shape) +
                         (field.product.empty() ? "" : ", from " + field.field + field.product) +
                         ")");
  }
}

// "1e+06 overflows f16 (largest finite 65504) at element 3 (flat index); hold the weights
// as f32 or bf16 (--dtype, [model] dtype)".
InputError overflow_error(const std::string& file, const std::string& tensor, float value,
                          int64_t element, DType dtype) {
  char v[32];
  std::snprintf(v, sizeof v, "%g", static_cast<double>(value));
  const bool f16 = dtype == DType::F16;
  return InputError(file, tensor,
                    std::string(v) + " overflows " + (f16 ? "f16 (largest finite 65504)" : "bf16") +
                        " at element " + std::to_string(element) +
                        " (flat index); hold the weights as " + (f16 ? "f32 or bf16" : "f32") +
                        " (--dtype, [model] dtype)");
}

// Some GPT-2 checkpoints name their tensors "transformer.wte.weight", ...
std::string name_prefix(const ModelConfig& cfg, const Checkpoint& ckpt) {
  return cfg.is_gpt2() && ckpt.has("transformer.wte.weight") ? "transformer." : "";
}

}  // namespace

void ModelWeights::check_against(const ModelConfig& cfg, const Checkpoint& ckpt,
                                 const std::string& config_source) {
  check_shapes(cfg, ckpt, name_prefix(cfg, ckpt), weight_table(cfg), config_source);
}

ModelWeights ModelWeights::load(const ModelConfig& cfg, const Checkpoint& ckpt,
                                const std::string& config_source, DType dtype,
                                const TensorShard* shard) {
  const std::string prefix = name_prefix(cfg, ckpt);
  const std::vector<WeightRow> rows = weight_table(cfg);
  check_shapes(cfg, ckpt, prefix, rows, config_source);
  ModelWeights w(shard ? shard->local(cfg) : cfg, dtype);

  // Stores n floats at element `offset` of parameter `param`, refusing NaN and inf.
  auto store = [&](const std::string& hf, const std::string& param, int64_t offset,
                   const float* src, int64_t n, int64_t src_offset) {
    if (const int64_t i = first_nonfinite(src, n); i >= 0)
      throw InputError(ckpt.file_of(hf), hf,
                       "holds " + nonfinite_name(src[i]) + " at element " +
                           std::to_string(src_offset + i) +
                           " (flat index); NaN and inf weights are refused");
    if (const Tensor t = w.arena_.find(param); !t.empty()) {  // fp32: vectors, or every weight
      std::copy(src, src + n, t.data + offset);
      return;
    }
    uint16_t* dst = w.half_.data() + w.half_slots_.at(param).offset + offset;
    if (dtype == DType::BF16)
      for (int64_t i = 0; i < n; ++i) dst[i] = cpu::f32_to_bf16(src[i]);
    else
      for (int64_t i = 0; i < n; ++i) dst[i] = cpu::f32_to_f16(src[i]);
    // A finite weight too large for the 16-bit format would round to inf and turn every
    // result into NaN; the user must keep it wider.
    const uint16_t exp_mask = dtype == DType::BF16 ? 0x7F80 : 0x7C00;
    for (int64_t i = 0; i < n; ++i)
      if ((dst[i] & exp_mask) == exp_mask) throw overflow_error(ckpt.file_of(hf), hf, src[i], src_offset + i, dtype);
  };
  std::vector<float> chunk;
  // Rows [begin, end) of stored tensor `hf` (rows of its first axis) to `param` at row `at`.
  auto copy_rows = [&](const std::string& hf, int64_t begin, int64_t end, const std::string& param,
                       int64_t at) {
    const TensorInfo& t = ckpt.info(hf);
    int64_t row = 1;
    for (size_t i = 1; i < t.shape.size(); ++i) row *= t.shape[i];
    const int64_t step = std::max<int64_t>(1, (int64_t{1} << 22) / std::max<int64_t>(row, 1));
    for (int64_t r = begin; r < end; r += step) {
      const int64_t e = std::min(end, r + step);
      chunk.resize(static_cast<size_t>((e - r) * row));
      ckpt.read_rows(hf, r, e, chunk.data());
      store(hf, param, (at + r - begin) * row, chunk.data(), (e - r) * row, r * row);
    }
  };

  // Columns [begin, end) of a 2-D stored tensor to columns [at, at + end - begin) of `param`
  // (rows of `width` elements): the input-feature slice of a tensor-parallel rank.
  auto copy_columns = [&](const std::string& hf, int64_t begin, int64_t end,
                          const std::string& param, int64_t at, int64_t width) {
    const TensorInfo& t = ckpt.info(hf);
    const int64_t n_rows = t.shape.size() == 2 ? t.shape[0] : 1, n = end - begin;
    chunk.resize(static_cast<size_t>(n_rows * n));
    ckpt.read_columns(hf, begin, end, chunk.data());
    for (int64_t i = 0; i < n_rows; ++i)
      store(hf, param, i * width + at, chunk.data() + i * n, n, i * t.shape.back() + begin);
  };

  // The features of each parameter this rank holds (all of them without a shard).
  const int64_t HS = cfg.d_head();
  struct Range {
    int64_t begin, end;
  };
  const Range q = shard ? Range{shard->head_begin * HS, (shard->head_begin + shard->heads) * HS}
                        : Range{0, cfg.n_head * HS};
  const Range kv = shard ? Range{shard->kv_head_begin * HS,
                                 (shard->kv_head_begin + shard->kv_heads) * HS}
                         : Range{0, cfg.kv_heads() * HS};
  const Range mlp = shard ? Range{shard->mlp_begin, shard->mlp_begin + shard->mlp_units}
                          : Range{0, cfg.n_inner};
  const Range vocab = shard ? Range{shard->vocab_begin,
                                    std::min<int64_t>(shard->vocab_begin + shard->vocab_rows,
                                                      cfg.vocab_size)}
                            : Range{0, cfg.vocab_size};
  auto range_of = [&](const std::string& param) -> const Range* {
    auto ends = [&](const char* tail) { return param.ends_with(tail); };
    if (ends("W_Q") || ends("b_Q") || ends("W_O")) return &q;
    if (ends("W_K") || ends("W_V") || ends("b_K") || ends("b_V")) return &kv;
    if (ends("W_gate") || ends("b_gate") || ends("W_in") || ends("b_in") || ends("W_out"))
      return &mlp;
    if (param == "W_E" || param == "W_U") return &vocab;
    return nullptr;  // replicated
  };
  const bool conv1d = cfg.is_gpt2();

  for (const WeightRow& r : rows) {
    const std::string hf = prefix + r.hf_name;
    const std::vector<std::string> names = split_names(r.tl_name);
    const int64_t rows0 = r.shape[0];
    if (names.size() == 1 || param_name(names[1]) == "W_U") {
      const std::string param = param_name(names[0]);
      const Range* part = range_of(param);
      if (!part || r.split == TpSplit::Replicated) {
        copy_rows(hf, 0, rows0, param, 0);
      } else {
        // The table names the stored axis that is split: out features of column-parallel
        // tensors, in features of row-parallel ones, vocabulary rows.
        if (r.axis == 0) copy_rows(hf, part->begin, part->end, param, 0);
        else copy_columns(hf, part->begin, part->end, param, 0, part->end - part->begin);
      }
    } else if (conv1d) {
      // c_attn: (C, 3C) or (3C), columns [q | k | v].
      const int64_t third = r.shape.back() / 3, n_rows = r.shape.size() == 2 ? rows0 : 1;
      const int64_t n = q.end - q.begin;
      chunk.resize(static_cast<size_t>(n_rows * n));
      for (int i = 0; i < 3; ++i) {
        ckpt.read_columns(hf, i * third + q.begin, i * third + q.end, chunk.data());
        store(hf, param_name(names[i]), 0, chunk.data(), n_rows * n, i * third + q.begin);
      }
    } else {
      // GPT-NeoX query_key_value: rows grouped per head as [q_h | k_h | v_h], HS rows each.
      const int h0 = static_cast<int>(q.begin / HS), h1 = static_cast<int>(q.end / HS);
      for (int h = h0; h < h1; ++h)
        for (int i = 0; i < 3; ++i)
          copy_rows(hf, (3 * h + i) * HS, (3 * h + i + 1) * HS, param_name(names[i]),
                    (h - h0) * HS);
    }
    ckpt.release(hf);
  }

  // Gemma stores RMSNorm weights as w - 1; the 1 is added here (in fp32, as TransformerLens'
  // converter does) so one norm op serves every family.
  if (cfg.norm == NormKind::RMSNormOnePlusW)
    for (const TensorSpec& s : w.arena_.specs())
      if (s.name.find("ln") != std::string::npos && s.name.ends_with(".w")) {
        const Tensor t = w.arena_.get(s.name);
        for (int64_t i = 0; i < t.numel(); ++i) t.data[i] += 1.0f;
      }

  // GPT-2 ties the unembedding to wte; a separate lm_head.weight (untied fine-tunes) is not
  // supported there, and saying so beats silently using the wrong matrix.
  // A tensor-parallel rank compares its own vocabulary rows.
  if (cfg.is_gpt2() && ckpt.has("lm_head.weight") && dtype == DType::F32) {
    const int64_t V = cfg.vocab_size, C = cfg.n_embd;
    ckpt.expect_shape("lm_head.weight", {V, C}, config_source);
    const int64_t v0 = shard ? shard->vocab_begin : 0,
                  v1 = shard ? std::min<int64_t>(V, v0 + shard->vocab_rows) : V;
    std::vector<float> lm(static_cast<size_t>((v1 - v0) * C));
    ckpt.read_rows("lm_head.weight", v0, v1, lm.data());
    for (int64_t i = 0; i < (v1 - v0) * C; ++i)
      if (lm[i] != w.W_E.data[i])
        throw InputError(ckpt.file_of("lm_head.weight"), "lm_head.weight",
                         "differs from wte.weight; untied unembeddings are not supported");
  }
  return w;
}

}  // namespace causeway
