#include "model/weight_table.h"

#include "model/families/families.h"
#include "model/model_config.h"

namespace causeway {

const char* tp_split_name(TpSplit s) {
  switch (s) {
    case TpSplit::Column: return "column";
    case TpSplit::Row: return "row";
    case TpSplit::Vocabulary: return "vocabulary";
    case TpSplit::Replicated: return "replicated";
  }
  return "?";
}

namespace {
std::string with_layer(std::string s, int L) {
  const std::string mark = "{L}";
  for (size_t at = s.find(mark); at != std::string::npos; at = s.find(mark, at))
    s.replace(at, mark.size(), std::to_string(L));
  return s;
}
}  // namespace

std::vector<WeightRow> expand_layers(const std::vector<WeightRow>& rows, int n_layer) {
  std::vector<WeightRow> out;
  for (const WeightRow& r : rows)
    if (r.hf_name.find("{L}") == std::string::npos) out.push_back(r);
  for (int L = 0; L < n_layer; ++L)
    for (const WeightRow& r : rows)
      if (r.hf_name.find("{L}") != std::string::npos) {
        WeightRow e = r;
        e.tl_name = with_layer(r.tl_name, L);
        e.hf_name = with_layer(r.hf_name, L);
        out.push_back(std::move(e));
      }
  return out;
}

std::vector<WeightRow> weight_table(const ModelConfig& cfg) {
  return expand_layers(family_for(cfg.model_type, "config.json").weights(cfg), cfg.n_layer);
}

}  // namespace causeway
