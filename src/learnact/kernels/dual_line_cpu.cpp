// One-pass CPU kernels for DP ReLU / Dual Line (the extension's module; the
// general recipe's kernels are in recipe_cpu.cpp).
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
// Non-finite inputs follow the reference exactly: NaN fails `x >= 0`, so it takes
// the negative branch (grad_x = g*neg, and it adds g*x to d_neg only), and a term
// reaches only the sum of the branch its element takes (bit masks, never 0 * inf).
//
// Reductions: float32 terms are added in double per lane and per fixed-size chunk
// (the float32 SIMD loops first add two vectors' terms in float32, one rounding per
// pair: DoubleLanes::add2), and the chunks' partials are summed in chunk order, so
// the parameter gradients do not depend on the number of threads.
// the Python bindings of at::Tensor and optionals, without the whole C++ frontend that
// torch/extension.h brings (its headers alone took about 64 s of the build; these 20 s)
#include <torch/csrc/utils/pybind.h>
#include <pybind11/stl.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "kernel_common.h"

namespace {

constexpr int64_t kLanes = 16;

// All ones if v takes the negative branch (v < 0, or NaN: `v >= 0` is false there;
// -0.0 is not negative), else 0; branch-free.
inline uint32_t negative_mask(float v) {
  uint32_t b;
  std::memcpy(&b, &v, sizeof b);
  const uint32_t mag = b & 0x7fffffffu;
  const uint32_t neg = (b >> 31) & static_cast<uint32_t>(mag != 0u);
  return 0u - (neg | static_cast<uint32_t>(mag > 0x7f800000u));
}

// 1.0f for the negative branch, 0.0f for the positive one (slopes are finite, so
// p * (1 - k) + q * k is exactly one of them)
inline float negative(float v) { return static_cast<float>(negative_mask(v) & 1u); }

// t where mask is all ones, +0.0f where it is 0: a select, so an infinite t of the
// other branch never becomes 0 * inf = NaN
inline float masked(float t, uint32_t mask) {
  uint32_t b;
  std::memcpy(&b, &t, sizeof b);
  b &= mask;
  std::memcpy(&t, &b, sizeof t);
  return t;
}

template <typename scalar_t>
void forward_impl(const scalar_t* __restrict__ x, scalar_t* __restrict__ y, const float* pos,
                  const float* neg, const float* shift, int64_t n, int64_t C, int64_t inner) {
  // channel-of-element: C == 1 -> 0; inner > 1 (NCHW) -> runs of `inner`; inner == 1 -> i % C
  learnact::parallel_chunks(n, C, inner, [=](int64_t, int64_t begin, int64_t end) {
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
    learnact::channel_runs(begin, end, C, inner, [&](int64_t c, int64_t i, int64_t stop) {
      const float p = pos[c], q = neg[c], m = shift ? shift[c] : 0.f;
      int64_t j0 = i;
#if LEARNACT_SIMD
      if constexpr (std::is_same_v<scalar_t, float>) {
        using Vec = learnact::FVec;
        const Vec vp(p), vq(q), vm(m), zero(0.f);
        for (; j0 + Vec::size() <= stop; j0 += Vec::size()) {
          const Vec v = Vec::loadu(x + j0);
          fmadd(Vec::blendv(vq, vp, v >= zero), v, vm).store(y + j0);
        }
      }
#endif
#pragma omp simd
      for (int64_t j = j0; j < stop; ++j) {
        const float v = static_cast<float>(x[j]);
        const float k = negative(v);
        y[j] = static_cast<scalar_t>((p * (1.f - k) + q * k) * v + m);
      }
    });
  });
}

// Explicit SIMD for the float32 backward block (the compiler's own vectorization
// of the lane loop below spends most of its time shuffling): AVX2, AVX-512, SSE2 or
// NEON, as simd.h's FVec is. The per-element terms are float32 products, as the
// reference's are. Two vectors per step: their terms are added in float32 lane by
// lane (one rounding per pair of terms) and that pair sum is added in double
// (DoubleLanes::add2). The sums' error is therefore at most (2^-24 + m 2^-53) times
// the sum of the terms' magnitudes for m double additions, as long as no pair sum
// overflows float32 (two terms near FLT_MAX: inf, where a float64 sum might not be):
// float running sums that cancel lost up to 0.15 on 65K elements, and widening every
// term on its own cost the baseline build a third of its backward time. Handles [b0, b0 + k * width) and returns
// where it stopped; adds its sums into *sp, *sq, *sm.
[[maybe_unused]] inline int64_t float_block(const float* __restrict__ g,
                                            const float* __restrict__ x, float* __restrict__ gx,
                                            float p, float q, int64_t b0, int64_t b1, double* sp,
                                            double* sq, double* sm) {
#if LEARNACT_SIMD
  using Vec = learnact::FVec;
  constexpr int64_t W = Vec::size();
  const Vec vp(p), vq(q), zero(0.f);
  learnact::DoubleLanes ap, aq, am;
  int64_t j = b0;
  for (; j + 2 * W <= b1; j += 2 * W) {
    const Vec v0 = Vec::loadu(x + j), g0 = Vec::loadu(g + j);
    const Vec v1 = Vec::loadu(x + j + W), g1 = Vec::loadu(g + j + W);
    const Vec pos0 = v0 >= zero, pos1 = v1 >= zero;  // -0.0 in, NaN out: x >= 0
    const Vec t0 = g0 * v0, t1 = g1 * v1;
    (g0 * Vec::blendv(vq, vp, pos0)).store(gx + j);
    (g1 * Vec::blendv(vq, vp, pos1)).store(gx + j + W);
    ap.add2(Vec::blendv(zero, t0, pos0), Vec::blendv(zero, t1, pos1));
    aq.add2(Vec::blendv(t0, zero, pos0), Vec::blendv(t1, zero, pos1));
    am.add2(g0, g1);
  }
  for (; j + W <= b1; j += W) {
    const Vec v = Vec::loadu(x + j), gv = Vec::loadu(g + j);
    const Vec is_pos = v >= zero;
    const Vec t = gv * v;
    (gv * Vec::blendv(vq, vp, is_pos)).store(gx + j);
    ap.add(Vec::blendv(zero, t, is_pos));
    aq.add(Vec::blendv(t, zero, is_pos));
    am.add(gv);
  }
  *sp += ap.sum();
  *sq += aq.sum();
  *sm += am.sum();
  return j;
#else
  return b0;
#endif
}

template <typename scalar_t>
void backward_impl(const scalar_t* __restrict__ g, const scalar_t* __restrict__ x,
                   scalar_t* __restrict__ gx, const float* pos, const float* neg, int64_t n,
                   int64_t C, int64_t inner, double* sums) {
  // sums: 3 * C doubles, d_pos then d_neg then d_shift
  const bool last = C > 1 && inner == 1;
  const int64_t chunks = learnact::num_chunks(n, C, inner);
  std::vector<double> part(static_cast<size_t>(chunks * C * 3), 0.0);
  double* part_ = part.data();
  learnact::parallel_chunks(n, C, inner, [=](int64_t k0, int64_t begin, int64_t end) {
    {
      double* ap = part_ + k0 * C * 3;
      double* aq = ap + C;
      double* am = aq + C;
      if (last) {
        // every term straight into the chunk's double partials, channel by channel
        for (int64_t base = begin; base < end; base += C) {
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) {
            const float v = static_cast<float>(x[base + c]), gv = static_cast<float>(g[base + c]);
            const uint32_t km = negative_mask(v);
            const float k = static_cast<float>(km & 1u), t = gv * v;
            gx[base + c] = static_cast<scalar_t>(gv * (pos[c] * (1.f - k) + neg[c] * k));
            ap[c] += static_cast<double>(masked(t, ~km));
            aq[c] += static_cast<double>(masked(t, km));
            am[c] += static_cast<double>(gv);
          }
        }
        return;
      }
      learnact::channel_runs(begin, end, C, inner, [&](int64_t c, int64_t i, int64_t stop) {
        const float p = pos[c], q = neg[c];
        // kLanes independent double accumulators for what float_block leaves (and
        // for bfloat16/float16): every term is added in double, and the loop still
        // vectorizes
        double sp[kLanes] = {}, sq[kLanes] = {}, sm[kLanes] = {};
        int64_t j = i;
#if LEARNACT_SIMD
        if constexpr (std::is_same_v<scalar_t, float>) {
          j = float_block(g, x, gx, p, q, i, stop, sp, sq, sm);
        }
#endif
        const bool lanes = j + kLanes <= stop;
        for (; j + kLanes <= stop; j += kLanes) {
#pragma omp simd
          for (int64_t u = 0; u < kLanes; ++u) {
            const float v = static_cast<float>(x[j + u]), gv = static_cast<float>(g[j + u]);
            const uint32_t km = negative_mask(v);
            const float k = static_cast<float>(km & 1u), t = gv * v;
            gx[j + u] = static_cast<scalar_t>(gv * (p * (1.f - k) + q * k));
            sp[u] += static_cast<double>(masked(t, ~km));
            sq[u] += static_cast<double>(masked(t, km));
            sm[u] += static_cast<double>(gv);
          }
        }
        for (; j < stop; ++j) {
          const float v = static_cast<float>(x[j]), gv = static_cast<float>(g[j]);
          const uint32_t km = negative_mask(v);
          const float k = static_cast<float>(km & 1u), t = gv * v;
          gx[j] = static_cast<scalar_t>(gv * (p * (1.f - k) + q * k));
          sp[0] += static_cast<double>(masked(t, ~km));
          sq[0] += static_cast<double>(masked(t, km));
          sm[0] += static_cast<double>(gv);
        }
        // only lane 0 holds anything unless the lane loop ran (always, for float32
        // with SIMD): on NCHW's short runs (100 elements at LeNet's second site)
        // adding 3 x kLanes zeros per run cost as much as the run's own SIMD work
        for (int64_t u = 0; u < (lanes ? kLanes : 1); ++u) {
          ap[c] += sp[u];
          aq[c] += sq[u];
          am[c] += sm[u];
        }
      });
    }
  });
  learnact::add_partials(part, chunks, 3 * C, sums);
}

}  // namespace

// ------------------------------------------------------------------ entry points

at::Tensor forward_kernel(const at::Tensor& x, const at::Tensor& pos,
                             const at::Tensor& neg, const c10::optional<at::Tensor>& shift,
                             int64_t inner) {
  auto y = at::empty_like(x);
  const auto p = learnact::as_float(pos), q = learnact::as_float(neg);
  at::Tensor m;
  if (shift.has_value()) m = learnact::as_float(*shift);
  const int64_t C = p.numel();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "dual_line_fwd", [&] {
    forward_impl<scalar_t>(x.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), p.data_ptr<float>(),
                           q.data_ptr<float>(), shift.has_value() ? m.data_ptr<float>() : nullptr,
                           x.numel(), C, inner);
  });
  return y;
}

namespace {

// grad_x, with d_pos, d_neg and d_shift added into acc (3 * C doubles); p and q are
// the C float32 slopes
at::Tensor backward_sums(const at::Tensor& g, const at::Tensor& x, const float* p,
                            const float* q, int64_t C, int64_t inner, std::vector<double>& acc) {
  auto gx = at::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "dual_line_bwd", [&] {
    backward_impl<scalar_t>(g.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(),
                            gx.data_ptr<scalar_t>(), p, q, x.numel(), C, inner, acc.data());
  });
  return gx;
}

}  // namespace

std::vector<at::Tensor> backward_kernel(const at::Tensor& g, const at::Tensor& x,
                                           const at::Tensor& pos, const at::Tensor& neg,
                                           int64_t inner) {
  // one buffer for the three reductions: d_pos, d_neg, d_shift
  std::vector<double> acc(static_cast<size_t>(3 * pos.numel()), 0.0);
  const auto p = learnact::as_float(pos), q = learnact::as_float(neg);
  auto gx = backward_sums(g, x, p.data_ptr<float>(), q.data_ptr<float>(), p.numel(), inner, acc);
  return {gx, learnact::sums_tensor(acc, 3, pos.numel(), pos)};
}

// The module's parameters are one packed tensor w of rows * C values: the C positive
// slopes, the C negative slopes and, for Dual Line (rows == 3), the C mean shifts. One
// leaf means one AccumulateGrad in the backward instead of two or three: at LeNet sizes
// each costs about as much as the kernel itself (benchmarks/activation_speed.py --small).
namespace {
void check_packed(const at::Tensor& w, int64_t rows) {
  TORCH_CHECK(rows == 2 || rows == 3, "packed Dual Line parameters have 2 or 3 rows, got ",
              rows);
  TORCH_CHECK(w.device().is_cpu(), "the CPU kernel needs the parameters on the CPU, got ",
              w.device());
  TORCH_CHECK(w.dim() == 1 && w.numel() > 0 && w.numel() % rows == 0,
              "packed Dual Line parameters must be 1-D with a multiple of ", rows,
              " values, got shape ", w.sizes());
}
}  // namespace

// The autograd node is a plain autograd Node, written by hand as PyTorch's generated
// nodes are, rather than a torch::autograd::Function: a call costs one Python -> C++
// crossing, no Python frames in forward or backward, and none of the custom Function's
// bookkeeping (its context's string-keyed map, per-input metadata, output wrapping).
// At LeNet sizes that bookkeeping is a visible share of a call (benchmarks/
// activation_speed.py --small).
struct DualLineBackward : public torch::autograd::Node {
  torch::autograd::SavedVariable x_, w_;
  int64_t inner_ = 1;
  int64_t rows_ = 3;

  torch::autograd::variable_list apply(torch::autograd::variable_list&& grads) override {
    LEARNACT_FIRST_ORDER_ONLY("DP ReLU / Dual Line");
    // unpack raises autograd's own error on a freed graph or an input modified in place
    const auto x = x_.unpack(), w = w_.unpack();
    torch::autograd::variable_list out(2);
    if (!grads[0].defined()) return out;  // no gradient reached y: none flows on
    const int64_t C = w.numel() / rows_;
    const auto wf = learnact::as_float(w);
    const float* p = wf.data_ptr<float>();
    // all three sums come from the one sweep; the first rows_ rows are w's gradient
    std::vector<double> acc(static_cast<size_t>(3 * C), 0.0);
    auto gx = backward_sums(learnact::like_x(grads[0], x), x, p, p + C, C, inner_, acc);
    if (task_should_compute_output(0)) out[0] = std::move(gx);
    if (task_should_compute_output(1)) out[1] = learnact::packed_grad(acc, w);
    return out;
  }
  void release_variables() override {
    x_.reset_data();
    w_.reset_data();
  }
  std::string name() const override { return "DualLineBackward"; }
};

at::Tensor dual_line(const at::Tensor& x, const at::Tensor& w, int64_t rows, int64_t inner) {
  check_packed(w, rows);
  at::Tensor y;
  {
    at::AutoDispatchBelowADInplaceOrView below_autograd;  // the kernel is not recorded
    y = at::empty_like(x);
    const auto wf = learnact::as_float(w);
    const float* p = wf.data_ptr<float>();
    const int64_t C = w.numel() / rows;
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, x.scalar_type(), "dual_line_fwd",
                                    [&] {
      forward_impl<scalar_t>(x.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), p, p + C,
                             rows == 3 ? p + 2 * C : nullptr, x.numel(), C, inner);
    });
  }
  if (learnact::needs_graph(x, w)) {
    auto node = c10::make_intrusive<DualLineBackward>();
    node->set_next_edges(torch::autograd::collect_next_edges(x, w));
    node->x_ = torch::autograd::SavedVariable(x, false);
    node->w_ = torch::autograd::SavedVariable(w, false);
    node->inner_ = inner;
    node->rows_ = rows;
    torch::autograd::set_history(y, node);
  }
  return y;
}

// The module's hot path: the checks, the layout and the kernel in one call, or None
// (dispatch.py then decides, and says why).
c10::optional<at::Tensor> dual_line_eager(const at::Tensor& x, const at::Tensor& w,
                                             int64_t rows) {
  if (!learnact::eager_ok(x, w) || (rows != 2 && rows != 3) || w.dim() != 1 ||
      w.numel() % rows != 0)
    return c10::nullopt;
  const auto walk = learnact::kernel_layout(x, w.numel() / rows);
  if (!walk) return c10::nullopt;
  return dual_line(walk->x, w, rows, walk->inner);
}

// the general recipe, in recipe_cpu.cpp
at::Tensor recipe(const at::Tensor& x, const at::Tensor& gx, const at::Tensor& a,
                     const c10::optional<at::Tensor>& shift, int64_t inner);
at::Tensor recipe_forward_kernel(const at::Tensor& x, const at::Tensor& gx,
                                    const at::Tensor& a,
                                    const c10::optional<at::Tensor>& shift, int64_t inner);
std::vector<at::Tensor> recipe_backward_kernel(const at::Tensor& g, const at::Tensor& x,
                                                  const at::Tensor& a, int64_t inner);
at::Tensor recipe_select_(at::Tensor t, const at::Tensor& g, const at::Tensor& x,
                             const at::Tensor& a, int64_t inner);
at::Tensor recipe_inline(const at::Tensor& x, const at::Tensor& a,
                            const c10::optional<at::Tensor>& shift, int64_t inner,
                            int64_t kind, double alpha);
c10::optional<at::Tensor> recipe_eager(const at::Tensor& x, const at::Tensor& gx,
                                          const at::Tensor& a,
                                          const c10::optional<at::Tensor>& shift);
c10::optional<at::Tensor> recipe_inline_eager(const at::Tensor& x, const at::Tensor& a,
                                                 const c10::optional<at::Tensor>& shift,
                                                 int64_t kind, double alpha);
at::Tensor recipe_inline_forward_kernel(const at::Tensor& x, const at::Tensor& a,
                                           const c10::optional<at::Tensor>& shift,
                                           int64_t inner, int64_t kind, double alpha);
std::vector<at::Tensor> recipe_inline_backward_kernel(const at::Tensor& g,
                                                         const at::Tensor& x,
                                                         const at::Tensor& a, int64_t inner,
                                                         int64_t kind, double alpha);

// ---------------------------------------------------------------- the environment
// dispatch.py's hot path calls the *_auto entry points without looking at the
// environment itself (an os.environ lookup costs about 0.4 us, a visible share of a
// call at LeNet sizes). They read $LEARNACT_KERNELS and $LEARNACT_CPU_ISA here with
// getenv, which os.environ's assignments and deletions keep current (putenv, unsetenv),
// and run only where $LEARNACT_KERNELS is unset and $LEARNACT_CPU_ISA has a value
// (unset counts as "") for which cpu.load() handed out this module (accept_isa_env);
// otherwise they return None and dispatch.py's checked path decides. The keys are
// read and written with the GIL held (every entry point is a pybind call that keeps it).
// They live in this file's anonymous namespace, not in an inline function of a header:
// GCC makes a static local of an inline function a STB_GNU_UNIQUE symbol, which the
// dynamic linker shares between every loaded variant (RTLD_LOCAL or not), so the
// baseline, AVX2 and AVX-512 modules would share one list.
namespace {
std::vector<std::string> isa_env_keys;

bool env_allows_fast_path() {
  if (std::getenv("LEARNACT_KERNELS") != nullptr) return false;
  const char* raw = std::getenv("LEARNACT_CPU_ISA");
  const std::string_view key = raw != nullptr ? raw : "";
  for (const auto& k : isa_env_keys)
    if (k == key) return true;
  return false;
}
}  // namespace

// The hot path's entry points: the *_eager calls where the environment leaves the
// choice to this module, else None.
c10::optional<at::Tensor> dual_line_auto(const at::Tensor& x, const at::Tensor& w,
                                            int64_t rows) {
  if (!env_allows_fast_path()) return c10::nullopt;
  return dual_line_eager(x, w, rows);
}
c10::optional<at::Tensor> recipe_auto(const at::Tensor& x, const at::Tensor& gx,
                                         const at::Tensor& a,
                                         const c10::optional<at::Tensor>& shift) {
  if (!env_allows_fast_path()) return c10::nullopt;
  return recipe_eager(x, gx, a, shift);
}
c10::optional<at::Tensor> recipe_inline_auto(const at::Tensor& x, const at::Tensor& a,
                                                const c10::optional<at::Tensor>& shift,
                                                int64_t kind, double alpha) {
  if (!env_allows_fast_path()) return c10::nullopt;
  return recipe_inline_eager(x, a, shift, kind, alpha);
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  // whether G's own maths is explicit SIMD in this build (simd.h's kSimdG): the
  // inline-G recipe runs only where it is
  m.attr("SIMD") = learnact::kSimdG;
  m.def("dual_line", &dual_line,
        "Dual Line (rows=3) or DP ReLU (rows=2) on packed (rows * C,) parameters, "
        "differentiable, saving only x (and the parameter itself)");
  m.def("dual_line_eager", &dual_line_eager,
        "dual_line with the eager checks and layout done here; None where dispatch.py decides");
  m.def("recipe_eager", &recipe_eager,
        "recipe with the eager checks and layout done here; None where dispatch.py decides");
  m.def("recipe_inline_eager", &recipe_inline_eager,
        "recipe_inline with the eager checks and layout done here; None where dispatch.py decides");
  m.def("dual_line_auto", &dual_line_auto,
        "dual_line_eager where the environment leaves the choice to this module, else None");
  m.def("recipe_auto", &recipe_auto,
        "recipe_eager where the environment leaves the choice to this module, else None");
  m.def("recipe_inline_auto", &recipe_inline_auto,
        "recipe_inline_eager where the environment leaves the choice to this module, else None");
  m.def("env_ok", &env_allows_fast_path,
        "whether the *_auto calls would run under the environment now");
  m.def("accept_isa_env", [](const std::string& key) {
    if (std::find(isa_env_keys.begin(), isa_env_keys.end(), key) == isa_env_keys.end())
      isa_env_keys.push_back(key);
  }, "the *_auto calls run where $LEARNACT_CPU_ISA is key ('' for unset)");
  m.def("forget_isa_env", [] { isa_env_keys.clear(); },
        "the *_auto calls return None until accept_isa_env is called again");
  m.def("forward", &forward_kernel, "forward kernel alone (no autograd)");
  m.def("backward", &backward_kernel,
        "backward kernel alone: grad_x and a (3, C) tensor (the parameters' dtype) of d_pos, "
        "d_neg, d_shift");
  m.def("recipe", &recipe,
        "the general recipe on a precomputed G(x), differentiable to x, G(x), a and m");
  m.def("recipe_forward", &recipe_forward_kernel, "recipe forward kernel alone");
  m.def("recipe_backward", &recipe_backward_kernel,
        "recipe backward kernel alone: direct grad_x, grad of G(x), and (2, C) d_a, d_m");
  m.def("recipe_inline", &recipe_inline,
        "the recipe with G (0 GELU, 1 ELU(alpha), 2 SiLU) computed inline, differentiable to "
        "x, a and m, saving only x");
  m.def("recipe_inline_forward", &recipe_inline_forward_kernel, "inline recipe forward alone");
  m.def("recipe_inline_backward", &recipe_inline_backward_kernel,
        "inline recipe backward alone: grad_x and (2, C) d_a, d_m");
  m.def("recipe_select_", &recipe_select_,
        "in place: t = x >= 0 ? a*g : t (t = G'(x)*g), returning (2, C) d_a, d_m");
}
