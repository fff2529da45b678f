// Times the GPT-2 forward on a batch of random tokens and measures this machine's sgemm peak
// in the same process, so the forward's GFLOP/s can be stated as a fraction of it. Prints one
// JSON object; bench/forward_vs_pytorch.py runs it beside PyTorch.
#include <cblas.h>

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "backend/backend.h"
#include "backend/ops_linear.h"
#include "cli/compute_choice.h"
#include "model/model_weights.h"
#include "model/transformer_model.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// CPU seconds of this process, all threads: on a machine other jobs share, the forward's CPU
// time is a fairer figure than its wall time, which counts the time its threads waited.
double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Best-of-n GFLOP/s of one sgemm at the MLP's shape (B*T x C) @ (C x 4C), the largest GEMM of
// a block: the peak the forward can hope to approach on this machine.
double sgemm_peak_gflops(int M, int K, int N, int repeats) {
  std::vector<float> a(static_cast<size_t>(M) * K, 0.5f), b(static_cast<size_t>(K) * N, 0.25f),
      c(static_cast<size_t>(M) * N);
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    auto t0 = Clock::now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, a.data(), K, b.data(),
                N, 0.0f, c.data(), N);
    best = std::min(best, seconds_since(t0));
  }
  return 2.0 * M * K * N / best / 1e9;
}

// Multiply-adds of a forward, counted as 2 FLOPs each: projections, attention (causal half
// of the T x T products) and the unembedding of every position.
double forward_flops(const causeway::ModelConfig& c, int B, int T) {
  const double N = static_cast<double>(B) * T, C = c.n_embd, M = c.n_inner;
  const double Q = static_cast<double>(c.n_head) * c.d_head(),
               KV = static_cast<double>(c.kv_heads()) * c.d_head();
  const double per_layer = 2.0 * N * (2.0 * C * Q + 2.0 * C * KV + (c.gated_mlp ? 3.0 : 2.0) * C * M) +
                           2.0 * 2.0 * B * (T * (T + 1) / 2.0) * Q;
  return c.n_layer * per_layer + 2.0 * N * C * c.vocab_size;
}

// VmHWM of this process image. getrusage's ru_maxrss is not used: Linux carries it over
// exec from the parent, so a benchmark started from a large Python process would report that.
double peak_rss_kb() {
  std::ifstream status("/proc/self/status");
  std::string key;
  double kb = 0.0;
  while (status >> key) {
    if (key == "VmHWM:") {
      status >> kb;
      break;
    }
    status.ignore(1 << 20, '\n');
  }
  return kb;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"causeway forward benchmark: tokens/s, GFLOP/s and sgemm peak, as JSON"};
  std::string model_dir;
  std::string dtype = "f32", compute = "f32";
  int batch = 8, seq = 128, threads = 1, repeats = 5;
  app.add_option("--model", model_dir, "Hugging Face checkpoint folder (any supported family)")
      ->required();
  app.add_option("--dtype", dtype, "weight matrices held as f32, bf16 or f16")
      ->capture_default_str();
  app.add_option("--compute", compute,
                 "bf16 weights multiplied in f32 (widened) or bf16 (bf16 dot products where the "
                 "CPU has them; see README, bf16 compute)")
      ->capture_default_str();
  app.add_option("--batch", batch, "sequences per forward")->capture_default_str();
  app.add_option("--seq", seq, "tokens per sequence")->capture_default_str();
  app.add_option("--threads", threads, "CPU threads")->capture_default_str();
  app.add_option("--repeats", repeats, "timed forwards (best and median reported)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  causeway::set_cpu_threads(threads);
  const causeway::DType held = causeway::parse_weight_dtype(dtype, "--dtype", "");
  const auto chosen = causeway::parse_compute(compute, "--compute", "");
  causeway::check_compute_fits_dtype(chosen, held, "--compute", "");
  causeway::cpu::set_sixteen_bit_compute(chosen);
  auto t_load = Clock::now();
  causeway::TransformerModel model = causeway::TransformerModel::load(model_dir, held);
  const double load_s = seconds_since(t_load);
  const auto& cfg = model.config();

  std::mt19937 rng(0);
  std::uniform_int_distribution<int32_t> tok(0, cfg.vocab_size - 1);
  std::vector<std::vector<int32_t>> rows(batch, std::vector<int32_t>(seq));
  for (auto& r : rows)
    for (auto& t : r) t = tok(rng);
  const causeway::TokenBatch tb = causeway::TokenBatch::padded(rows);

  model.forward(tb);  // warm-up: workspace allocation, page faults, BLAS thread start
  std::vector<double> times, cpu_times;
  for (int r = 0; r < repeats; ++r) {
    auto t0 = Clock::now();
    const double c0 = process_cpu_seconds();
    model.forward(tb);
    cpu_times.push_back(process_cpu_seconds() - c0);
    times.push_back(seconds_since(t0));
  }
  std::sort(times.begin(), times.end());
  std::sort(cpu_times.begin(), cpu_times.end());
  const double median = times[times.size() / 2], best = times.front();
  const double cpu_median = cpu_times[cpu_times.size() / 2];

  const double peak_rss_mb = peak_rss_kb() / 1024.0;
  const double weight_mb = model.weights().arena().bytes() / 1048576.0;
  const double flops = forward_flops(cfg, batch, seq);
  const double peak = sgemm_peak_gflops(batch * seq, cfg.n_embd, cfg.n_inner, 5);

  std::printf(
      "{\"threads\": %d, \"batch\": %d, \"seq\": %d, \"load_s\": %.3f, \"median_s\": %.5f, "
      "\"best_s\": %.5f, \"cpu_median_s\": %.5f, \"tokens_per_s\": %.1f, \"gflops\": %.2f, "
      "\"sgemm_peak_gflops\": %.2f, \"fraction_of_peak\": %.3f, \"peak_rss_mb\": %.1f, "
      "\"weights_mb\": %.1f, \"bf16_dot_products\": %s}\n",
      threads, batch, seq, load_s, median, best, cpu_median, batch * seq / median,
      flops / median / 1e9, peak, flops / median / 1e9 / peak, peak_rss_mb, weight_mb,
      causeway::cpu::bf16_compute_native() ? "true" : "false");
  return 0;
}
