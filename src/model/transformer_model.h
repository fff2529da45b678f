// The forward pass of every supported family (GPT-2, Llama, Mistral, Qwen2/3, GPT-NeoX, Gemma 2)
// with TransformerLens hook points. One function walks the blocks, reading what differs
// between families from ModelConfig (norm kind, rotary, grouped-query heads, gated MLP,
// parallel residual, post-norms, soft-caps, sliding windows), and names every intermediate by
// its hook as it is produced; the plan decides which of them are cached or edited.
//
// A forward can also start part-way (DESIGN.md section 4): at block `start_layer` from a
// baseline's residual stream (prefix reuse), recomputing only positions >= `row_begin` with
// earlier keys and values taken from the baseline (cone restriction), and stop at the final
// normalized residual of one position per row so a metric unembeds only the tokens it reads.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/arena.h"
#include "model/model_weights.h"
#include "model/hooks.h"
#include "model/model_config.h"
#include "model/tensor_shard.h"
#include "model/token_batch.h"
#include "parallel/collectives.h"

namespace causeway {

enum class LogitRows {
  All,   // logits (B, T - row_begin, V)
  Last,  // logits (B, V) at each row's read position (default: its last valid token)
  None,  // no unembedding: only final_residual() (B, C) at each row's read position
};

// Baseline activations of each batch row that a part-way forward reads instead of computing.
// Each pointer is a (T, C) row-major block of that row's baseline run.
class PrefixSource {
 public:
  virtual ~PrefixSource() = default;
  virtual const float* resid_pre(int row, int layer) const = 0;  // blocks.L.hook_resid_pre
  // The keys as attention reads them: blocks.L.attn.hook_k, or hook_rot_k for rotary models
  // (attention_keys_hook below).
  virtual const float* keys(int row, int layer) const = 0;
  virtual const float* values(int row, int layer) const = 0;     // blocks.L.attn.hook_v
};

struct ForwardOptions {
  LogitRows rows = LogitRows::All;
  int start_layer = 0;                    // > 0 needs `prefix`
  int row_begin = 0;                      // > 0 needs `prefix`
  const PrefixSource* prefix = nullptr;   // with start_layer 0, the embeddings are skipped
  const std::vector<int>* read_pos = nullptr;  // per row, for Last / None; >= row_begin
};

// What a backward pass computes besides the activation gradients it needs.
struct BackwardRequest {
  std::vector<HookPoint> hooks;         // store d(metric)/d(hook value) for these
  ModelWeights* weight_grads = nullptr;  // accumulate parameter gradients here (training)
  // GradDrop (AtP*): backpropagate as if block `drop_layer` added nothing to the residual
  // stream, so gradients reaching earlier layers skip its attention and MLP; -1 = none.
  int drop_layer = -1;
};

class TransformerModel {
 public:
  TransformerModel(ModelConfig cfg, ModelWeights weights, std::unique_ptr<Backend> backend);
  // One tensor-parallel rank of a replica: `weights` hold the slices of `shard` (its
  // local(cfg) shapes) and `tp` is the replica's group; the forward's outputs (logits, the
  // residual stream, final_residual) are the whole model's on every rank, while head and MLP
  // hooks hold this rank's heads and units.
  TransformerModel(ModelConfig cfg, ModelWeights weights, std::unique_ptr<Backend> backend,
                   TensorShard shard, const Collectives* tp);
  ~TransformerModel();
  TransformerModel(TransformerModel&&) noexcept;
  TransformerModel& operator=(TransformerModel&&) noexcept;
  // Reads `dir`/config.json and the safetensors weights; throws InputError on bad files.
  // `dtype` F32 widens every matrix on load; BF16 / F16 keep them in 16 bits (compute is fp32).
  static TransformerModel load(const std::filesystem::path& dir, DType dtype = DType::F32);
  // Rank tp->rank() of a tensor-parallel replica over `tp` (kept by the caller): reads only
  // this rank's slices. InputError when tp->size() does not fit the model (tensor_shard.h).
  static TransformerModel load(const std::filesystem::path& dir, DType dtype,
                               const Collectives* tp);

  const ModelConfig& config() const { return cfg_; }
  // The sizes this rank computes with: config() unless tensor-parallel (tensor_shard.h).
  const ModelConfig& local_config() const { return lc_; }
  const TensorShard& shard() const { return shard_; }
  // The replica's group under tensor parallelism (nullptr otherwise), for callers that must
  // combine per-rank values the way the forward does.
  const Collectives* tp() const { return tp_; }
  const ModelWeights& weights() const { return weights_; }
  ModelWeights& weights() { return weights_; }

  // Checks token ids and lengths against the model; `source` names where they came from.
  void validate(const TokenBatch& batch, const std::string& source = "tokens") const;

  // Runs the model; returned views live until the next forward. Hook values cover positions
  // row_begin..T-1 (HookContext::row_begin says so); scores and patterns keep all T keys.
  Tensor forward(const TokenBatch& batch, HookPlan& plan, const ForwardOptions& options);
  Tensor forward(const TokenBatch& batch, HookPlan& plan, LogitRows rows = LogitRows::All);
  Tensor forward(const TokenBatch& batch, LogitRows rows = LogitRows::All);

  // Adds to `plan` the hooks a backward pass reads: run a full forward (all positions) with it,
  // then call backward with plan.activations().
  void cache_for_backward(HookPlan& plan) const;
  // Backpropagates d_final (B, T, C), the gradient with respect to ln_final's output, through
  // the cached forward. Requested hook gradients go to `grads` with the hooks' shapes.
  void backward(const TokenBatch& batch, const ActivationCache& acts, const float* d_final,
                const BackwardRequest& request, ActivationCache& grads);
  // Next-token training: mean cross-entropy of logits at every (b, t) with targets[b*T+t] >= 0;
  // adds the parameter gradients to `grads` (zero it first) and returns the loss.
  double loss_and_gradients(const TokenBatch& batch, const std::vector<int32_t>& targets,
                            ModelWeights& grads);

  // Bytes of the activation workspace of a forward of B rows of T positions with `logit_rows`
  // logits rows (B for LogitRows::Last), for a rank computing with `local` sizes: the sizing
  // of a dry run, from the same table ensure_workspace allocates.
  static int64_t workspace_bytes(const ModelConfig& cfg, const ModelConfig& local, int tp, int B,
                                 int T, bool need_result, int64_t logit_rows);

  // Gradients at the circuit graph's receivers of block `layer` (patching/circuit_graph.h),
  // from a backward's hook gradients `grads` (hook_q, hook_k, hook_v and ln2.hook_normalized of
  // the layer; hook_resid_post of the last layer for layer = n_layer) and the forward's `acts`
  // (hook_resid_pre and hook_resid_mid of the layer): out (B, R, T, C), R =
  // receivers_in_layer: each query head's, key and value head's and the MLP's input gradient as
  // if it read its own copy of the residual stream. Not under tp.
  void receiver_input_gradients(const ActivationCache& acts, const ActivationCache& grads,
                                int layer, int B, int T, float* out) const;

  // (B, C): ln_final's output at each row's read position, after a Last or None forward.
  Tensor final_residual() const;
  // out (B, n) = final (B, C) . W_U[tokens[j]] for each j: logits of just those tokens.
  void unembed_tokens(const Tensor& final, const int32_t* tokens, int n, float* out) const;
  // out (B, shard().vocab_rows) = the logits of this rank's vocabulary block for final (B, C),
  // soft-capped, no collective (rows past vocab_size are padding): for metrics that reduce
  // over the vocabulary across the replica instead of gathering whole rows.
  void unembed_local(const Tensor& final, float* out) const;

 private:
  struct Workspace;
  struct BackwardWorkspace;
  void ensure_workspace(int B, int T, bool need_result, int64_t logit_rows,
                        bool need_split = false);
  void split_input(HookPlan& plan, const HookContext& ctx, float* out, const BlockWeights& w,
                   const WeightMatrix& W, const float* bias, int heads);
  void norm(HookPlan& plan, const HookContext& ctx, HookKind normalized, float* out,
             const float* inp, const Tensor& w, const Tensor& b, int64_t rows, int width,
             int heads);
  void full_rows(const HookContext& ctx, const ForwardOptions& o, const float* fresh, bool keys,
                 float* full);

  // The vocabulary-parallel embedding lookup and unembedding of a tensor-parallel rank.
  void embed_shard(float* out, const TokenBatch& batch, int64_t N) const;
  void gather_logits(float* out, const float* local, int64_t rows);

  ModelConfig cfg_;
  ModelConfig lc_;  // local sizes (= cfg_ without tensor parallelism)
  TensorShard shard_;
  const Collectives* tp_ = nullptr;
  ModelWeights weights_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Workspace> ws_;
  std::unique_ptr<BackwardWorkspace> bws_;
  HookPlan no_hooks_;
  std::vector<float> inv_freq_;  // rotary frequencies, (rotary_dim / 2)
  // Tensor-parallel scratch, grown to the largest batch seen: this rank's local token ids of
  // the embedding, and one token's logits column of unembed_tokens.
  mutable std::vector<int32_t> shard_ids_;
  mutable std::vector<float> token_column_;
};

// Checks token ids and lengths against a model's config; `source` names where they came from.
void validate_tokens(const ModelConfig& cfg, const TokenBatch& batch, const std::string& source);

// Receivers of block `layer` in the circuit graph: H query + 2 KV key/value heads + the MLP,
// or 1 (Resid End) for layer = n_layer.
int receivers_in_layer(const ModelConfig& cfg, int layer);

// The hooks a backward pass reads at every layer (what cache_for_backward caches).
std::vector<HookKind> backward_hook_kinds(const ModelConfig& cfg);

// The hook whose value attention reads as keys, cached by the patching engine for prefix reuse.
HookKind attention_keys_hook(const ModelConfig& cfg);

}  // namespace causeway
