#include "model/families/config_fields.h"

#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>

namespace causeway::config_fields {

std::string show(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

int positive_int(const json& v, const std::string& field, const std::string& src) {
  bool ok = false;
  int64_t x = 0;
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    ok = u >= 1 && u <= static_cast<uint64_t>(INT_MAX);
    x = static_cast<int64_t>(ok ? u : 0);
  } else if (v.is_number_integer()) {
    x = v.get<int64_t>();
    ok = x >= 1 && x <= INT_MAX;
  }
  if (!ok)
    throw InputError(src, field,
                     "must be a positive integer no larger than " + std::to_string(INT_MAX) +
                         ", got " + show(v));
  return static_cast<int>(x);
}

namespace {
std::string bound(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}
}  // namespace

double number_in(const json& v, const std::string& field, const std::string& src, double lo,
                 double hi) {
  if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < lo ||
      v.get<double>() > hi)
    throw InputError(src, field,
                     "must be a number in [" + bound(lo) + ", " + bound(hi) + "], got " + show(v));
  return v.get<double>();
}

double positive_number(const json& v, const std::string& field, const std::string& src) {
  if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() <= 0)
    throw InputError(src, field, "must be a positive number, got " + show(v));
  return v.get<double>();
}

bool boolean(const json& v, const std::string& field, const std::string& src) {
  if (!v.is_boolean()) throw InputError(src, field, "must be true or false, got " + show(v));
  return v.get<bool>();
}

const json& required(const json& j, const std::string& key, const std::string& src) {
  auto it = j.find(key);
  if (it == j.end())
    throw InputError(src, key,
                     "missing (model_type " + show(j.value("model_type", json())) +
                         " requires it)");
  return *it;
}

const json* present(const json& j, const std::string& key) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

int required_int(const json& j, const std::string& key, const std::string& src) {
  return positive_int(required(j, key, src), key, src);
}

bool bool_or(const json& j, const std::string& key, const std::string& src, bool fallback) {
  const json* v = present(j, key);
  return v ? boolean(*v, key, src) : fallback;
}

std::string activation(const json& v, const std::string& field, const std::string& src) {
  const std::string a = v.is_string() ? v.get<std::string>() : "";
  if (a == "gelu_new" || a == "gelu_pytorch_tanh") return "gelu_new";  // the same tanh GELU
  if (a == "gelu" || a == "silu") return a;
  throw InputError(src, field,
                   "unsupported activation " + show(v) +
                       " (supported: \"silu\", \"gelu\", \"gelu_new\", \"gelu_pytorch_tanh\")");
}

void read_decoder_sizes(const json& j, const std::string& src, ModelConfig& c,
                        const DecoderFields& f) {
  c.n_layer = required_int(j, "num_hidden_layers", src);
  c.n_embd = required_int(j, "hidden_size", src);
  c.n_head = required_int(j, "num_attention_heads", src);
  c.n_kv_head = c.n_head;
  if (f.kv_heads) {
    // Absent: the family's default; null: one key/value head per query head (HF's None).
    auto kv = j.find("num_key_value_heads");
    if (kv == j.end() && f.kv_heads_default > 0) c.n_kv_head = f.kv_heads_default;
    else if (kv != j.end() && !kv->is_null()) c.n_kv_head = positive_int(*kv, "num_key_value_heads", src);
    if (c.n_head % c.n_kv_head != 0)
      throw InputError(src, "num_key_value_heads",
                       std::to_string(c.n_kv_head) + " does not divide num_attention_heads = " +
                           std::to_string(c.n_head));
  }
  const json* hd = f.head_dim ? present(j, "head_dim") : nullptr;
  if (hd) {
    c.head_dim = positive_int(*hd, "head_dim", src);
  } else if (f.head_dim && f.head_dim_default > 0 && !j.contains("head_dim")) {
    c.head_dim = f.head_dim_default;
  } else if (c.n_embd % c.n_head != 0) {
    throw InputError(src, "hidden_size",
                     std::to_string(c.n_embd) + " is not divisible by num_attention_heads = " +
                         std::to_string(c.n_head) +
                         (f.head_dim ? " and no head_dim is given" : ""));
  }
  c.n_inner = required_int(j, "intermediate_size", src);
  c.vocab_size = required_int(j, "vocab_size", src);
  c.n_positions = required_int(j, "max_position_embeddings", src);
}

void read_rotary_gated_decoder(const json& j, const std::string& src, ModelConfig& c,
                               const DecoderFields& f) {
  c.model_type = j.at("model_type").get<std::string>();
  read_decoder_sizes(j, src, c, f);
  c.norm = NormKind::RMSNorm;
  c.layer_norm_epsilon =
      static_cast<float>(number_in(required(j, "rms_norm_eps", src), "rms_norm_eps", src, 0.0, 1.0));
  c.activation_function = activation(required(j, "hidden_act", src), "hidden_act", src);
  c.gated_mlp = true;
  read_full_rotary(j, src, c);
}

RopeFields rope_fields(const json& j, const std::string& src) {
  RopeFields r;
  for (const char* key : {"rope_scaling", "rope_parameters"}) {
    const json* p = present(j, key);
    if (!p) continue;
    if (!p->is_object()) throw InputError(src, key, "must be an object or null, got " + show(*p));
    r.params = p, r.name = key;
    break;
  }
  if (!r.params) return r;
  // Nested per layer type ({"full_attention": {...}, "sliding_attention": {...}}): one rotary
  // table serves every layer here, so the entries must agree.
  const json* first = nullptr;
  for (const char* type : {"full_attention", "sliding_attention"}) {
    auto it = r.params->find(type);
    if (it == r.params->end() || !it->is_object()) continue;
    if (first && *first != *it)
      throw InputError(src, r.name,
                       "different rotary settings per layer type are not implemented, got " +
                           show(*r.params));
    if (!first) first = &*it, r.name += std::string(".") + type;
  }
  if (first) r.params = first;
  return r;
}

double rope_theta(const json& j, const std::string& src, const std::string& legacy_key) {
  const RopeFields r = rope_fields(j, src);
  if (r.params)
    if (const json* t = present(*r.params, "rope_theta"))
      return positive_number(*t, r.name + ".rope_theta", src);
  if (const json* t = present(j, legacy_key)) return positive_number(*t, legacy_key, src);
  required(j, legacy_key, src);  // throws the "missing" line
  throw InputError(src, legacy_key, "must be a number, got null");
}

std::optional<double> partial_rotary_factor(const json& j, const std::string& src) {
  const RopeFields r = rope_fields(j, src);
  if (!r.params) return std::nullopt;
  const json* f = present(*r.params, "partial_rotary_factor");
  if (!f) return std::nullopt;
  return number_in(*f, r.name + ".partial_rotary_factor", src, 0.0, 1.0);
}

void read_full_rotary(const json& j, const std::string& src, ModelConfig& c) {
  c.rotary_dim = c.d_head();
  c.rope_theta = rope_theta(j, src);
  c.rope_scaling = rope_scaling(j, src);
  // transformers reads partial_rotary_factor in rope_parameters or beside it; these families
  // rotate whole heads, so any other fraction is a model this engine does not implement.
  const RopeFields r = rope_fields(j, src);
  std::string field = r.name + ".partial_rotary_factor";
  std::optional<double> f = partial_rotary_factor(j, src);
  if (!f)
    if (const json* top = present(j, "partial_rotary_factor"))
      f = number_in(*top, "partial_rotary_factor", src, 0.0, 1.0), field = "partial_rotary_factor";
  if (f && *f != 1.0)
    throw InputError(src, field,
                     "unsupported value " + show(json(*f)) + " (model_type \"" + c.model_type +
                         "\" rotates whole heads: only 1 is implemented)");
}

RopeScaling rope_scaling(const json& j, const std::string& src) {
  const RopeFields rf = rope_fields(j, src);
  const json* s = rf.params;
  const std::string& field = rf.name;
  RopeScaling r;
  if (!s) return r;
  const json* type = present(*s, "rope_type");
  if (!type) type = present(*s, "type");  // the older spelling
  const std::string t = type && type->is_string() ? type->get<std::string>() : "";
  // transformers 5 writes {"rope_type": "default", "rope_theta": ...}: no scaling.
  if (t == "default" || (!type && rf.name.starts_with("rope_parameters"))) return r;
  if (t != "llama3")
    throw InputError(src, field,
                     "unsupported rope_type " + (type ? show(*type) : std::string("(none)")) +
                         " (supported: \"default\", \"llama3\")");
  auto factor = [&](const char* key) {
    auto it = s->find(key);
    if (it == s->end())
      throw InputError(src, field + "." + key, "missing (rope_type \"llama3\" requires it)");
    return positive_number(*it, field + "." + key, src);
  };
  r.type = "llama3";
  r.factor = factor("factor");
  r.low_freq_factor = factor("low_freq_factor");
  r.high_freq_factor = factor("high_freq_factor");
  const std::string ctx = "original_max_position_embeddings";
  auto it = s->find(ctx);
  if (it == s->end())
    throw InputError(src, field + "." + ctx, "missing (rope_type \"llama3\" requires it)");
  r.original_max_position_embeddings = positive_int(*it, field + "." + ctx, src);
  if (r.high_freq_factor <= r.low_freq_factor)
    throw InputError(src, field + ".high_freq_factor",
                     "must be larger than low_freq_factor = " + show(json(r.low_freq_factor)));
  return r;
}

std::vector<bool> sliding_layer_types(const json& j, const std::string& src, int n_layer) {
  const json* lt = present(j, "layer_types");
  if (!lt) return {};
  if (!lt->is_array() || static_cast<int>(lt->size()) != n_layer)
    throw InputError(src, "layer_types",
                     "must be a list of " + std::to_string(n_layer) + " layer types, got " +
                         show(*lt));
  std::vector<bool> sliding;
  for (const json& t : *lt) {
    const std::string s = t.is_string() ? t.get<std::string>() : "";
    if (s != "full_attention" && s != "sliding_attention")
      throw InputError(src, "layer_types",
                       "unsupported layer type " + show(t) +
                           " (supported: \"full_attention\", \"sliding_attention\")");
    sliding.push_back(s == "sliding_attention");
  }
  return sliding;
}

}  // namespace causeway::config_fields
