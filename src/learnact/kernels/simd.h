// The explicit SIMD layer of the CPU kernels: a float32 vector type (FVec) and
// lane-wise float64 sums of its lanes (DoubleLanes), for each build variant. Kept
// apart from kernel_common.h so that it compiles on its own (tests/native/simd_check.cpp
// checks it natively and, where a cross compiler and qemu exist, on 64-bit ARM).
#pragma once

#include <ATen/cpu/vec/vec.h>

#include <cstdint>

// ---------------------------------------------------------------- explicit SIMD
// LEARNACT_SIMD is 1 where a build has an explicit float32 vector path, with FVec as
// its vector type (loadu, store, +, *, >=, blendv, fmadd):
// - the AVX2 and AVX-512 variants: at::vec::Vectorized<float> (8 and 16 lanes);
// - the baseline variant on 64-bit ARM: at::vec::Vectorized<float>, which ATen's
//   DEFAULT capability implements with NEON there (4 lanes);
// - the baseline variant on x86-64: SSE2 (part of x86-64 itself) through Sse2Float
//   below. ATen's DEFAULT Vectorized<float> on x86 is its generic array form, whose
//   comparisons and selects branch per lane: on random signs they mispredict, which is
//   why ATen's own relu at DEFAULT capability runs about 8x slower than at AVX2.
// Other machines (32-bit ARM, POWER, s390x) run the lane loops, which the compiler
// vectorizes as it can.
#if defined(CPU_CAPABILITY_AVX2) || defined(CPU_CAPABILITY_AVX512)
#include <immintrin.h>
#define LEARNACT_SIMD 1
#elif defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#define LEARNACT_SIMD 1
#elif defined(__x86_64__) || defined(_M_X64)
#include <emmintrin.h>
#define LEARNACT_SIMD 1
#define LEARNACT_SSE2 1
#else
#define LEARNACT_SIMD 0
#endif

namespace learnact {

// Whether G's own maths (exp, erf, reciprocal) is explicit SIMD in this build: only the
// AVX2 and AVX-512 variants, whose Vectorized<float> has vector exp and erf. The
// inline-G recipe (recipe_cpu.cpp) is only faster than running G in ATen where it is,
// and the module says so to dispatch.py (its SIMD attribute); the baseline variant's
// SSE2/NEON path (FVec below) covers the selects and sums, not G.
#if defined(CPU_CAPABILITY_AVX2) || defined(CPU_CAPABILITY_AVX512)
constexpr bool kSimdG = true;
#else
constexpr bool kSimdG = false;
#endif

#if defined(LEARNACT_SSE2)
// Four float32 lanes in an SSE2 register, with the part of at::vec::Vectorized's
// interface the kernels use. Comparisons give all-ones lanes, and blendv selects
// with and/andnot/or (SSE2 has no blend instruction), so both are branch-free.
struct Sse2Float {
  __m128 v;
  Sse2Float() = default;
  Sse2Float(__m128 r) : v(r) {}
  explicit Sse2Float(float s) : v(_mm_set1_ps(s)) {}
  static constexpr int64_t size() { return 4; }
  static Sse2Float loadu(const float* p) { return _mm_loadu_ps(p); }
  void store(float* p) const { _mm_storeu_ps(p, v); }
  operator __m128() const { return v; }
  // b where mask is all ones, else a
  static Sse2Float blendv(const Sse2Float& a, const Sse2Float& b, const Sse2Float& mask) {
    return _mm_or_ps(_mm_and_ps(mask.v, b.v), _mm_andnot_ps(mask.v, a.v));
  }
  // ordered: false for NaN, true for -0.0 >= 0, as the scalar comparison
  Sse2Float operator>=(const Sse2Float& o) const { return _mm_cmpge_ps(v, o.v); }
  Sse2Float operator<(const Sse2Float& o) const { return _mm_cmplt_ps(v, o.v); }
  Sse2Float operator*(const Sse2Float& o) const { return _mm_mul_ps(v, o.v); }
  Sse2Float operator+(const Sse2Float& o) const { return _mm_add_ps(v, o.v); }
  Sse2Float operator-(const Sse2Float& o) const { return _mm_sub_ps(v, o.v); }
};
// a * b + c, rounded twice (SSE2 has no fused multiply-add), as the scalar loop does
inline Sse2Float fmadd(const Sse2Float& a, const Sse2Float& b, const Sse2Float& c) {
  return a * b + c;
}
using FVec = Sse2Float;
#elif LEARNACT_SIMD
using FVec = at::vec::Vectorized<float>;
using at::vec::fmadd;
#endif

#if LEARNACT_SIMD
// Lane-wise float64 sums of float32 vectors, kept in registers: add() widens a vector
// and adds it in double (as accurate as a float64 sum of its terms), at the cost of
// two conversions and two adds; add2() first adds two vectors in float32. at::vec has no
// fast float -> double conversion, hence the intrinsics.
struct DoubleLanes {
#if defined(CPU_CAPABILITY_AVX512)
  __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
  void add(const FVec& v) {
    const __m512 r = v;
    lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(r)));
    hi = _mm512_add_pd(hi, _mm512_cvtps_pd(_mm512_extractf32x8_ps(r, 1)));
  }
  static constexpr int kHalf = 8;
  void spill(double* buf) const {
    _mm512_storeu_pd(buf, lo);
    _mm512_storeu_pd(buf + kHalf, hi);
  }
#elif defined(CPU_CAPABILITY_AVX2)
  __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
  void add(const FVec& v) {
    const __m256 r = v;
    lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(r)));
    hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(r, 1)));
  }
  static constexpr int kHalf = 4;
  void spill(double* buf) const {
    _mm256_storeu_pd(buf, lo);
    _mm256_storeu_pd(buf + kHalf, hi);
  }
#elif defined(LEARNACT_SSE2)
  __m128d lo = _mm_setzero_pd(), hi = _mm_setzero_pd();
  void add(const FVec& v) {
    const __m128 r = v;
    lo = _mm_add_pd(lo, _mm_cvtps_pd(r));
    hi = _mm_add_pd(hi, _mm_cvtps_pd(_mm_movehl_ps(r, r)));
  }
  static constexpr int kHalf = 2;
  void spill(double* buf) const {
    _mm_storeu_pd(buf, lo);
    _mm_storeu_pd(buf + kHalf, hi);
  }
#else  // NEON (aarch64)
  float64x2_t lo = vdupq_n_f64(0.0), hi = vdupq_n_f64(0.0);
  void add(const FVec& v) {
    const float32x4_t r = v;
    lo = vaddq_f64(lo, vcvt_f64_f32(vget_low_f32(r)));
    hi = vaddq_f64(hi, vcvt_high_f64_f32(r));
  }
  static constexpr int kHalf = 2;
  void spill(double* buf) const {
    vst1q_f64(buf, lo);
    vst1q_f64(buf + kHalf, hi);
  }
#endif
  // a + b rounded once in float32, then added in double: one rounding per pair of
  // terms (at most 2^-24 |a + b| per lane, unless a + b overflows float32) for half
  // the widening work of two adds
  void add2(const FVec& a, const FVec& b) { add(a + b); }
  // the lanes added in a fixed order: deterministic
  double sum() const {
    double buf[2 * kHalf];
    spill(buf);
    double total = 0.0;
    for (int k = 0; k < 2 * kHalf; ++k) total += buf[k];
    return total;
  }
};
#endif

}  // namespace learnact
