/* ops/simd512.h — AVX-512 versions of the elementwise math of ops/common.h
 * for the activation kernels, 16 floats at a time. Internal to ops/.
 *
 * Why intrinsics: the portable loops of ops/common.h vectorize, but on the
 * machines this library targets (Zen 4: a 512-bit op takes the 256-bit
 * units twice) they run 2.5-8x slower than a copy. What they cannot get
 * from plain C is exp with a 32-entry table of 2^(j/32) looked up in two registers
 * (vpermt2d), which leaves a degree-2 polynomial instead of degree 5,
 * and a schedule that interleaves four vectors' dependency chains
 * (schedule-insns, which GCC does not run on x86 by default). Divides stay
 * divides: measured on Zen 4, rcp14 and a Newton step were slower (two
 * more FMAs on the busy FMA pipes, where the divider works beside them). Every
 * function here is tested against libm in double in tests/test_fastmath.c
 * (bounds stated there and below); the portable ops/common.h functions
 * stay as the fallback (other CPUs, other architectures).
 *
 * Only where NB_HAVE_V512 is defined (x86-64 with GCC or clang, unless
 * built with -DNB_NO_SIMD512 to check the portable build); callers
 * check nb__v512() at run time before calling a kernel built with NB_V512.
 * NaN goes through every function: clamps are max/min with x as the second
 * operand, which returns x when it is NaN. */
#ifndef NABLA_OPS_SIMD512_H
#define NABLA_OPS_SIMD512_H

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(NB_NO_SIMD512)
#define NB_HAVE_V512 1

#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>

/* GCC does not run its first scheduling pass on x86 by default; without
 * it the four vectors of an unrolled loop run one after the other, each a
 * long dependency chain, and the out-of-order window cannot cover them
 * (25% slower measured). clang schedules by itself. */
#if defined(__clang__)
#define NB_V512 __attribute__((target("avx512f")))
#else
#define NB_V512 __attribute__((target("avx512f"), optimize("schedule-insns", "sched-pressure")))
#endif

/* Set by tests to run the portable kernels on an AVX-512 CPU too (defined
 * in ops/activation.c). */
extern bool nb__v512_disabled;

/* Whether the NB_V512 kernels run: the CPU has AVX-512 and the tests did
 * not turn them off. */
static inline bool nb__v512(void) { return !nb__v512_disabled && __builtin_cpu_supports("avx512f"); }

/* 2^(j/32) rounded to float, for j = 0..31, with j << 18 subtracted from
 * its bits: adding k << 18 for k = 32n + j then gives 2^n·2^(j/32)'s bits
 * (the exponent field gains n, the j bits cancel) in one integer add. Two
 * registers of 16, looked up by vpermt2d on k's low 5 bits. */
static const uint32_t nb__exp2_32_bits[32] __attribute__((aligned(64))) = {
    0x3f800000, 0x3f7ecd87, 0x3f7daac3, 0x3f7c980f, 0x3f7b95c2, 0x3f7aa43a, 0x3f79c3d3, 0x3f78f4f0,
    0x3f7837f0, 0x3f778d3a, 0x3f76f532, 0x3f767043, 0x3f75fed7, 0x3f75a15b, 0x3f75583f, 0x3f7523f6,
    0x3f7504f3, 0x3f74fbaf, 0x3f7508a4, 0x3f752c4d, 0x3f75672a, 0x3f75b9be, 0x3f76248c, 0x3f76a81e,
    0x3f7744fd, 0x3f77fbb8, 0x3f78ccdf, 0x3f79b907, 0x3f7ac0c7, 0x3f7be4ba, 0x3f7d257d, 0x3f7e83b3};
/* (2^(j/32) - T[j])/T[j] for T[j] the float above: what expm1 adds back
 * where the table's rounding (up to 6e-8 of 1) would be a large part of a
 * small result. */
static const float nb__exp2_32_lo[32] __attribute__((aligned(64))) = {
    0.000000000e+00f,  -4.708457624e-08f, 4.628547146e-08f,  -5.560422522e-08f, -1.199215749e-08f,
    -4.877606230e-08f, 4.729782432e-08f,  -3.481442690e-08f, 3.193418152e-08f,  -2.688666534e-08f,
    3.621057232e-08f,  1.118421022e-09f,  -3.099071932e-08f, -2.638300955e-08f, -7.475213337e-09f,
    -4.245635665e-08f, 1.711427089e-08f,  2.300196655e-08f,  -3.047683350e-08f, -1.653853765e-08f,
    5.233334210e-09f,  -3.592064601e-08f, 6.107591766e-09f,  -3.114054437e-08f, -1.471960509e-08f,
    -2.821810163e-08f, -5.258795177e-09f, -6.360387328e-09f, -6.128259677e-09f, -2.488040884e-08f,
    5.140609272e-09f,  -8.697266907e-09f};

#define NB__V_SHIFT 12582912.0f /* 1.5·2^23: adding it rounds to an integer */
#define NB__V_K 46.1662407f     /* 32/ln2 */
#define NB__V_L1 2.166084945e-02f /* ln2/32 = L1 + L2 */
#define NB__V_L2 -5.952044413e-11f
/* exp(r) - 1 = r·(C1 + C2·r) on |r| <= ln2/64, relative error 5.3e-8 on
 * exp (fitted by Lawson's algorithm); expm1(r) = r + E2·r² + E3·r³,
 * relative error 1.4e-8 on expm1 (the same). */
#define NB__V_C1 1.000014663e+00f
#define NB__V_C2 5.000001788e-01f
#define NB__V_E2 5.000036359e-01f
#define NB__V_E3 1.666671187e-01f

/* 2^(k/32) from t, which holds k + 2^22 in its low bits (k = 32n + j). */
NB_V512 static inline __m512 nb__v_exp_scale(__m512i ti) {
    const __m512i lo = _mm512_load_si512((const void *)nb__exp2_32_bits);
    const __m512i hi = _mm512_load_si512((const void *)(nb__exp2_32_bits + 16));
    return _mm512_castsi512_ps(_mm512_add_epi32(_mm512_permutex2var_epi32(lo, ti, hi), _mm512_slli_epi32(ti, 18)));
}

/* The reduction shared by exp and expm1, for c in [-87.3, 88.5] (the
 * caller clamps): k = round(32c/ln2), c = k·ln2/32 + r with |r| <= ln2/64
 * (Cody-Waite: ln2/32 in two parts, the first product exact within the
 * FMA), s = 2^(k/32) as float (scale and table), and k's bits for the
 * second table. 2^n stays a normal float over the whole clamped range. */
NB_V512 static inline __m512 nb__v_exp_reduce(__m512 c, __m512 *s, __m512i *k) {
    const __m512 t = _mm512_fmadd_ps(c, _mm512_set1_ps(NB__V_K), _mm512_set1_ps(NB__V_SHIFT));
    const __m512 kf = _mm512_sub_ps(t, _mm512_set1_ps(NB__V_SHIFT));
    __m512 r = _mm512_fnmadd_ps(kf, _mm512_set1_ps(NB__V_L1), c);
    r = _mm512_fnmadd_ps(kf, _mm512_set1_ps(NB__V_L2), r);
    *k = _mm512_castps_si512(t); /* low bits: k + 2^22 */
    *s = nb__v_exp_scale(*k);
    return r;
}

/* exp(c) for c in [-87.3, 88.5]: 2^(k/32)·exp(r), exp(r) by its fitted
 * polynomial of degree 2. Within 2e-7 relative (tests/test_fastmath.c). */
NB_V512 static inline __m512 nb__v_exp_clamped(__m512 c) {
    __m512 s;
    __m512i k;
    const __m512 r = nb__v_exp_reduce(c, &s, &k);
    const __m512 p = _mm512_mul_ps(_mm512_fmadd_ps(_mm512_set1_ps(NB__V_C2), r, _mm512_set1_ps(NB__V_C1)), r);
    return _mm512_fmadd_ps(s, p, s);
}

/* exp(-c) for c in [-88.5, 87.3], the same steps with the sign folded
 * into them (no negation): u = -r, exp(r) - 1 = -u·(C1 - C2·u). */
NB_V512 static inline __m512 nb__v_exp_neg_clamped(__m512 c) {
    const __m512 t = _mm512_fmadd_ps(c, _mm512_set1_ps(-NB__V_K), _mm512_set1_ps(NB__V_SHIFT));
    const __m512 kf = _mm512_sub_ps(t, _mm512_set1_ps(NB__V_SHIFT));
    __m512 u = _mm512_fmadd_ps(kf, _mm512_set1_ps(NB__V_L1), c);
    u = _mm512_fmadd_ps(kf, _mm512_set1_ps(NB__V_L2), u);
    const __m512 s = nb__v_exp_scale(_mm512_castps_si512(t));
    const __m512 qu = _mm512_mul_ps(_mm512_fnmadd_ps(_mm512_set1_ps(NB__V_C2), u, _mm512_set1_ps(NB__V_C1)), u);
    return _mm512_fnmadd_ps(s, qu, s);
}

/* expm1(c) for c in [-87.3, 88.5] as s·(p + lo) + (s - 1), with p =
 * expm1(r) to degree 3 and lo the table's relative rounding: s - 1 is
 * exact where the result is small (s in [1/2, 2]), and for k = 0 the result
 * is p itself, so tiny c keeps its relative precision. Within 2.5e-7
 * relative. */
NB_V512 static inline __m512 nb__v_expm1_clamped(__m512 c) {
    __m512 s;
    __m512i k;
    const __m512 r = nb__v_exp_reduce(c, &s, &k);
    const __m512 q = _mm512_fmadd_ps(_mm512_set1_ps(NB__V_E3), r, _mm512_set1_ps(NB__V_E2));
    const __m512 p = _mm512_fmadd_ps(_mm512_mul_ps(r, r), q, r);
    const __m512 lo = _mm512_permutex2var_ps(_mm512_load_ps(nb__exp2_32_lo), k, _mm512_load_ps(nb__exp2_32_lo + 16));
    return _mm512_fmadd_ps(s, _mm512_add_ps(p, lo), _mm512_sub_ps(s, _mm512_set1_ps(1.0f)));
}

/* Clamp to [lo, hi]; NaN stays NaN. */
NB_V512 static inline __m512 nb__v_clamp(__m512 x, float lo, float hi) {
    return _mm512_max_ps(_mm512_set1_ps(lo), _mm512_min_ps(_mm512_set1_ps(hi), x));
}

/* sigmoid(x) = 1/(1 + exp(-x)), exp's argument clamped to [-87.3, 87.3]:
 * 1 + exp(-x) has no cancellation and for x -> -inf its reciprocal keeps
 * relative precision down to 1.2e-38 (sigmoid(x < -87.3)); 1 from x =
 * 16.7 on. Within 4e-7 relative. */
NB_V512 static inline __m512 nb__v_sigmoid(__m512 x) {
    const __m512 e = nb__v_exp_neg_clamped(nb__v_clamp(x, -87.3f, 87.3f));
    return _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

/* Bitwise: sign bit from x, the rest from m (vpternlogd 0xD8: C ? B : A
 * per bit, with C the sign mask). */
NB_V512 static inline __m512 nb__v_with_sign_of(__m512 m, __m512 x) {
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    return _mm512_castsi512_ps(
        _mm512_ternarylogic_epi32(_mm512_castps_si512(m), _mm512_castps_si512(x), sign, 0xD8));
}

/* expm1(-2a) for a in [0, 43.6] (tanh's), as nb__v_expm1_clamped of -2a
 * with the factor -2 folded into the reduction: u = -r, expm1(r) = -u +
 * u²·(E2 - E3·u). */
NB_V512 static inline __m512 nb__v_expm1_m2(__m512 a) {
    const __m512 t = _mm512_fmadd_ps(a, _mm512_set1_ps(-2.0f * NB__V_K), _mm512_set1_ps(NB__V_SHIFT));
    const __m512 kf = _mm512_sub_ps(t, _mm512_set1_ps(NB__V_SHIFT));
    const __m512 a2 = _mm512_add_ps(a, a); /* exact */
    __m512 u = _mm512_fmadd_ps(kf, _mm512_set1_ps(NB__V_L1), a2);
    u = _mm512_fmadd_ps(kf, _mm512_set1_ps(NB__V_L2), u);
    const __m512i k = _mm512_castps_si512(t);
    const __m512 s = nb__v_exp_scale(k);
    const __m512 q = _mm512_fnmadd_ps(_mm512_set1_ps(NB__V_E3), u, _mm512_set1_ps(NB__V_E2));
    const __m512 p = _mm512_fmsub_ps(_mm512_mul_ps(u, u), q, u);
    const __m512 lo = _mm512_permutex2var_ps(_mm512_load_ps(nb__exp2_32_lo), k, _mm512_load_ps(nb__exp2_32_lo + 16));
    return _mm512_fmadd_ps(s, _mm512_add_ps(p, lo), _mm512_sub_ps(s, _mm512_set1_ps(1.0f)));
}

/* tanh(x) = -t/(2 + t) with t = expm1(-2|x|), signed as x: no cancellation
 * near 0 and nothing overflows; |x| clamped at 43.6 (tanh is 1 in float
 * from 9.1 on). Within 4e-7 relative. */
NB_V512 static inline __m512 nb__v_tanh(__m512 x) {
    const __m512 ax = _mm512_min_ps(_mm512_set1_ps(43.6f), _mm512_abs_ps(x));
    const __m512 t = nb__v_expm1_m2(ax);
    const __m512 h = _mm512_div_ps(t, _mm512_sub_ps(_mm512_set1_ps(-2.0f), t));
    return nb__v_with_sign_of(h, x);
}

/* log(1 + u) for u in [0, 1] as ops/common.h's nb__log1p_small, with the
 * same polynomial. */
NB_V512 static inline __m512 nb__v_log1p_small(__m512 u) {
    const __m512 s = _mm512_div_ps(u, _mm512_add_ps(_mm512_set1_ps(2.0f), u));
    const __m512 s2 = _mm512_mul_ps(s, s);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(2.817817330e-1f), s2, _mm512_set1_ps(2.796064317e-1f));
    p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(4.002490640e-1f));
    p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(6.666631699e-1f));
    p = _mm512_fmadd_ps(p, s2, _mm512_set1_ps(2.0f));
    return _mm512_mul_ps(p, s);
}

/* softplus(x) = max(x, 0) + log1p(exp(-|x|)). */
NB_V512 static inline __m512 nb__v_softplus(__m512 x) {
    const __m512 ax = _mm512_min_ps(_mm512_set1_ps(87.3f), _mm512_abs_ps(x));
    const __m512 l = nb__v_log1p_small(nb__v_exp_neg_clamped(ax));
    /* max(0, x) would turn NaN into 0; l is NaN then, so the sum is NaN */
    return _mm512_add_ps(_mm512_max_ps(x, _mm512_setzero_ps()), l);
}

/* exp(a + b) as ops/common.h's nb__exp_sum: a <= 0 known exactly (clamped
 * at -85.3), a small correction b in [-2, 2], the reduction subtracting
 * k·ln2/16 from a before adding b. */
NB_V512 static inline __m512 nb__v_exp_sum(__m512 a, __m512 b) {
    const __m512 c = _mm512_max_ps(_mm512_set1_ps(-85.3f), a);
    const __m512 t = _mm512_fmadd_ps(_mm512_add_ps(c, b), _mm512_set1_ps(NB__V_K), _mm512_set1_ps(NB__V_SHIFT));
    const __m512 kf = _mm512_sub_ps(t, _mm512_set1_ps(NB__V_SHIFT));
    __m512 r = _mm512_add_ps(_mm512_fnmadd_ps(kf, _mm512_set1_ps(NB__V_L1), c), b);
    r = _mm512_fnmadd_ps(kf, _mm512_set1_ps(NB__V_L2), r);
    const __m512 s = nb__v_exp_scale(_mm512_castps_si512(t));
    const __m512 p = _mm512_mul_ps(_mm512_fmadd_ps(_mm512_set1_ps(NB__V_C2), r, _mm512_set1_ps(NB__V_C1)), r);
    return _mm512_fmadd_ps(s, p, s);
}

/* x·x/2 as hi + lo exactly: hi the rounded product, lo its rounding error
 * from an FMA (x/2 is exact). Same use as nb__half_square. */
NB_V512 static inline void nb__v_half_square(__m512 x, __m512 *hi, __m512 *lo) {
    const __m512 hx = _mm512_mul_ps(x, _mm512_set1_ps(0.5f));
    *hi = _mm512_mul_ps(hx, x);
    *lo = _mm512_fmsub_ps(hx, x, *hi);
}

/* Q(|x|) = P(N(0,1) > |x|), as nb__normal_tail (Numerical Recipes' erfcc,
 * vectorized); 0 from |x| = 14 on, NaN stays NaN. */
NB_V512 static inline __m512 nb__v_normal_tail(__m512 x) {
    const __m512 ax = _mm512_abs_ps(x);
    const __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(ax, _mm512_set1_ps(0.35355339059327376f), _mm512_set1_ps(1.0f)));
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(0.17087277f), t, _mm512_set1_ps(-0.82215223f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.48851587f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.13520398f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.27886807f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.18628806f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.09678418f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.37409196f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.00002368f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.26551223f));
    __m512 hi, lo;
    nb__v_half_square(ax, &hi, &lo);
    const __m512 e = nb__v_exp_sum(_mm512_sub_ps(_mm512_setzero_ps(), hi), _mm512_sub_ps(p, lo));
    const __m512 q = _mm512_mul_ps(_mm512_mul_ps(t, _mm512_set1_ps(0.5f)), e);
    const __mmask16 far = _mm512_cmp_ps_mask(ax, _mm512_set1_ps(14.0f), _CMP_GE_OQ);
    return _mm512_mask_mov_ps(q, far, _mm512_setzero_ps());
}

/* Φ(x): Q(|x|) on the left, 1 - Q(|x|) on the right. */
NB_V512 static inline __m512 nb__v_normal_cdf(__m512 x) {
    const __m512 q = nb__v_normal_tail(x);
    const __mmask16 right = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ);
    return _mm512_mask_sub_ps(q, right, _mm512_set1_ps(1.0f), q);
}

/* φ(x) = exp(-x²/2)/√(2π), 0 from |x| = 14 on. */
NB_V512 static inline __m512 nb__v_normal_pdf(__m512 x) {
    const __m512 ax = _mm512_abs_ps(x); /* as in nb__v_normal_tail, which then shares the square */
    __m512 hi, lo;
    nb__v_half_square(ax, &hi, &lo);
    const __m512 e = nb__v_exp_sum(_mm512_sub_ps(_mm512_setzero_ps(), hi), _mm512_sub_ps(_mm512_setzero_ps(), lo));
    const __m512 d = _mm512_mul_ps(e, _mm512_set1_ps(0.39894228040143267794f));
    const __mmask16 far = _mm512_cmp_ps_mask(ax, _mm512_set1_ps(14.0f), _CMP_GE_OQ);
    return _mm512_mask_mov_ps(d, far, _mm512_setzero_ps());
}

#else
#include <stdbool.h>
static inline bool nb__v512(void) { return false; }
#endif
#endif
