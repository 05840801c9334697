// One-pass CPU kernels for the paper's general recipe on a precomputed G(x):
//
// forward:  y = (x >= 0 ? a * x : G(x)) + m
// backward: grad_x (direct)  = x >= 0 ? a * g : 0
//           grad_G           = x >= 0 ? 0 : g      (autograd carries it through G)
//           d_a = sum g*x [x >= 0];  d_m = sum g
//
// x >= 0 takes the positive branch (-0.0 included), as DP ReLU and Dual Line do,
// so Learnable(PReLU) and Dual Line agree at exactly 0 (value and gradient).
//
// Eager PyTorch spends a comparison, a product, a select and an addition in
// forward, and as many again plus two broadcast reductions in backward; here
// each direction is one sweep, and only x is saved (G's own backward saves
// what G needs). Selects are real selects (blendv), not 0/1 blends, so an
// infinite G(x) on the positive side cannot leak into y.
//
// Layouts, as in dual_line_cpu.cpp: the channel of flat index i is 0 for C == 1,
// (i / inner) % C for NCHW, i % C for channels-last (inner == 1, C > 1).
// Reductions: every float32 term is added in double (per lane, per fixed-size
// chunk), chunks added in order: as accurate as a float64 sum of the terms, and
// independent of the number of threads.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "kernel_common.h"

namespace {

using learnact::channel_runs;

template <typename scalar_t>
void recipe_forward_impl(const scalar_t* __restrict__ x, const scalar_t* __restrict__ gx,
                         scalar_t* __restrict__ y, const float* a, const float* m, int64_t n,
                         int64_t C, int64_t inner) {
  const bool last = C > 1 && inner == 1;
  const int64_t grain = learnact::chunk_size(C, inner);
  at::parallel_for(0, n, grain, [=](int64_t begin, int64_t end) {
    if (last) {  // channels-last: whole pixels, vectorized across channels
      for (int64_t base = begin; base < end; base += C) {
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) {
          const float v = static_cast<float>(x[base + c]);
          const float b = v >= 0.f ? a[c] * v : static_cast<float>(gx[base + c]);
          y[base + c] = static_cast<scalar_t>(b + (m ? m[c] : 0.f));
        }
      }
      return;
    }
    channel_runs(begin, end, C, inner, [&](int64_t c, int64_t j0, int64_t j1) {
      const float s = a[c], sh = m ? m[c] : 0.f;
      int64_t j = j0;
#if defined(CPU_CAPABILITY_AVX2) || defined(CPU_CAPABILITY_AVX512)
      if constexpr (std::is_same_v<scalar_t, float>) {
        using Vec = at::vec::Vectorized<float>;
        const Vec vs(s), vsh(sh), zero(0.f);
        for (; j + Vec::size() <= j1; j += Vec::size()) {
          const Vec v = Vec::loadu(x + j);
          (Vec::blendv(Vec::loadu(gx + j), vs * v, v >= zero) + vsh).store(y + j);
        }
      }
#endif
      for (; j < j1; ++j) {
        const float v = static_cast<float>(x[j]);
        const float base = v >= 0.f ? s * v : static_cast<float>(gx[j]);
        y[j] = static_cast<scalar_t>(base + sh);
      }
    });
  });
}

// Backward, in one of two forms (kSelect):
// - false: writes the direct grad_x (gxd = x >= 0 ? a*g : 0) and the gradient for
//   G(x) (gg = x >= 0 ? 0 : g), for autograd to carry through G and add;
// - true: G's backward has already run on the whole of g and gg holds G'(x) * g;
//   it becomes grad_x in place, gg = x >= 0 ? a*g : gg. One read of x, g and gg
//   and one write, instead of two masked writes and autograd's addition.
// Both reduce d_a = sum g*x [x >= 0] and d_m = sum g into sums (2 * C doubles).
template <typename scalar_t, bool kSelect>
void recipe_grad_impl(const scalar_t* __restrict__ g, const scalar_t* __restrict__ x,
                      scalar_t* __restrict__ gxd, scalar_t* __restrict__ gg, const float* a,
                      int64_t n, int64_t C, int64_t inner, double* sums) {
  constexpr int64_t kLanes = 16;
  const bool last = C > 1 && inner == 1;
  const int64_t chunk = learnact::chunk_size(C, inner);
  const int64_t chunks = (n + chunk - 1) / chunk;
  std::vector<double> part(static_cast<size_t>(chunks * C * 2), 0.0);
  double* part_ = part.data();
  // one element of either form; returns the d_a term (a select, so inf*0 cannot leak)
  auto step = [=](int64_t j, float s) {
    const float v = static_cast<float>(x[j]), gv = static_cast<float>(g[j]);
    const bool pos = v >= 0.f;
    if constexpr (kSelect) {
      gg[j] = static_cast<scalar_t>(pos ? s * gv : static_cast<float>(gg[j]));
    } else {
      gxd[j] = static_cast<scalar_t>(pos ? s * gv : 0.f);
      gg[j] = static_cast<scalar_t>(pos ? 0.f : gv);
    }
    return pos ? gv * v : 0.f;
  };
  at::parallel_for(0, chunks, 1, [=](int64_t cb, int64_t ce) {
    for (int64_t k0 = cb; k0 < ce; ++k0) {
      const int64_t begin = k0 * chunk, end = std::min(n, begin + chunk);
      double* pa = part_ + k0 * C * 2;
      double* pm = pa + C;
      if (last) {  // channels-last: whole pixels, each channel's terms into its double
        for (int64_t base = begin; base < end; base += C) {
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) {
            pa[c] += static_cast<double>(step(base + c, a[c]));
            pm[c] += static_cast<double>(static_cast<float>(g[base + c]));
          }
        }
        continue;
      }
      channel_runs(begin, end, C, inner, [&](int64_t c, int64_t j0, int64_t j1) {
        const float s = a[c];
        double la[2 * kLanes] = {}, lm[2 * kLanes] = {};  // per-lane double sums
        int64_t j = j0;
#if defined(CPU_CAPABILITY_AVX2) || defined(CPU_CAPABILITY_AVX512)
        if constexpr (std::is_same_v<scalar_t, float>) {
          using Vec = at::vec::Vectorized<float>;
          constexpr int64_t W = Vec::size();
          static_assert(W <= 2 * kLanes);
          const Vec vs(s), zero(0.f);
          alignas(64) float buf[2][W];
          for (; j + W <= j1; j += W) {
            const Vec v = Vec::loadu(x + j), gv = Vec::loadu(g + j);
            const Vec pos = v >= zero;
            if constexpr (kSelect) {
              Vec::blendv(Vec::loadu(gg + j), vs * gv, pos).store(gg + j);
            } else {
              Vec::blendv(zero, vs * gv, pos).store(gxd + j);
              Vec::blendv(gv, zero, pos).store(gg + j);
            }
            Vec::blendv(zero, gv * v, pos).store(buf[0]);
            gv.store(buf[1]);
#pragma omp simd
            for (int64_t k = 0; k < W; ++k) {  // lane-wise in double: deterministic
              la[k] += buf[0][k];
              lm[k] += buf[1][k];
            }
          }
        }
#endif
        for (; j + kLanes <= j1; j += kLanes) {
#pragma omp simd
          for (int64_t u = 0; u < kLanes; ++u) {
            la[u] += static_cast<double>(step(j + u, s));
            lm[u] += static_cast<double>(static_cast<float>(g[j + u]));
          }
        }
        for (; j < j1; ++j) {
          la[0] += static_cast<double>(step(j, s));
          lm[0] += static_cast<double>(static_cast<float>(g[j]));
        }
        for (int64_t u = 0; u < 2 * kLanes; ++u) {
          pa[c] += la[u];
          pm[c] += lm[u];
        }
      });
    }
  });
  learnact::add_partials(part, chunks, 2 * C, sums);
}

}  // namespace

torch::Tensor recipe_forward_kernel(const torch::Tensor& x, const torch::Tensor& gx,
                                    const torch::Tensor& a,
                                    const c10::optional<torch::Tensor>& shift, int64_t inner) {
  auto y = torch::empty_like(x);
  auto af = a.to(torch::kFloat).contiguous();
  torch::Tensor m;
  if (shift.has_value()) m = shift->to(torch::kFloat).contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "recipe_fwd", [&] {
    recipe_forward_impl<scalar_t>(x.data_ptr<scalar_t>(), gx.data_ptr<scalar_t>(),
                                  y.data_ptr<scalar_t>(), af.data_ptr<float>(),
                                  shift.has_value() ? m.data_ptr<float>() : nullptr, x.numel(),
                                  af.numel(), inner);
  });
  return y;
}

std::vector<torch::Tensor> recipe_backward_kernel(const torch::Tensor& g, const torch::Tensor& x,
                                                  const torch::Tensor& a, int64_t inner) {
  auto gxd = torch::empty_like(x), gg = torch::empty_like(x);
  auto af = a.to(torch::kFloat).contiguous();
  const int64_t C = af.numel();
  std::vector<double> acc(static_cast<size_t>(2 * C), 0.0);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "recipe_bwd", [&] {
    recipe_grad_impl<scalar_t, false>(g.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(),
                                      gxd.data_ptr<scalar_t>(), gg.data_ptr<scalar_t>(),
                                      af.data_ptr<float>(), x.numel(), C, inner, acc.data());
  });
  return {gxd, gg, learnact::sums_tensor(acc, 2, C, a)};
}

struct RecipeFunction : public torch::autograd::Function<RecipeFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& gx, const torch::Tensor& a,
                               const c10::optional<torch::Tensor>& shift, int64_t inner) {
    ctx->save_for_backward({x, a});
    ctx->saved_data["inner"] = inner;
    ctx->saved_data["has_shift"] = shift.has_value();
    return recipe_forward_kernel(x, gx, a, shift, inner);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    TORCH_CHECK(!torch::GradMode::is_enabled(),
                "learnact's fused recipe kernel is first-order only; for double backward "
                "(create_graph=True) use LEARNACT_KERNELS=reference or float64");
    auto saved = ctx->get_saved_variables();
    const auto& x = saved[0];
    const auto& a = saved[1];
    auto g = x.is_contiguous() ? grads[0].contiguous()
                               : grads[0].contiguous(at::MemoryFormat::ChannelsLast);
    auto out = recipe_backward_kernel(g, x, a, ctx->saved_data["inner"].toInt());
    torch::Tensor dshift;
    if (ctx->saved_data["has_shift"].toBool()) dshift = out[2][1].view(a.sizes());
    return {out[0], out[1], out[2][0].view(a.sizes()), dshift, torch::Tensor()};
  }
};

torch::Tensor recipe(const torch::Tensor& x, const torch::Tensor& gx, const torch::Tensor& a,
                     const c10::optional<torch::Tensor>& shift, int64_t inner) {
  return RecipeFunction::apply(x, gx, a, shift, inner);
}

// t (G'(x) * g, in x's layout) becomes grad_x in place (x >= 0 ? a*g : t); returns (2, C) d_a, d_m in a's dtype
torch::Tensor recipe_select_(torch::Tensor t, const torch::Tensor& g, const torch::Tensor& x,
                             const torch::Tensor& a, int64_t inner) {
  TORCH_CHECK(t.scalar_type() == x.scalar_type() && t.sizes() == x.sizes() &&
                  t.strides() == x.strides() && g.strides() == x.strides(),
              "recipe_select_: t, g and x must share dtype, shape and layout");
  auto af = a.to(torch::kFloat).contiguous();
  const int64_t C = af.numel();
  std::vector<double> acc(static_cast<size_t>(2 * C), 0.0);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "recipe_select", [&] {
    recipe_grad_impl<scalar_t, true>(g.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), nullptr,
                                     t.data_ptr<scalar_t>(), af.data_ptr<float>(), x.numel(), C,
                                     inner, acc.data());
  });
  return learnact::sums_tensor(acc, 2, C, a);
}
