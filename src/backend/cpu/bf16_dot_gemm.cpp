// oneDNN's matmul primitive (bf16 x bf16 -> fp32), one per shape, built once and kept: building
// one costs far more than a small matmul. oneDNN JITs for the CPU it runs on and uses the same
// OpenMP threads as the rest of causeway. Without oneDNN (CAUSEWAY_HAVE_ONEDNN unset) the fast
// path is never available and every 16-bit matmul widens.
#include "backend/cpu/bf16_dot_gemm.h"

#include <cstdlib>
#include <cstring>
#include <vector>

#include "backend/cpu/vec_math.h"

#if CAUSEWAY_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#endif

namespace causeway::cpu {

bool bf16_dot_products_available() {
#if CAUSEWAY_HAVE_ONEDNN && defined(__x86_64__) && defined(__GNUC__)
  static const bool available = [] {
    const char* env = std::getenv("CAUSEWAY_CPU_BF16");
    return __builtin_cpu_supports("avx512bf16") && !(env != nullptr && std::strcmp(env, "0") == 0);
  }();
  return available;
#else
  return false;
#endif
}

#if CAUSEWAY_HAVE_ONEDNN

namespace {

// Round to nearest even, NaN kept a quiet NaN (as f32_to_bf16), written branch-free so that
// the loop vectorizes.
CAUSEWAY_SIMD_CLONES
void round_row_to_bf16(uint16_t* out, const float* row, int64_t K) {
#pragma omp simd
  for (int64_t k = 0; k < K; ++k) {
    uint32_t bits;
    std::memcpy(&bits, row + k, sizeof(bits));
    const uint32_t rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
    const uint32_t quiet_nan = (bits >> 16) | 0x0040u;
    out[k] = static_cast<uint16_t>((bits & 0x7FFFFFFFu) > 0x7F800000u ? quiet_nan : rounded);
  }
}

using Shape = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool>;

struct Kernel {
  dnnl::matmul matmul;
  dnnl::memory::desc a, b, c;
};

struct Context {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  std::mutex mutex;
  std::map<Shape, std::unique_ptr<Kernel>> kernels;  // null: only a reference kernel exists
};

Context& context() {
  static Context c;
  return c;
}

// The primitive for one shape, or null when oneDNN has nothing faster than its reference code.
const Kernel* kernel_for(const Shape& shape) {
  Context& ctx = context();
  std::lock_guard<std::mutex> lock(ctx.mutex);
  auto found = ctx.kernels.find(shape);
  if (found != ctx.kernels.end()) return found->second.get();
  const auto [M, K, J, ldc, ldb, j_major, accumulate] = shape;
  using dt = dnnl::memory::data_type;
  auto kernel = std::make_unique<Kernel>();
  kernel->a = dnnl::memory::desc({M, K}, dt::bf16, dnnl::memory::dims{K, 1});
  kernel->b = dnnl::memory::desc({K, J}, dt::bf16,
                                 j_major ? dnnl::memory::dims{1, ldb} : dnnl::memory::dims{ldb, 1});
  kernel->c = dnnl::memory::desc({M, J}, dt::f32, dnnl::memory::dims{ldc, 1});
  dnnl::primitive_attr attr;
  if (accumulate) {
    dnnl::post_ops ops;
    ops.append_sum(1.0f);
    attr.set_post_ops(ops);
  }
  try {
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(kernel->a, kernel->b, kernel->c), attr,
                                    ctx.engine);
    if (std::strncmp(pd.impl_info_str(), "ref", 3) == 0) {
      kernel.reset();
    } else {
      kernel->matmul = dnnl::matmul(pd);
    }
  } catch (const dnnl::error&) {  // this shape or layout is not supported: widen instead
    kernel.reset();
  }
  return (ctx.kernels[shape] = std::move(kernel)).get();
}

}  // namespace

bool bf16_dot_gemm(float* C, int64_t ldc, const float* A, int64_t lda, int64_t M,
                   const uint16_t* b, int64_t K, int64_t J, bool j_major, int64_t ldb,
                   bool accumulate) {
  if (!bf16_dot_products_available()) return false;
  const Kernel* kernel = kernel_for({M, K, J, ldc, ldb, j_major, accumulate});
  if (kernel == nullptr) return false;
  thread_local std::vector<uint16_t> rounded;
  if (static_cast<int64_t>(rounded.size()) < M * K) rounded.resize(M * K);
  uint16_t* a16 = rounded.data();  // the calling thread's buffer (the workers have their own)
#pragma omp parallel for schedule(static)
  for (int64_t m = 0; m < M; ++m) round_row_to_bf16(a16 + m * K, A + m * lda, K);
  const dnnl::engine& engine = context().engine;
  thread_local dnnl::stream stream(engine);
  dnnl::memory a(kernel->a, engine, a16);
  dnnl::memory w(kernel->b, engine, const_cast<uint16_t*>(b));
  dnnl::memory c(kernel->c, engine, C);
  kernel->matmul.execute(stream, {{DNNL_ARG_SRC, a}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, c}});
  stream.wait();
  return true;
}

#else

bool bf16_dot_gemm(float*, int64_t, const float*, int64_t, int64_t, const uint16_t*, int64_t,
                   int64_t, bool, int64_t, bool) {
  return false;
}

#endif

}  // namespace causeway::cpu
