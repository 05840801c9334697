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
// Two ways to get G:
// - precomputed: G ran as itself (any G, autograd carries the gradient through it);
// - inline, for G in {GELU (erf form), ELU(alpha), SiLU}: G and G' are computed in
//   the sweep itself, so each direction is one read of x (and g) and one write,
//   G(x) is never stored, and Learnable(G) costs about what G alone costs.
//
// Layouts, as in dual_line_cpu.cpp: the channel of flat index i is 0 for C == 1,
// (i / inner) % C for NCHW, i % C for channels-last (inner == 1, C > 1).
// Reductions: float32 terms are added in double per lane and per fixed-size chunk
// (the SIMD loops add two vectors' terms in float32 first, as dual_line_cpu.cpp's
// float_block), chunks added in order: independent of the number of threads.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "kernel_common.h"

namespace {

using learnact::channel_runs;
// GVec: the vector type of G's own maths (exp, erf, reciprocal), ATen's Vectorized.
// The selects and sums run on simd.h's FVec, which is the same type in the
// AVX2 and AVX-512 variants and SSE2 or NEON in the baseline one; the inline forms
// (G computed in the sweep) take the vector path only where GVec is explicit SIMD.
using GVec = at::vec::Vectorized<float>;
constexpr bool kInlineVec = learnact::kSimdG;
#if LEARNACT_SIMD
using Vec = learnact::FVec;
#else
using Vec = GVec;  // never used for arithmetic: the vector blocks are compiled out
#endif

// ---------------------------------------------------------------- G for the inline form
// Only x < 0 uses G (x >= 0 takes a*x), but vector lanes compute it everywhere and
// the select drops it, so every G here must be finite-or-dropped for any input.

constexpr float kSqrtHalf = 0.70710678118654752f;     // 1/sqrt(2)
constexpr float kInvSqrt2Pi = 0.39894228040143268f;   // 1/sqrt(2*pi)

// exp(-x^2 / 2), as 2^w with w = -x^2 log2(e) / 2 <= 0 split into n + f (n an integer,
// |f| <= 1/2): 2^f by its Taylor series to degree 6 (coefficients ln(2)^k / k!;
// relative error below 2e-7) and 2^n from the exponent bits. The argument is never
// positive, so there is no overflow to guard; below 2^-126 the result is exactly 0
// (the reference's exp goes on through subnormals to 2^-149, a difference below
// 1e-37), so x = -inf still gives -inf * 0 = NaN in G' as in the reference. Cheaper
// than ATen's exp_u20 or Sleef's exp: no overflow clamp, no negation, and log2(e)
// folded into the square.
inline GVec exp_neg_half_square(const GVec& x) {
  using Vec = GVec;
  const Vec w = x * (x * Vec(-0.72134752044448170f));  // -x^2 log2(e) / 2
  const Vec wc = at::vec::clamp_min(w, Vec(-126.f));
  const Vec n = wc.round();
  const Vec f = wc - n;
  Vec p = Vec(1.5403530393381608e-4f);
  p = p * f + Vec(1.3333558146428443e-3f);
  p = p * f + Vec(9.6181291076284772e-3f);
  p = p * f + Vec(5.5504108664821580e-2f);
  p = p * f + Vec(0.24022650695910071f);
  p = p * f + Vec(0.69314718055994531f);
  p = p * f + Vec(1.f);
  const auto bits = (at::vec::convert_to_int_of_same_size(n) + at::vec::Vectorized<int32_t>(127))
                    << at::vec::Vectorized<int32_t>(23);
  const Vec two_n = at::vec::cast<float>(bits);
  return (p * two_n) & (w >= Vec(-126.f));  // all-ones lanes keep it, the rest are 0
}

// Phi(x) on the negative branch, as the pieces G and G' share. For x < 0 and
// z = x / sqrt2, Phi(x) = erfc(|z|) / 2, and Abramowitz & Stegun 7.1.26 gives
//   erfc(|z|) ~= t P(t) exp(-z^2),  t = 1 / (1 + 0.3275911 |z|),  P of degree 5
// (absolute error below 1.5e-7; the form ATen's AVX2 Vectorized<float>::erf uses).
// Written for x < 0 only, the one branch the inline recipe takes from G: no 1 - erf
// cancellation and no sign select. For x >= 0 the lanes hold values (NaN at +inf)
// that the recipe's select drops. The scalar tail of a run (its last elements short
// of a whole vector) computes the whole function with std::erf instead; the two agree
// within the kernels' tolerance (about 1e-7 apart at most). GELU's derivative needs the
// same exponential (phi(x) = e / sqrt(2 pi)), so the backward pays for one exp per
// element.
struct NegativeCdf {
  GVec tp;  // t P(t): Phi(x) = tp * e / 2
  GVec e;   // exp(-x^2 / 2)
  explicit NegativeCdf(const GVec& v) {
    using Vec = GVec;
    const Vec t = (v.abs() * Vec(0.3275911f * kSqrtHalf) + Vec(1.f)).reciprocal();
    Vec r = Vec(1.061405429f);
    r = r * t + Vec(-1.453152027f);
    r = r * t + Vec(1.421413741f);
    r = r * t + Vec(-0.284496736f);
    r = r * t + Vec(0.254829592f);
    tp = r * t;
    e = exp_neg_half_square(v);
  }
};

// x * Phi(x) = x/2 (1 + erf(x/sqrt2)); G' = Phi(x) + x phi(x). The scalar forms are the
// whole function; the vector forms are the x < 0 branch (NegativeCdf).
struct GeluG {
  static float f(float v, float) { return 0.5f * v * (1.f + std::erf(v * kSqrtHalf)); }
  static float df(float v, float) {
    return 0.5f * (1.f + std::erf(v * kSqrtHalf)) + v * kInvSqrt2Pi * std::exp(-0.5f * v * v);
  }
  static GVec f(const GVec& v, const GVec&) {
    const NegativeCdf c(v);
    return (v * GVec(0.5f)) * c.tp * c.e;
  }
  static GVec df(const GVec& v, const GVec&) {  // e (t P / 2 + x / sqrt(2 pi))
    const NegativeCdf c(v);
    return c.e * (c.tp * GVec(0.5f) + v * GVec(kInvSqrt2Pi));
  }
};

struct EluG {  // alpha (e^x - 1) for x < 0; G' = alpha e^x
  static float f(float v, float alpha) { return alpha * std::expm1(v); }
  static float df(float v, float alpha) { return alpha * std::exp(v); }
  // e^x - 1 rather than expm1: Sleef's expm1 costs about three exps, and the
  // absolute error near 0 (about 6e-8) is far inside float32 ELU's own rounding
  static GVec f(const GVec& v, const GVec& alpha) { return alpha * (v.exp() - GVec(1.f)); }
  static GVec df(const GVec& v, const GVec& alpha) { return alpha * v.exp(); }
};

struct SiluG {  // x sigmoid(x); G' = s (1 + x (1 - s))
  static float sig(float v) { return 1.f / (1.f + std::exp(-v)); }
  static float f(float v, float) { return v * sig(v); }
  static float df(float v, float) {
    const float s = sig(v);
    return s * (1.f + v * (1.f - s));
  }
  static GVec sig(const GVec& v) { return (GVec(1.f) + v.neg().exp()).reciprocal(); }
  static GVec f(const GVec& v, const GVec&) { return v * sig(v); }
  static GVec df(const GVec& v, const GVec&) {
    const GVec s = sig(v);
    return s * (GVec(1.f) + v * (GVec(1.f) - s));
  }
};

// ---------------------------------------------------------------- negative-branch values
// The forward's value for x < 0: read from a precomputed G(x), or computed inline.

// pick(j, v, p) is the scalar forward's value before the shift: p (= a x) for x >= 0,
// else the negative branch's. A loaded G(x) is read whatever the sign, so the select
// compiles without a branch (a branch on random signs mispredicts half the time).
template <typename scalar_t>
struct FromTensor {
  const scalar_t* gx;
  float pick(int64_t j, float v, float p) const {
    const float gv = static_cast<float>(gx[j]);
    return v >= 0.f ? p : gv;
  }
  static constexpr bool kVec = true;
  Vec vec(int64_t j, const Vec&) const { return Vec::loadu(gx + j); }  // float only
};

// G computed inline only where it is used: it costs more than a mispredicted branch
template <typename G>
struct Inline {
  float alpha;
  float pick(int64_t, float v, float p) const { return v >= 0.f ? p : G::f(v, alpha); }
  static constexpr bool kVec = kInlineVec;
  Vec vec(int64_t, const Vec& v) const { return G::f(v, Vec(alpha)); }
};

// y = (x >= 0 ? a x : neg(x)) + m, one sweep
template <typename scalar_t, typename Neg>
void forward_impl(const scalar_t* __restrict__ x, scalar_t* __restrict__ y, Neg neg,
                  const float* a, const float* m, int64_t n, int64_t C, int64_t inner) {
  const bool last = C > 1 && inner == 1;
  learnact::parallel_chunks(n, C, inner, [=](int64_t, int64_t begin, int64_t end) {
    if (last) {  // channels-last: whole pixels, across channels
      for (int64_t base = begin; base < end; base += C) {
        for (int64_t c = 0; c < C; ++c) {
          const float v = static_cast<float>(x[base + c]);
          const float b = neg.pick(base + c, v, a[c] * v);
          y[base + c] = static_cast<scalar_t>(b + (m ? m[c] : 0.f));
        }
      }
      return;
    }
    channel_runs(begin, end, C, inner, [&](int64_t c, int64_t j0, int64_t j1) {
      const float s = a[c], sh = m ? m[c] : 0.f;
      int64_t j = j0;
#if LEARNACT_SIMD
      if constexpr (std::is_same_v<scalar_t, float> && Neg::kVec) {
        const Vec vs(s), vsh(sh), zero(0.f);
        constexpr int64_t W = Vec::size();
        // two vectors per step: G's long dependency chains (a division, a polynomial,
        // an exp) overlap, where one vector per step left the core waiting on them
        for (; j + 2 * W <= j1; j += 2 * W) {
          const Vec v0 = Vec::loadu(x + j), v1 = Vec::loadu(x + j + W);
          const Vec n0 = neg.vec(j, v0), n1 = neg.vec(j + W, v1);
          (Vec::blendv(n0, vs * v0, v0 >= zero) + vsh).store(y + j);
          (Vec::blendv(n1, vs * v1, v1 >= zero) + vsh).store(y + j + W);
        }
        for (; j + W <= j1; j += W) {
          const Vec v = Vec::loadu(x + j);
          (Vec::blendv(neg.vec(j, v), vs * v, v >= zero) + vsh).store(y + j);
        }
      }
#endif
      for (; j < j1; ++j) {
        const float v = static_cast<float>(x[j]);
        const float base = neg.pick(j, v, s * v);
        y[j] = static_cast<scalar_t>(base + sh);
      }
    });
  });
}

// ---------------------------------------------------------------- gradient writers
// Each backward form writes its gradients for one element (scalar) or W (vector);
// the reductions (d_a = sum g*x [x >= 0], d_m = sum g) are shared.

// precomputed G, split: grad_x (direct) = x >= 0 ? a g : 0, grad of G(x) = x >= 0 ? 0 : g
template <typename scalar_t>
struct Split {
  scalar_t* gxd;
  scalar_t* gg;
  static constexpr bool kVec = true;
  void at(int64_t j, bool pos, float s, float gv, float) const {
    gxd[j] = static_cast<scalar_t>(pos ? s * gv : 0.f);
    gg[j] = static_cast<scalar_t>(pos ? 0.f : gv);
  }
  void vec(int64_t j, const Vec& pos, const Vec& vs, const Vec& gv, const Vec&) const {
    Vec::blendv(Vec(0.f), vs * gv, pos).store(gxd + j);
    Vec::blendv(gv, Vec(0.f), pos).store(gg + j);
  }
};

// precomputed G, select: t holds G'(x) g already; t = x >= 0 ? a g : t, in place
template <typename scalar_t>
struct Select {
  scalar_t* t;
  static constexpr bool kVec = true;
  void at(int64_t j, bool pos, float s, float gv, float) const {
    const float old = static_cast<float>(t[j]);  // read either way: a select, no branch
    t[j] = static_cast<scalar_t>(pos ? s * gv : old);
  }
  void vec(int64_t j, const Vec& pos, const Vec& vs, const Vec& gv, const Vec&) const {
    Vec::blendv(Vec::loadu(t + j), vs * gv, pos).store(t + j);
  }
};

// inline G: grad_x = x >= 0 ? a g : G'(x) g
template <typename scalar_t, typename G>
struct InlineGrad {
  scalar_t* gx;
  float alpha;
  static constexpr bool kVec = kInlineVec;
  void at(int64_t j, bool pos, float s, float gv, float v) const {
    gx[j] = static_cast<scalar_t>(pos ? s * gv : gv * G::df(v, alpha));
  }
  void vec(int64_t j, const Vec& pos, const Vec& vs, const Vec& gv, const Vec& v) const {
    Vec::blendv(gv * G::df(v, Vec(alpha)), vs * gv, pos).store(gx + j);
  }
};

// One backward sweep: out writes the gradients; d_a and d_m go into sums (2 * C
// doubles), every float32 term added in double.
template <typename scalar_t, typename Out>
void grad_impl(const scalar_t* __restrict__ g, const scalar_t* __restrict__ x, Out out,
               const float* a, int64_t n, int64_t C, int64_t inner, double* sums) {
  constexpr int64_t kLanes = 16;
  const bool last = C > 1 && inner == 1;
  const int64_t chunks = learnact::num_chunks(n, C, inner);
  std::vector<double> part(static_cast<size_t>(chunks * C * 2), 0.0);
  double* part_ = part.data();
  // one element; returns the d_a term (a select, so inf*0 cannot leak)
  auto step = [=](int64_t j, float s) {
    const float v = static_cast<float>(x[j]), gv = static_cast<float>(g[j]);
    const bool pos = v >= 0.f;
    out.at(j, pos, s, gv, v);
    return pos ? gv * v : 0.f;
  };
  learnact::parallel_chunks(n, C, inner, [=](int64_t k0, int64_t begin, int64_t end) {
    double* pa = part_ + k0 * C * 2;
    double* pm = pa + C;
    if (last) {  // channels-last: whole pixels, each channel's terms into its double
      for (int64_t base = begin; base < end; base += C) {
        for (int64_t c = 0; c < C; ++c) {
          pa[c] += static_cast<double>(step(base + c, a[c]));
          pm[c] += static_cast<double>(static_cast<float>(g[base + c]));
        }
      }
      return;
    }
    channel_runs(begin, end, C, inner, [&](int64_t c, int64_t j0, int64_t j1) {
      const float s = a[c];
      double la[kLanes] = {}, lm[kLanes] = {};  // per-lane double sums
      int64_t j = j0;
#if LEARNACT_SIMD
      if constexpr (std::is_same_v<scalar_t, float> && Out::kVec) {
        constexpr int64_t W = Vec::size();
        const Vec vs(s), zero(0.f);
        learnact::DoubleLanes sa, sm;
        // two vectors per step: an inline G's long dependency chains overlap, and the
        // two vectors' terms are added in float32 before widening (DoubleLanes::add2,
        // one rounding per pair of terms, as dual_line_cpu.cpp's float_block)
        for (; j + 2 * W <= j1; j += 2 * W) {
          const Vec v0 = Vec::loadu(x + j), g0 = Vec::loadu(g + j);
          const Vec v1 = Vec::loadu(x + j + W), g1 = Vec::loadu(g + j + W);
          const Vec pos0 = v0 >= zero, pos1 = v1 >= zero;
          out.vec(j, pos0, vs, g0, v0);
          out.vec(j + W, pos1, vs, g1, v1);
          sa.add2(Vec::blendv(zero, g0 * v0, pos0), Vec::blendv(zero, g1 * v1, pos1));
          sm.add2(g0, g1);
        }
        for (; j + W <= j1; j += W) {
          const Vec v = Vec::loadu(x + j), gv = Vec::loadu(g + j);
          const Vec pos = v >= zero;
          out.vec(j, pos, vs, gv, v);
          sa.add(Vec::blendv(zero, gv * v, pos));
          sm.add(gv);
        }
        la[0] += sa.sum();
        lm[0] += sm.sum();
      }
#endif
      const bool lanes = j + kLanes <= j1;
      for (; j + kLanes <= j1; j += kLanes) {
        for (int64_t u = 0; u < kLanes; ++u) {
          la[u] += static_cast<double>(step(j + u, s));
          lm[u] += static_cast<double>(static_cast<float>(g[j + u]));
        }
      }
      for (; j < j1; ++j) {
        la[0] += static_cast<double>(step(j, s));
        lm[0] += static_cast<double>(static_cast<float>(g[j]));
      }
      for (int64_t u = 0; u < (lanes ? kLanes : 1); ++u) {  // only lane 0 unless the
        pa[c] += la[u];                                      // lane loop ran (as in
        pm[c] += lm[u];                                      // dual_line_cpu.cpp)
      }
    });
  });
  learnact::add_partials(part, chunks, 2 * C, sums);
}

// G's kind for the inline kernels (must match dispatch.py's _INLINE_KINDS)
enum GKind : int64_t { kGelu = 0, kElu = 1, kSilu = 2 };

template <typename F>
void with_g(int64_t kind, F&& f) {
  switch (kind) {
    case kGelu: f(GeluG{}); break;
    case kElu: f(EluG{}); break;
    case kSilu: f(SiluG{}); break;
    default: TORCH_CHECK(false, "learnact: unknown inline G kind ", kind);
  }
}

}  // namespace

// ---------------------------------------------------------------- entry points

namespace {

struct Params {  // the float32 copies of a and m that the kernels read
  at::Tensor a, m;
  Params(const at::Tensor& a_, const c10::optional<at::Tensor>& shift)
      : a(learnact::as_float(a_)) {
    if (shift.has_value()) m = learnact::as_float(*shift);
  }
  const float* ap() const { return a.data_ptr<float>(); }
  const float* mp() const { return m.defined() ? m.data_ptr<float>() : nullptr; }
  int64_t C() const { return a.numel(); }
};

}  // namespace

at::Tensor recipe_forward_kernel(const at::Tensor& x, const at::Tensor& gx,
                                    const at::Tensor& a,
                                    const c10::optional<at::Tensor>& shift, int64_t inner) {
  auto y = at::empty_like(x);
  const Params p(a, shift);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "recipe_fwd", [&] {
    forward_impl<scalar_t>(x.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(),
                           FromTensor<scalar_t>{gx.data_ptr<scalar_t>()}, p.ap(), p.mp(),
                           x.numel(), p.C(), inner);
  });
  return y;
}

namespace {

// the split gradients (direct grad_x, grad of G(x)), with d_a and d_m added into acc
std::pair<at::Tensor, at::Tensor> recipe_backward_sums(const at::Tensor& g,
                                                             const at::Tensor& x,
                                                             const at::Tensor& a,
                                                             int64_t inner,
                                                             std::vector<double>& acc) {
  auto gxd = at::empty_like(x), gg = at::empty_like(x);
  const Params p(a, c10::nullopt);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "recipe_bwd", [&] {
    grad_impl<scalar_t>(g.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(),
                        Split<scalar_t>{gxd.data_ptr<scalar_t>(), gg.data_ptr<scalar_t>()},
                        p.ap(), x.numel(), p.C(), inner, acc.data());
  });
  return {gxd, gg};
}

}  // namespace

std::vector<at::Tensor> recipe_backward_kernel(const at::Tensor& g, const at::Tensor& x,
                                                  const at::Tensor& a, int64_t inner) {
  std::vector<double> acc(static_cast<size_t>(2 * a.numel()), 0.0);
  auto [gxd, gg] = recipe_backward_sums(g, x, a, inner, acc);
  return {gxd, gg, learnact::sums_tensor(acc, 2, a.numel(), a)};
}

// A hand-written autograd node, as DualLineBackward in dual_line_cpu.cpp (why: there).
// Inputs: x, G(x), a and, with a shift, m.
struct RecipeBackward : public torch::autograd::Node {
  torch::autograd::SavedVariable x_, a_;
  int64_t inner_ = 1;
  bool has_shift_ = false;

  torch::autograd::variable_list apply(torch::autograd::variable_list&& grads) override {
    LEARNACT_FIRST_ORDER_ONLY("recipe");
    const auto x = x_.unpack(), a = a_.unpack();
    torch::autograd::variable_list out(has_shift_ ? 4 : 3);
    if (!grads[0].defined()) return out;
    std::vector<double> acc(static_cast<size_t>(2 * a.numel()), 0.0);
    auto [gxd, gg] = recipe_backward_sums(learnact::like_x(grads[0], x), x, a, inner_, acc);
    auto sums = learnact::param_grads(acc, has_shift_ ? 2 : 1, a);
    if (task_should_compute_output(0)) out[0] = std::move(gxd);
    if (task_should_compute_output(1)) out[1] = std::move(gg);
    for (size_t k = 0; k < sums.size(); ++k)
      if (task_should_compute_output(k + 2)) out[k + 2] = std::move(sums[k]);
    return out;
  }
  void release_variables() override {
    x_.reset_data();
    a_.reset_data();
  }
  std::string name() const override { return "RecipeBackward"; }
};

at::Tensor recipe(const at::Tensor& x, const at::Tensor& gx, const at::Tensor& a,
                     const c10::optional<at::Tensor>& shift, int64_t inner) {
  at::Tensor y;
  {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    y = recipe_forward_kernel(x, gx, a, shift, inner);
  }
  const at::Tensor none;
  const auto& m = shift.has_value() ? *shift : none;
  if (learnact::needs_graph(x, gx, a, m)) {
    auto node = c10::make_intrusive<RecipeBackward>();
    node->set_next_edges(shift.has_value() ? torch::autograd::collect_next_edges(x, gx, a, m)
                                           : torch::autograd::collect_next_edges(x, gx, a));
    node->x_ = torch::autograd::SavedVariable(x, false);
    node->a_ = torch::autograd::SavedVariable(a, false);
    node->inner_ = inner;
    node->has_shift_ = shift.has_value();
    torch::autograd::set_history(y, node);
  }
  return y;
}

// the recipe around G(x) with the eager checks and layout done here, or None (dispatch.py
// then decides, and says why); gx must match x's shape, dtype and device
c10::optional<at::Tensor> recipe_eager(const at::Tensor& x, const at::Tensor& gx,
                                          const at::Tensor& a,
                                          const c10::optional<at::Tensor>& shift) {
  const at::Tensor none;
  if (!learnact::eager_ok(x, a) || !learnact::eager_ok(gx, a) || gx.sizes() != x.sizes() ||
      gx.scalar_type() != x.scalar_type() ||
      !learnact::no_tangents({shift.has_value() ? &*shift : &none}))
    return c10::nullopt;
  const auto walk = learnact::kernel_layout(x, a.size(-1));
  if (!walk) return c10::nullopt;
  return recipe(walk->x, learnact::like_x(gx, walk->x), a, shift, walk->inner);
}

// t (G'(x) * g, in x's layout) becomes grad_x in place (x >= 0 ? a*g : t); returns (2, C)
// d_a, d_m in a's dtype
at::Tensor recipe_select_(at::Tensor t, const at::Tensor& g, const at::Tensor& x,
                             const at::Tensor& a, int64_t inner) {
  // the same dense layout as x (standard or channels-last, as the kernels walk it);
  // is_contiguous ignores a size-1 dim's stride (0 in the gradient of y.sum() for a
  // one-element y), which says nothing about where the elements are
  const auto fmt = x.is_contiguous() ? at::MemoryFormat::Contiguous
                                     : at::MemoryFormat::ChannelsLast;
  TORCH_CHECK(t.scalar_type() == x.scalar_type() && t.sizes() == x.sizes() &&
                  g.sizes() == x.sizes() && x.is_contiguous(fmt) && t.is_contiguous(fmt) &&
                  g.is_contiguous(fmt),
              "recipe_select_: t, g and x must share dtype, shape and layout");
  const Params p(a, c10::nullopt);
  std::vector<double> acc(static_cast<size_t>(2 * p.C()), 0.0);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "recipe_select", [&] {
    grad_impl<scalar_t>(g.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(),
                        Select<scalar_t>{t.data_ptr<scalar_t>()}, p.ap(), x.numel(), p.C(),
                        inner, acc.data());
  });
  return learnact::sums_tensor(acc, 2, p.C(), a);
}

// ---- the recipe with G inline (kind: 0 GELU, 1 ELU(alpha), 2 SiLU)

at::Tensor recipe_inline_forward_kernel(const at::Tensor& x, const at::Tensor& a,
                                           const c10::optional<at::Tensor>& shift,
                                           int64_t inner, int64_t kind, double alpha) {
  auto y = at::empty_like(x);
  const Params p(a, shift);
  with_g(kind, [&](auto gfun) {
    using G = decltype(gfun);
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "recipe_ifwd", [&] {
      forward_impl<scalar_t>(x.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(),
                             Inline<G>{static_cast<float>(alpha)}, p.ap(), p.mp(), x.numel(),
                             p.C(), inner);
    });
  });
  return y;
}

namespace {

// grad_x of the inline recipe, with d_a and d_m added into acc
at::Tensor recipe_inline_backward_sums(const at::Tensor& g, const at::Tensor& x,
                                          const at::Tensor& a, int64_t inner, int64_t kind,
                                          double alpha, std::vector<double>& acc) {
  auto gx = at::empty_like(x);
  const Params p(a, c10::nullopt);
  with_g(kind, [&](auto gfun) {
    using G = decltype(gfun);
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "recipe_ibwd", [&] {
      grad_impl<scalar_t>(g.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(),
                          InlineGrad<scalar_t, G>{gx.data_ptr<scalar_t>(),
                                                  static_cast<float>(alpha)},
                          p.ap(), x.numel(), p.C(), inner, acc.data());
    });
  });
  return gx;
}

}  // namespace

std::vector<at::Tensor> recipe_inline_backward_kernel(const at::Tensor& g,
                                                         const at::Tensor& x,
                                                         const at::Tensor& a, int64_t inner,
                                                         int64_t kind, double alpha) {
  std::vector<double> acc(static_cast<size_t>(2 * a.numel()), 0.0);
  auto gx = recipe_inline_backward_sums(g, x, a, inner, kind, alpha, acc);
  return {gx, learnact::sums_tensor(acc, 2, a.numel(), a)};
}

// The inline recipe's node (inputs x, a and, with a shift, m); as RecipeBackward.
struct RecipeInlineBackward : public torch::autograd::Node {
  torch::autograd::SavedVariable x_, a_;
  int64_t inner_ = 1, kind_ = 0;
  double alpha_ = 1.0;
  bool has_shift_ = false;

  torch::autograd::variable_list apply(torch::autograd::variable_list&& grads) override {
    LEARNACT_FIRST_ORDER_ONLY("recipe");
    const auto x = x_.unpack(), a = a_.unpack();
    torch::autograd::variable_list out(has_shift_ ? 3 : 2);
    if (!grads[0].defined()) return out;
    std::vector<double> acc(static_cast<size_t>(2 * a.numel()), 0.0);
    auto gx = recipe_inline_backward_sums(learnact::like_x(grads[0], x), x, a, inner_, kind_,
                                          alpha_, acc);
    auto sums = learnact::param_grads(acc, has_shift_ ? 2 : 1, a);
    if (task_should_compute_output(0)) out[0] = std::move(gx);
    for (size_t k = 0; k < sums.size(); ++k)
      if (task_should_compute_output(k + 1)) out[k + 1] = std::move(sums[k]);
    return out;
  }
  void release_variables() override {
    x_.reset_data();
    a_.reset_data();
  }
  std::string name() const override { return "RecipeInlineBackward"; }
};

at::Tensor recipe_inline(const at::Tensor& x, const at::Tensor& a,
                            const c10::optional<at::Tensor>& shift, int64_t inner,
                            int64_t kind, double alpha) {
  at::Tensor y;
  {
    at::AutoDispatchBelowADInplaceOrView below_autograd;
    y = recipe_inline_forward_kernel(x, a, shift, inner, kind, alpha);
  }
  const at::Tensor none;
  const auto& m = shift.has_value() ? *shift : none;
  if (learnact::needs_graph(x, a, m)) {
    auto node = c10::make_intrusive<RecipeInlineBackward>();
    node->set_next_edges(shift.has_value() ? torch::autograd::collect_next_edges(x, a, m)
                                           : torch::autograd::collect_next_edges(x, a));
    node->x_ = torch::autograd::SavedVariable(x, false);
    node->a_ = torch::autograd::SavedVariable(a, false);
    node->inner_ = inner;
    node->kind_ = kind;
    node->alpha_ = alpha;
    node->has_shift_ = shift.has_value();
    torch::autograd::set_history(y, node);
  }
  return y;
}

// the inline recipe with the eager checks and layout done here, or None
c10::optional<at::Tensor> recipe_inline_eager(const at::Tensor& x, const at::Tensor& a,
                                                 const c10::optional<at::Tensor>& shift,
                                                 int64_t kind, double alpha) {
  const at::Tensor none;
  if (!learnact::eager_ok(x, a) || !learnact::no_tangents({shift.has_value() ? &*shift : &none}))
    return c10::nullopt;
  const auto walk = learnact::kernel_layout(x, a.size(-1));
  if (!walk) return c10::nullopt;
  return recipe_inline(walk->x, a, shift, walk->inner, kind, alpha);
}
