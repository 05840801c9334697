// One-pass CPU kernels for DP ReLU / Dual Line.
//
// forward:  y = slope(x) * x + m, slope = pos for x >= 0 (including -0.0), neg otherwise
// backward: grad_x = g * slope(x); d_pos = sum g*x [x>=0]; d_neg = sum g*x [x<0]; d_m = sum g
//
// Backward reads x and g once and computes grad_x and the parameter reductions
// in the same sweep; forward saves nothing but x (no masks).
//
// The branch on the sign is computed from the float's bits on purpose: with the
// baseline x86-64 instruction set (no SSE4.1 blend), gcc turns `v >= 0 ? p : q`
// into a real branch, which mispredicts on random signs (about 8x slower than
// ReLU here); the sign bit as a 0/1 float vectorizes with plain SSE2. -0.0
// counts as non-negative, as `x >= 0` does in the reference.
//
// Reductions are accumulated per fixed-size chunk and summed in chunk order, so
// results do not depend on the number of threads.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

constexpr int64_t kChunk = 1 << 16;
constexpr int64_t kBlock = 1024;
constexpr int64_t kLanes = 16;

// 1.0f if v < 0 (strictly: -0.0 gives 0.0f), else 0.0f; branch-free.
inline float negative(float v) {
  uint32_t b;
  std::memcpy(&b, &v, sizeof b);
  return static_cast<float>(static_cast<int32_t>((b >> 31) & static_cast<uint32_t>((b & 0x7fffffffu) != 0u)));
}

template <typename scalar_t>
void forward_impl(const scalar_t* __restrict__ x, scalar_t* __restrict__ y, const float* pos,
                  const float* neg, const float* shift, int64_t n, int64_t C, int64_t inner) {
  // channel-of-element: C == 1 -> 0; inner > 1 (NCHW) -> runs of `inner`; inner == 1 -> i % C
  const int64_t grain = (C > 1 && inner == 1) ? ((kChunk + C - 1) / C) * C : kChunk;
  at::parallel_for(0, n, grain, [=](int64_t begin, int64_t end) {
    if (C > 1 && inner == 1) {  // channels-last: vectorize across channels
      for (int64_t base = begin; base < end; base += C) {
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) {
          const float v = static_cast<float>(x[base + c]);
          const float k = negative(v);
          const float m = shift ? shift[c] : 0.f;
          y[base + c] = static_cast<scalar_t>((pos[c] * (1.f - k) + neg[c] * k) * v + m);
        }
      }
      return;
    }
    for (int64_t i = begin; i < end;) {
      const int64_t c = C == 1 ? 0 : (i / inner) % C;
      const int64_t stop = C == 1 ? end : std::min(end, (i / inner + 1) * inner);
      const float p = pos[c], q = neg[c], m = shift ? shift[c] : 0.f;
#pragma omp simd
      for (int64_t j = i; j < stop; ++j) {
        const float v = static_cast<float>(x[j]);
        const float k = negative(v);
        y[j] = static_cast<scalar_t>((p * (1.f - k) + q * k) * v + m);
      }
      i = stop;
    }
  });
}

template <typename scalar_t>
void backward_impl(const scalar_t* __restrict__ g, const scalar_t* __restrict__ x,
                   scalar_t* __restrict__ gx, const float* pos, const float* neg, int64_t n,
                   int64_t C, int64_t inner, double* dpos, double* dneg, double* dshift) {
  const bool last = C > 1 && inner == 1;
  const int64_t chunk = last ? ((kChunk + C - 1) / C) * C : kChunk;
  const int64_t chunks = (n + chunk - 1) / chunk;
  std::vector<double> part(static_cast<size_t>(chunks * C * 3), 0.0);
  double* part_ = part.data();
  at::parallel_for(0, chunks, 1, [=](int64_t cb, int64_t ce) {
    for (int64_t k0 = cb; k0 < ce; ++k0) {
      const int64_t begin = k0 * chunk, end = std::min(n, begin + chunk);
      double* ap = part_ + k0 * C * 3;
      double* aq = ap + C;
      double* am = aq + C;
      if (last) {
        // per-channel float sums over up to 64 pixels, then flushed into double
        std::vector<float> fs(static_cast<size_t>(3 * C), 0.f);
        float* fp = fs.data();
        float* fq = fp + C;
        float* fm = fq + C;
        int64_t pixels = 0;
        for (int64_t base = begin; base < end; base += C) {
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) {
            const float v = static_cast<float>(x[base + c]), gv = static_cast<float>(g[base + c]);
            const float k = negative(v), t = gv * v;
            gx[base + c] = static_cast<scalar_t>(gv * (pos[c] * (1.f - k) + neg[c] * k));
            fp[c] += t - k * t;
            fq[c] += k * t;
            fm[c] += gv;
          }
          if (++pixels == 64 || base + C >= end) {
            for (int64_t c = 0; c < C; ++c) {
              ap[c] += fp[c];
              aq[c] += fq[c];
              am[c] += fm[c];
            }
            std::fill(fs.begin(), fs.end(), 0.f);
            pixels = 0;
          }
        }
        continue;
      }
      for (int64_t i = begin; i < end;) {
        const int64_t c = C == 1 ? 0 : (i / inner) % C;
        const int64_t stop = C == 1 ? end : std::min(end, (i / inner + 1) * inner);
        const float p = pos[c], q = neg[c];
        // float partial sums over short blocks, accumulated in double: float speed,
        // with the rounding error of a 1024-term sum rather than a 65536-term one
        for (int64_t b0 = i; b0 < stop; b0 += kBlock) {
          const int64_t b1 = std::min(stop, b0 + kBlock);
          // kLanes independent partial sums: vectorizes without reassociating
          // floats (the compiler will not vectorize a single float accumulator)
          float sp[kLanes] = {}, sq[kLanes] = {}, sm[kLanes] = {};
          int64_t j = b0;
          for (; j + kLanes <= b1; j += kLanes) {
            for (int64_t u = 0; u < kLanes; ++u) {
              const float v = static_cast<float>(x[j + u]), gv = static_cast<float>(g[j + u]);
              const float k = negative(v), t = gv * v;
              gx[j + u] = static_cast<scalar_t>(gv * (p * (1.f - k) + q * k));
              sp[u] += t - k * t;
              sq[u] += k * t;
              sm[u] += gv;
            }
          }
          for (; j < b1; ++j) {
            const float v = static_cast<float>(x[j]), gv = static_cast<float>(g[j]);
            const float k = negative(v), t = gv * v;
            gx[j] = static_cast<scalar_t>(gv * (p * (1.f - k) + q * k));
            sp[0] += t - k * t;
            sq[0] += k * t;
            sm[0] += gv;
          }
          for (int64_t u = 0; u < kLanes; ++u) {
            ap[c] += sp[u];
            aq[c] += sq[u];
            am[c] += sm[u];
          }
        }
        i = stop;
      }
    }
  });
  for (int64_t k0 = 0; k0 < chunks; ++k0) {
    const double* ap = part.data() + k0 * C * 3;
    for (int64_t c = 0; c < C; ++c) {
      dpos[c] += ap[c];
      dneg[c] += ap[C + c];
      dshift[c] += ap[2 * C + c];
    }
  }
}

}  // namespace

torch::Tensor forward(torch::Tensor x, torch::Tensor pos, torch::Tensor neg,
                      c10::optional<torch::Tensor> shift, int64_t inner) {
  auto y = torch::empty_like(x);
  auto p = pos.to(torch::kFloat).contiguous(), q = neg.to(torch::kFloat).contiguous();
  torch::Tensor m;
  if (shift.has_value()) m = shift->to(torch::kFloat).contiguous();
  const int64_t C = p.numel();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "dual_line_fwd", [&] {
    forward_impl<scalar_t>(x.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), p.data_ptr<float>(),
                           q.data_ptr<float>(), shift.has_value() ? m.data_ptr<float>() : nullptr,
                           x.numel(), C, inner);
  });
  return y;
}

std::vector<torch::Tensor> backward(torch::Tensor g, torch::Tensor x, torch::Tensor pos,
                                    torch::Tensor neg, int64_t inner) {
  auto gx = torch::empty_like(x);
  auto p = pos.to(torch::kFloat).contiguous(), q = neg.to(torch::kFloat).contiguous();
  const int64_t C = p.numel();
  auto opts = torch::TensorOptions().dtype(torch::kDouble);
  auto dp = torch::zeros({C}, opts), dq = torch::zeros({C}, opts), dm = torch::zeros({C}, opts);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "dual_line_bwd", [&] {
    backward_impl<scalar_t>(g.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(),
                            gx.data_ptr<scalar_t>(), p.data_ptr<float>(), q.data_ptr<float>(),
                            x.numel(), C, inner, dp.data_ptr<double>(), dq.data_ptr<double>(),
                            dm.data_ptr<double>());
  });
  return {gx, dp, dq, dm};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward, "Dual Line / DP ReLU forward");
  m.def("backward", &backward, "Dual Line / DP ReLU backward with parameter reductions");
}
