#include "patching/circuit_graph.h"

#include "core/error.h"
#include "model/model_config.h"

namespace causeway {

namespace {

// prefix + number, appended rather than concatenated (GCC 12 warns falsely on "..." + string).
std::string numbered(const char* prefix, int n) {
  std::string s(prefix);
  s += std::to_string(n);
  return s;
}

}  // namespace

CircuitGraph::CircuitGraph(const ModelConfig& cfg)
    : n_layer_(cfg.n_layer), H_(cfg.n_head), KV_(cfg.kv_heads()) {
  senders_.push_back({SenderKind::ResidStart, -1, -1, "Resid Start"});
  for (int L = 0; L < n_layer_; ++L) {
    for (int h = 0; h < H_; ++h)
      senders_.push_back({SenderKind::Head, L, h, numbered("A", L) + "." + std::to_string(h)});
    senders_.push_back({SenderKind::Mlp, L, -1, numbered("MLP ", L)});
  }
  for (int L = 0; L < n_layer_; ++L) {
    // Layer L's attention reads everything before the layer; its MLP also reads the layer's
    // heads, unless the residual is parallel (GPT-NeoX: the MLP reads resid_pre).
    const int before = 1 + L * (H_ + 1);
    const std::string a = numbered("A", L) + ".";
    for (int h = 0; h < H_; ++h)
      receivers_.push_back({ReceiverKind::Query, L, h, a + std::to_string(h) + ".Q"});
    for (int g = 0; g < KV_; ++g)
      receivers_.push_back({ReceiverKind::Key, L, g, a + std::to_string(g) + ".K"});
    for (int g = 0; g < KV_; ++g)
      receivers_.push_back({ReceiverKind::Value, L, g, a + std::to_string(g) + ".V"});
    receivers_.push_back({ReceiverKind::Mlp, L, -1, numbered("MLP ", L)});
    senders_into_.insert(senders_into_.end(), static_cast<size_t>(H_ + 2 * KV_), before);
    senders_into_.push_back(cfg.parallel_residual ? before : before + H_);
  }
  receivers_.push_back({ReceiverKind::ResidEnd, n_layer_, -1, "Resid End"});
  senders_into_.push_back(n_senders());
  for (int n : senders_into_) edge_count_ += n;
}

std::string CircuitGraph::edge_name(int s, int r) const {
  return senders_[static_cast<size_t>(s)].name + "->" + receivers_[static_cast<size_t>(r)].name;
}

int CircuitGraph::find_sender(const std::string& name) const {
  for (int s = 0; s < n_senders(); ++s)
    if (senders_[static_cast<size_t>(s)].name == name) return s;
  return -1;
}

int CircuitGraph::find_receiver(const std::string& name) const {
  for (int r = 0; r < n_receivers(); ++r)
    if (receivers_[static_cast<size_t>(r)].name == name) return r;
  return -1;
}

std::pair<int, int> CircuitGraph::parse_edge(const std::string& name,
                                             const std::string& source) const {
  const size_t arrow = name.find("->");
  if (arrow == std::string::npos)
    throw InputError(source, name, "an edge is written \"sender->receiver\", e.g. \"A0.1->A1.2.Q\"");
  const int s = find_sender(name.substr(0, arrow));
  const int r = find_receiver(name.substr(arrow + 2));
  if (s < 0) throw InputError(source, name, "unknown sender \"" + name.substr(0, arrow) + "\"");
  if (r < 0) throw InputError(source, name, "unknown receiver \"" + name.substr(arrow + 2) + "\"");
  if (!has_edge(s, r))
    throw InputError(source, name, "no such edge: the sender does not come before the receiver");
  return {s, r};
}

}  // namespace causeway
