// Rotary position embeddings, NeoX rotate_half layout (see backend/ops_rotary.h).
// Angles are formed and their sine/cosine taken in double, then rounded once: the golden
// references compute them in fp32, and double keeps us within an ulp or so of the exact value
// at any position instead of adding fp32 angle error of our own on long sequences.
#include <cmath>

#include "backend/cpu/vec_math.h"
#include "backend/ops_rotary.h"

namespace causeway::cpu {

void rotary_inv_freq(float* inv_freq, int rotary_dim, double theta,
                     const RotaryLlama3Scaling* llama3) {
  const int half = rotary_dim / 2;
  for (int i = 0; i < half; ++i) {
    double f = 1.0 / std::pow(theta, static_cast<double>(2 * i) / rotary_dim);
    if (llama3) {
      // Hugging Face's _compute_llama3_parameters: wavelengths longer than the original
      // context / low_freq_factor are stretched by `factor`, those shorter than
      // context / high_freq_factor kept; in between (both ends included) a linear blend in
      // context / wavelength.
      const double ctx = llama3->original_max_position_embeddings;
      const double low_wavelen = ctx / llama3->low_freq_factor;
      const double high_wavelen = ctx / llama3->high_freq_factor;
      const double wavelen = 2.0 * M_PI / f;
      if (wavelen > low_wavelen) {
        f = f / llama3->factor;
      } else if (wavelen >= high_wavelen) {
        const double s = (ctx / wavelen - llama3->low_freq_factor) /
                         (llama3->high_freq_factor - llama3->low_freq_factor);
        f = (1.0 - s) * f / llama3->factor + s * f;
      }
    }
    inv_freq[i] = static_cast<float>(f);
  }
}

namespace {

// cos/sin of one row's angles are staged on the stack in blocks of this many pairs, so the
// per-head loop below is a plain contiguous SIMD loop and the op never allocates; heads wider
// than 2 * kBlock dims are simply done in several blocks.
constexpr int kBlock = 128;

// sign = +1: the forward rotation; sign = -1: its transpose (sin negated).
CAUSEWAY_SIMD_CLONES
void rotate(float* out, const float* inp, const int32_t* positions, int64_t N, int NH, int HS,
            int rotary_dim, const float* inv_freq, float sign) {
  const int half = rotary_dim / 2;
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    const double pos = positions[n];
    float c[kBlock], s[kBlock];
    for (int i0 = 0; i0 < half; i0 += kBlock) {
      const int len = half - i0 < kBlock ? half - i0 : kBlock;
      for (int i = 0; i < len; ++i) {
        const double a = pos * static_cast<double>(inv_freq[i0 + i]);
        c[i] = static_cast<float>(std::cos(a));
        s[i] = sign * static_cast<float>(std::sin(a));
      }
      for (int h = 0; h < NH; ++h) {
        const float* x = inp + (n * NH + h) * HS + i0;
        float* y = out + (n * NH + h) * HS + i0;
        // Index i reads and writes only i and i + half, so in-place use is safe.
#pragma omp simd
        for (int i = 0; i < len; ++i) {
          const float x1 = x[i], x2 = x[i + half];
          y[i] = x1 * c[i] - x2 * s[i];
          y[i + half] = x2 * c[i] + x1 * s[i];
        }
      }
    }
    if (out != inp && rotary_dim < HS) {
      for (int h = 0; h < NH; ++h) {
        const float* x = inp + (n * NH + h) * HS;
        float* y = out + (n * NH + h) * HS;
#pragma omp simd
        for (int j = rotary_dim; j < HS; ++j) y[j] = x[j];
      }
    }
  }
}

}  // namespace

void rotary_forward(float* out, const float* inp, const int32_t* positions, int64_t N, int NH,
                    int HS, int rotary_dim, const float* inv_freq) {
  rotate(out, inp, positions, N, NH, HS, rotary_dim, inv_freq, 1.0f);
}

void rotary_backward(float* d_inp, const float* d_out, const int32_t* positions, int64_t N,
                     int NH, int HS, int rotary_dim, const float* inv_freq) {
  rotate(d_inp, d_out, positions, N, NH, HS, rotary_dim, inv_freq, -1.0f);
}

}  // namespace causeway::cpu
