// The computational graph of a model at head granularity, as ACDC and auto-circuit draw it.
// Senders write to the residual stream: "Resid Start" (the embeddings), each head "A{L}.{h}"
// (its hook_result, after Gemma's post-norm) and each MLP "MLP {L}". Receivers read from it:
// each head's query, key and value input "A{L}.{h}.Q" / ".K" / ".V" (key and value per
// key/value head), each MLP's input "MLP {L}" and the logits' input "Resid End". Both lists
// are in forward order, and a receiver reads every sender before it, so the senders of a
// receiver are a prefix of senders(): an edge is (sender index, receiver index) with
// sender < senders_into(receiver).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace causeway {

struct ModelConfig;

enum class SenderKind : uint8_t { ResidStart, Head, Mlp };
enum class ReceiverKind : uint8_t { Query, Key, Value, Mlp, ResidEnd };

struct GraphSender {
  SenderKind kind;
  int layer = -1;  // -1 for Resid Start
  int head = -1;
  std::string name;
};

struct GraphReceiver {
  ReceiverKind kind;
  int layer = -1;  // n_layer for Resid End
  int head = -1;   // query head, or key/value head for K and V
  std::string name;
};

class CircuitGraph {
 public:
  explicit CircuitGraph(const ModelConfig& cfg);

  const std::vector<GraphSender>& senders() const { return senders_; }
  const std::vector<GraphReceiver>& receivers() const { return receivers_; }
  int n_senders() const { return static_cast<int>(senders_.size()); }
  int n_receivers() const { return static_cast<int>(receivers_.size()); }
  // How many senders (a prefix of senders()) feed receiver r.
  int senders_into(int r) const { return senders_into_[static_cast<size_t>(r)]; }
  bool has_edge(int s, int r) const { return s < senders_into(r); }
  int64_t edge_count() const { return edge_count_; }
  std::string edge_name(int s, int r) const;

  // Index helpers. Receivers of layer L are [receiver_begin(L), receiver_begin(L + 1));
  // receiver_begin(n_layer) is Resid End.
  int head_sender(int layer, int head) const { return 1 + layer * (H_ + 1) + head; }
  int mlp_sender(int layer) const { return 1 + layer * (H_ + 1) + H_; }
  int receiver_begin(int layer) const { return layer * (H_ + 2 * KV_ + 1); }
  int query_receiver(int layer, int head) const { return receiver_begin(layer) + head; }
  int key_receiver(int layer, int kv) const { return receiver_begin(layer) + H_ + kv; }
  int value_receiver(int layer, int kv) const { return receiver_begin(layer) + H_ + KV_ + kv; }
  int mlp_receiver(int layer) const { return receiver_begin(layer) + H_ + 2 * KV_; }
  int resid_end() const { return n_receivers() - 1; }
  int n_layer() const { return n_layer_; }
  int n_head() const { return H_; }
  int kv_heads() const { return KV_; }

  // Parses "sender->receiver" (edge_name's form); throws InputError naming `source`.
  std::pair<int, int> parse_edge(const std::string& name, const std::string& source) const;
  // Index of a sender or receiver by name, or -1.
  int find_sender(const std::string& name) const;
  int find_receiver(const std::string& name) const;

 private:
  int n_layer_, H_, KV_;
  std::vector<GraphSender> senders_;
  std::vector<GraphReceiver> receivers_;
  std::vector<int> senders_into_;
  int64_t edge_count_ = 0;
};

}  // namespace causeway
