#include "model/model_config.h"

#include <charconv>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace causeway {

namespace {

using json = nlohmann::json;

// A value as it appeared in the file, shortened so one bad field cannot flood the message.
std::string show(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

// GPT2Config.attribute_map: transformers accepts these generic names for the GPT-2 ones.
const char* alias_of(std::string_view key) {
  if (key == "n_embd") return "hidden_size";
  if (key == "n_positions") return "max_position_embeddings";
  if (key == "n_head") return "num_attention_heads";
  if (key == "n_layer") return "num_hidden_layers";
  return nullptr;
}

// The value under `key` or its alias (null when neither is there); both present and
// different is ambiguous, so it is an error rather than a silent pick.
const json* lookup(const json& j, const std::string& key, const std::string& src) {
  auto it = j.find(key);
  const json* v = it != j.end() ? &*it : nullptr;
  if (const char* alias = alias_of(key)) {
    auto a = j.find(alias);
    if (a != j.end()) {
      if (v && *v != *a)
        throw InputError(src, key,
                         show(*v) + " disagrees with its alias " + alias + " = " + show(*a));
      if (!v) v = &*a;
    }
  }
  return v;
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

int required_int(const json& j, const std::string& key, const std::string& src) {
  const json* v = lookup(j, key, src);
  if (!v) {
    const char* alias = alias_of(key);
    throw InputError(src, key,
                     std::string("missing (a GPT-2 config.json must set it") +
                         (alias ? std::string(" or its alias ") + alias : "") + ")");
  }
  return positive_int(*v, key, src);
}

// The shortest decimal that reads back as `f`, as a double: 1e-5f is written "1e-05", not
// "9.999999747378752e-06".
double float_as_written(float f) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, f);
  return std::strtod(std::string(buf, r.ptr).c_str(), nullptr);
}

}  // namespace

ModelConfig ModelConfig::from_json_text(std::string_view text, const std::string& src) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw InputError(src, "", std::string("malformed JSON: ") + e.what());
  }
  if (!j.is_object()) throw InputError(src, "", "must be a JSON object, got " + show(j));

  ModelConfig c;
  auto mt = j.find("model_type");
  if (mt == j.end()) throw InputError(src, "model_type", "missing (supported: \"gpt2\")");
  if (!mt->is_string() || mt->get<std::string>() != "gpt2")
    throw InputError(src, "model_type",
                     "unsupported model type " + show(*mt) + " (supported: \"gpt2\")");
  c.model_type = "gpt2";

  c.n_layer = required_int(j, "n_layer", src);
  c.n_embd = required_int(j, "n_embd", src);
  c.n_head = required_int(j, "n_head", src);
  c.n_positions = required_int(j, "n_positions", src);
  c.vocab_size = required_int(j, "vocab_size", src);
  if (c.n_embd % c.n_head != 0)
    throw InputError(src, "n_embd",
                     std::to_string(c.n_embd) + " is not divisible by n_head = " +
                         std::to_string(c.n_head));

  auto inner = j.find("n_inner");
  if (inner == j.end() || inner->is_null()) {
    if (c.n_embd > INT_MAX / 4)
      throw InputError(src, "n_embd", "too large: 4 * n_embd overflows the MLP width");
    c.n_inner = 4 * c.n_embd;
  } else {
    c.n_inner = positive_int(*inner, "n_inner", src);
  }

  auto eps = j.find("layer_norm_epsilon");
  if (eps != j.end()) {
    const bool ok = eps->is_number() && std::isfinite(eps->get<double>()) &&
                    eps->get<double>() >= 0.0 && eps->get<double>() <= 1.0;
    if (!ok)
      throw InputError(src, "layer_norm_epsilon",
                       "must be a number in [0, 1], got " + show(*eps));
    c.layer_norm_epsilon = static_cast<float>(eps->get<double>());
  }

  auto act = j.find("activation_function");
  if (act != j.end()) {
    const std::string a = act->is_string() ? act->get<std::string>() : "";
    if (a == "gelu_new" || a == "gelu_pytorch_tanh")  // the same tanh approximation
      c.activation_function = "gelu_new";
    else if (a == "gelu")
      c.activation_function = "gelu";
    else
      throw InputError(src, "activation_function",
                       "unsupported activation " + show(*act) +
                           " (supported: \"gelu_new\", \"gelu_pytorch_tanh\", \"gelu\")");
  }

  // These change the attention maths; the engine implements only the GPT-2 default.
  auto saw = j.find("scale_attn_weights");
  if (saw != j.end() && !(saw->is_boolean() && saw->get<bool>()))
    throw InputError(src, "scale_attn_weights",
                     "unsupported value " + show(*saw) + " (only true is implemented)");
  auto inv = j.find("scale_attn_by_inverse_layer_idx");
  if (inv != j.end() && !(inv->is_boolean() && !inv->get<bool>()))
    throw InputError(src, "scale_attn_by_inverse_layer_idx",
                     "unsupported value " + show(*inv) + " (only false is implemented)");
  return c;
}

ModelConfig ModelConfig::from_json_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path.string(), "", "cannot open the model config (no such file?)");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw InputError(path.string(), "", "read error");
  return from_json_text(ss.str(), path.string());
}

nlohmann::json ModelConfig::to_json() const {
  json j;
  j["architectures"] = json::array({"GPT2LMHeadModel"});
  j["model_type"] = model_type;
  j["n_layer"] = n_layer;
  j["n_embd"] = n_embd;
  j["n_head"] = n_head;
  j["n_positions"] = n_positions;
  j["vocab_size"] = vocab_size;
  j["n_inner"] = n_inner;
  j["layer_norm_epsilon"] = float_as_written(layer_norm_epsilon);
  j["activation_function"] = activation_function;
  j["scale_attn_weights"] = true;
  j["scale_attn_by_inverse_layer_idx"] = false;
  j["tie_word_embeddings"] = true;
  return j;
}

}  // namespace causeway
