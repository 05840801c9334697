// The kernels' SIMD layer (src/learnact/kernels/simd.h) against scalar maths, on the
// variant this file is compiled for: FVec's compare, select and multiply-add on
// every IEEE case the kernels meet (signed zeros, NaN, infinities, a subnormal),
// and DoubleLanes' float64 sum of masked products. tests/test_simd_portable.py
// builds it natively (SSE2 for the baseline, AVX2, AVX-512) and, where a cross
// compiler and qemu exist, for 64-bit ARM (NEON), and runs it.
// Prints "W=<lanes> ok" and exits 0, or names the failing lane and exits 1.
#include "simd.h"

#include <cmath>
#include <cstdio>
#include <cstring>

int main() {
#if !LEARNACT_SIMD
  std::puts("no explicit SIMD in this build");
  return 2;
#else
  using Vec = learnact::FVec;
  constexpr int W = static_cast<int>(Vec::size());
  const float cases[] = {-0.0f, 0.0f, -1.5f, 2.25f, NAN, INFINITY, -INFINITY, 1e-40f,
                         -3e-39f, 7.0f, -0.125f, 65504.f, -1e30f, 0.5f, -2.0f, 3.0f};
  constexpr int kCases = sizeof(cases) / sizeof(cases[0]);
  float x[W], g[W], y[W], gx[W];
  int bad = 0;
  for (int base = 0; base < kCases; base += W) {
    for (int i = 0; i < W; ++i) {
      x[i] = cases[(base + i) % kCases];
      g[i] = 0.5f + static_cast<float>(i);
    }
    const Vec v = Vec::loadu(x), gv = Vec::loadu(g), zero(0.f);
    const Vec pos = v >= zero;
    fmadd(Vec::blendv(Vec(0.2f), Vec(1.1f), pos), v, Vec(0.05f)).store(y);
    (gv * Vec::blendv(Vec(0.2f), Vec(1.1f), pos)).store(gx);  // the slope shows at x = +-0
    learnact::DoubleLanes sp, sq;
    sp.add(Vec::blendv(zero, gv * v, pos));
    sq.add(Vec::blendv(gv * v, zero, pos));
    double want_p = 0.0, want_q = 0.0;
    for (int i = 0; i < W; ++i) {
      const bool p = x[i] >= 0.f;  // -0.0 positive, NaN negative, as the reference
      const float want = (p ? 1.1f : 0.2f) * x[i] + 0.05f;
      const bool same = std::memcmp(&want, &y[i], sizeof want) == 0 ||
                        (std::isnan(want) && std::isnan(y[i])) ||
                        (std::isfinite(want) &&
                         std::fabs(want - y[i]) <= 1e-6f * std::fabs(want));  // fused or not
      if (!same) {
        std::printf("lane %d, x = %g: y = %.9g, want %.9g\n", i, x[i], y[i], want);
        ++bad;
      }
      const float want_gx = g[i] * (p ? 1.1f : 0.2f);
      if (std::memcmp(&want_gx, &gx[i], sizeof want_gx) != 0) {
        std::printf("lane %d, x = %g: grad %.9g, want %.9g\n", i, x[i], gx[i], want_gx);
        ++bad;
      }
      (p ? want_p : want_q) += static_cast<double>(g[i] * x[i]);
    }
    const double got[] = {sp.sum(), sq.sum()}, want[] = {want_p, want_q};
    for (int k = 0; k < 2; ++k) {
      const bool same = got[k] == want[k] || (std::isnan(got[k]) && std::isnan(want[k]));
      if (!same) {
        std::printf("cases from %d, sum %d: %.17g, want %.17g\n", base, k, got[k], want[k]);
        ++bad;
      }
    }
  }
  // The sums on finite terms only, so that one inf or NaN cannot hide the other lanes:
  // distinct values per lane over several adds. DoubleLanes adds each lane's terms in
  // double as they come and then the lanes in order, which the scalar sum repeats.
  {
    constexpr int kAdds = 5;
    learnact::DoubleLanes sp, sq;
    double lane_p[W] = {}, lane_q[W] = {};
    for (int k = 0; k < kAdds; ++k) {
      for (int i = 0; i < W; ++i) {
        x[i] = (i % 3 == 0 ? -1.f : 1.f) * (0.37f + 0.11f * static_cast<float>(i)) *
               static_cast<float>(1 << k);
        g[i] = 1.f / 3.f + static_cast<float>(i * kAdds + k);
      }
      const Vec v = Vec::loadu(x), gv = Vec::loadu(g), zero(0.f);
      const Vec pos = v >= zero;
      sp.add(Vec::blendv(zero, gv * v, pos));
      sq.add(Vec::blendv(gv * v, zero, pos));
      for (int i = 0; i < W; ++i) (x[i] >= 0.f ? lane_p[i] : lane_q[i]) += static_cast<double>(g[i] * x[i]);
    }
    double want_p = 0.0, want_q = 0.0;
    for (int i = 0; i < W; ++i) {
      want_p += lane_p[i];
      want_q += lane_q[i];
    }
    if (sp.sum() != want_p || sq.sum() != want_q) {
      std::printf("finite sums: %.17g, %.17g, want %.17g, %.17g\n", sp.sum(), sq.sum(), want_p,
                  want_q);
      ++bad;
    }
  }
  // add2: the two vectors added in float32 lane by lane, then in double, as the
  // backward kernels' two-vectors-per-step loops sum their terms
  {
    learnact::DoubleLanes s;
    double lane[W] = {};
    for (int k = 0; k < 3; ++k) {
      for (int i = 0; i < W; ++i) {
        x[i] = (0.1f + static_cast<float>(i)) * static_cast<float>(1 << (4 * k));
        g[i] = 1.f / 7.f + static_cast<float>(i * 3 + k);
      }
      s.add2(Vec::loadu(x), Vec::loadu(g));
      for (int i = 0; i < W; ++i) lane[i] += static_cast<double>(x[i] + g[i]);
    }
    double want = 0.0;
    for (int i = 0; i < W; ++i) want += lane[i];
    if (s.sum() != want) {
      std::printf("add2 sums: %.17g, want %.17g\n", s.sum(), want);
      ++bad;
    }
  }
  std::printf("W=%d %s\n", W, bad ? "FAILED" : "ok");
  return bad ? 1 : 0;
#endif
}
