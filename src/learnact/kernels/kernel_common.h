// Pieces shared by the CPU kernels (dual_line_cpu.cpp, recipe_cpu.cpp).
//
// A tensor is walked in memory order as (outer, C, inner): the channel of flat
// index i is 0 for C == 1, (i / inner) % C for NCHW, i % C for channels-last
// (inner == 1, C > 1). Reductions add every term in double, per fixed-size chunk;
// the chunks' partials are added in chunk order, so results do not depend on the
// thread count.
#pragma once

// ATen and autograd only, not torch/extension.h: its C++ frontend headers tripled each
// source file's compile time (see cpu.py on the first build)
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <ATen/cpu/vec/vec.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/autograd/saved_variable.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "simd.h"

namespace learnact {

constexpr int64_t kChunk = 1 << 16;  // elements per reduction chunk (and parallel grain)

// The chunk size for C channels: whole pixels for channels-last, kChunk otherwise.
inline int64_t chunk_size(int64_t C, int64_t inner) {
  return (C > 1 && inner == 1) ? ((kChunk + C - 1) / C) * C : kChunk;
}

// The gradient in x's memory layout (standard or channels-last), as the kernels walk it.
inline at::Tensor like_x(const at::Tensor& g, const at::Tensor& x) {
  return x.is_contiguous() ? g.contiguous() : g.contiguous(at::MemoryFormat::ChannelsLast);
}

// ---------------------------------------------------------------- the eager entry points
// A module's forward makes one call into C++ (dual_line_eager, recipe_inline_eager,
// recipe_eager), which checks here what dispatch.py's fused_unavailable_reason and
// kernel_layout check in Python, and runs the kernel or returns None. None sends
// the call down dispatch.py's own path, which says why (or raises the reference
// path's error): these checks never raise.

// A CPU tensor the kernels can read, with no tracer, functorch transform, forward-mode
// tangent, Python tensor subclass (FakeTensor, ...) or Python dispatch mode in the way.
// The JIT tracer (torch.jit.trace, the legacy ONNX exporter) runs with the Tracer key
// included in this thread's dispatch keys, as functorch's transforms and dispatch modes
// do with theirs.
inline bool eager_ok(const at::Tensor& x, const at::Tensor& param) {
  const auto st = x.scalar_type();
  if (st != at::kFloat && st != at::kBFloat16 && st != at::kHalf) return false;
  if (!x.device().is_cpu() || x.layout() != c10::kStrided || !param.device().is_cpu()) return false;
  if (x.key_set().has(c10::DispatchKey::Python)) return false;
  // a forward-mode tangent (torch.autograd.forward_ad): the fused nodes have no jvp
  if (x._fw_grad(/*level=*/0).defined() || param._fw_grad(/*level=*/0).defined()) return false;
  const auto included = c10::impl::tls_local_dispatch_key_set().included_;
  return !(included.has(c10::DispatchKey::Tracer) || included.has(c10::DispatchKey::Python) ||
           included.has(c10::DispatchKey::FuncTorchDynamicLayerFrontMode) ||
           included.has(c10::DispatchKey::FuncTorchDynamicLayerBackMode));
}

// No forward-mode tangent on any of ts (the parameters eager_ok does not see): the
// fused nodes have no forward-mode rule, so a dual tensor takes the reference path.
inline bool no_tangents(std::initializer_list<const at::Tensor*> ts) {
  for (const auto* t : ts)
    if (t->defined() && t->_fw_grad(/*level=*/0).defined()) return false;
  return true;
}

// Whether the call needs an autograd node: grad mode on and an input requiring grad.
template <typename... T>
inline bool needs_graph(const T&... ts) {
  return torch::autograd::compute_requires_grad(ts...);
}

// x as the kernels walk it, and the stride of its channel index (layout.py's kernel_layout)
struct Walk {
  at::Tensor x;
  int64_t inner;
};

// The walk for a C-channel parameter, or nullopt where the reference path must speak
// (a channel count that does not match x).
inline c10::optional<Walk> kernel_layout(const at::Tensor& x, int64_t C) {
  const bool nhwc = x.dim() == 4 && x.is_contiguous(at::MemoryFormat::ChannelsLast);
  if (C == 1) return Walk{(x.is_contiguous() || nhwc) ? x : x.contiguous(), 1};
  if (x.dim() == 0 || x.size(x.dim() >= 2 ? 1 : 0) != C) return c10::nullopt;
  if (nhwc) return Walk{x, 1};
  int64_t inner = 1;
  for (int64_t d = 2; d < x.dim(); ++d) inner *= x.size(d);
  return Walk{x.is_contiguous() ? x : x.contiguous(), inner};
}

// A parameter as the float32 values the kernels read (no copy when it already is)
inline at::Tensor as_float(const at::Tensor& p) {
  return p.scalar_type() == at::kFloat && p.is_contiguous() ? p : p.to(at::kFloat).contiguous();
}

// One gradient per row of acc (rows x C doubles), each shaped and typed like param,
// rounded once from double: separate tensors, so autograd takes them as they are.
inline std::vector<at::Tensor> param_grads(const std::vector<double>& acc, int64_t rows,
                                              const at::Tensor& param) {
  const int64_t C = param.numel();
  std::vector<at::Tensor> out;
  out.reserve(rows);
  for (int64_t r = 0; r < rows; ++r) {
    auto t = at::empty(param.sizes(), param.options());
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, param.scalar_type(), "grads", [&] {
      scalar_t* o = t.data_ptr<scalar_t>();
      for (int64_t k = 0; k < C; ++k) o[k] = static_cast<scalar_t>(acc[r * C + k]);
    });
    out.push_back(std::move(t));
  }
  return out;
}

// Fused backward nodes are first-order only: a double backward would silently get a
// gradient with no graph, so it is refused with the way out.
#define LEARNACT_FIRST_ORDER_ONLY(what)                                                        \
  TORCH_CHECK(!c10::GradMode::is_enabled(), "learnact's fused " what                        \
              " kernel is first-order only; for double backward (create_graph=True) use "     \
              "LEARNACT_KERNELS=reference or float64")

// f(k, begin, end) for each fixed-size chunk k of [0, n), chunks spread over threads.
// Chunk boundaries depend only on n, C and inner (never on the thread count), and
// for channels-last they fall on whole pixels: at::parallel_for's own split of
// [0, n) does not, which is why no kernel walks elements with it directly.
template <typename F>
inline void parallel_chunks(int64_t n, int64_t C, int64_t inner, const F& f) {
  const int64_t chunk = chunk_size(C, inner);
  const int64_t chunks = (n + chunk - 1) / chunk;
  at::parallel_for(0, chunks, 1, [&](int64_t cb, int64_t ce) {
    for (int64_t k = cb; k < ce; ++k) f(k, k * chunk, std::min(n, (k + 1) * chunk));
  });
}

// the number of chunks parallel_chunks makes (for per-chunk partial sums)
inline int64_t num_chunks(int64_t n, int64_t C, int64_t inner) {
  const int64_t chunk = chunk_size(C, inner);
  return (n + chunk - 1) / chunk;
}

// f(c, j0, j1) for each single-channel run [j0, j1) within [begin, end) (C == 1 or NCHW).
template <typename F>
inline void channel_runs(int64_t begin, int64_t end, int64_t C, int64_t inner, F&& f) {
  for (int64_t i = begin; i < end;) {
    const int64_t c = C == 1 ? 0 : (i / inner) % C;
    const int64_t stop = C == 1 ? end : std::min(end, (i / inner + 1) * inner);
    f(c, i, stop);
    i = stop;
  }
}

// out[k] += the chunks' partials part[chunk * width + k], in chunk order.
inline void add_partials(const std::vector<double>& part, int64_t chunks, int64_t width,
                         double* out) {
  for (int64_t k0 = 0; k0 < chunks; ++k0) {
    const double* p = part.data() + k0 * width;
    for (int64_t k = 0; k < width; ++k) out[k] += p[k];
  }
}

// The gradient of a packed parameter w (dual_line_cpu.cpp): its first w.numel() sums
// (acc holds rows of C doubles), rounded once from double, shaped and typed like w.
inline at::Tensor packed_grad(const std::vector<double>& acc, const at::Tensor& w) {
  auto out = at::empty(w.sizes(), w.options());
  const int64_t n = w.numel();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, w.scalar_type(), "packed", [&] {
    scalar_t* o = out.data_ptr<scalar_t>();
    for (int64_t k = 0; k < n; ++k) o[k] = static_cast<scalar_t>(acc[k]);
  });
  return out;
}

// A (rows, C) tensor of the parameters' dtype holding acc, rounded once from double.
inline at::Tensor sums_tensor(const std::vector<double>& acc, int64_t rows, int64_t C,
                                 const at::Tensor& param) {
  auto sums = at::empty({rows, C}, param.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, param.scalar_type(), "sums", [&] {
    scalar_t* out = sums.data_ptr<scalar_t>();
    for (int64_t k = 0; k < rows * C; ++k) out[k] = static_cast<scalar_t>(acc[k]);
  });
  return sums;
}

}  // namespace learnact
