/* ops/simd512.h — AVX-512 versions of the elementwise math of ops/common.h
 * for the activation kernels, 16 floats at a time. Internal to ops/.
 *
 * Why intrinsics: the portable loops of ops/common.h vectorize, but on the
 * machines this library targets (Zen 4: a 512-bit op takes the 256-bit
 * units twice) they run 2.5-8x slower than a copy. What they cannot get
 * from plain C is (1) a reciprocal by rcp14 and one Newton step instead of
 * a divide (the divider alone takes longer per vector than a copy does) and
 * (2) exp with a 16-entry table of 2^(j/16) looked up in a register
 * (vpermd), which leaves a degree-3 polynomial instead of degree 5. Every
 * function here is tested against libm in double in tests/test_fastmath.c
 * (bounds stated there and below); the portable ops/common.h functions
 * stay as the fallback (other CPUs, other architectures).
 *
 * Only where NB_HAVE_V512 is defined (x86-64 with GCC or clang); callers
 * check nb__v512() at run time before calling a kernel built with NB_V512.
 * NaN goes through every function: clamps are max/min with x as the second
 * operand, which returns x when it is NaN. */
#ifndef NABLA_OPS_SIMD512_H
#define NABLA_OPS_SIMD512_H

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define NB_HAVE_V512 1

#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>

#define NB_V512 __attribute__((target("avx512f"), optimize("schedule-insns", "sched-pressure")))

/* Whether this CPU runs the NB_V512 kernels. */
static inline bool nb__v512(void) { return __builtin_cpu_supports("avx512f"); }

/* 2^(j/16) rounded to float, for j = 0..15, with j << 19 subtracted from
 * its bits: adding k << 19 for k = 16n + j then gives 2^n·2^(j/16)'s bits
 * (the exponent field gains n, the j bits cancel) in one integer add. */
static const uint32_t nb__exp2_16_bits[16] __attribute__((aligned(64))) = {
    0x3f800000, 0x3f7daac3, 0x3f7b95c2, 0x3f79c3d3, 0x3f7837f0, 0x3f76f532, 0x3f75fed7, 0x3f75583f,
    0x3f7504f3, 0x3f7508a4, 0x3f75672a, 0x3f76248c, 0x3f7744fd, 0x3f78ccdf, 0x3f7ac0c7, 0x3f7d257d};
/* (2^(j/16) - T[j])/T[j] for T[j] the float above: what expm1 adds back
 * where the table's rounding (up to 6e-8 of 1) would be a large part of a
 * small result. */
static const float nb__exp2_16_lo[16] __attribute__((aligned(64))) = {
    0.000000000e+00f,  4.628547146e-08f, -1.199215749e-08f, 4.729782432e-08f,
    3.193418152e-08f,  3.621057232e-08f, -3.099071932e-08f, -7.475213337e-09f,
    1.711427089e-08f,  -3.047683350e-08f, 5.233334210e-09f, 6.107591766e-09f,
    -1.471960509e-08f, -5.258795177e-09f, -6.128259677e-09f, 5.140609272e-09f};

#define NB__V_SHIFT 12582912.0f /* 1.5·2^23: adding it rounds to an integer */

/* The reduction shared by exp and expm1, for c in [-87.3, 88.5] (the
 * caller clamps): k = round(16c/ln2), c = k·ln2/16 + r with |r| <= ln2/32
 * (Cody-Waite: ln2/16 in two parts, the first product exact within the
 * FMA), s = 2^(k/16) as float (scale and table), and j's bits for the
 * second table. 2^n stays a normal float over the whole clamped range. */
NB_V512 static inline __m512 nb__v_exp_reduce(__m512 c, __m512 *s, __m512i *k) {
    const __m512 t = _mm512_fmadd_ps(c, _mm512_set1_ps(23.0831203f), _mm512_set1_ps(NB__V_SHIFT));
    const __m512 kf = _mm512_sub_ps(t, _mm512_set1_ps(NB__V_SHIFT));
    __m512 r = _mm512_fnmadd_ps(kf, _mm512_set1_ps(4.332169890e-02f), c);
    r = _mm512_fnmadd_ps(kf, _mm512_set1_ps(-1.190408883e-10f), r);
    const __m512i ti = _mm512_castps_si512(t); /* low bits: k + 2^22 */
    const __m512i tab = _mm512_load_si512((const void *)nb__exp2_16_bits);
    *s = _mm512_castsi512_ps(_mm512_add_epi32(_mm512_permutexvar_epi32(ti, tab), _mm512_slli_epi32(ti, 19)));
    *k = ti;
    return r;
}

/* exp(c) for c in [-87.3, 88.5]: 2^(k/16)·exp(r), exp(r) - 1 by its
 * Taylor polynomial of degree 3 (truncation 9.2e-9 on |r| <= ln2/32).
 * Within 2e-7 relative (tests/test_fastmath.c). */
NB_V512 static inline __m512 nb__v_exp_clamped(__m512 c) {
    __m512 s;
    __m512i k;
    const __m512 r = nb__v_exp_reduce(c, &s, &k);
    const __m512 q = _mm512_fmadd_ps(_mm512_set1_ps(1.0f / 6.0f), r, _mm512_set1_ps(0.5f));
    const __m512 p = _mm512_fmadd_ps(_mm512_mul_ps(r, r), q, r); /* exp(r) - 1 */
    return _mm512_fmadd_ps(s, p, s);
}

/* exp(-c) for c in [-88.5, 87.3], the same steps with the sign folded
 * into them (no negation): u = -r, exp(r) - 1 = -u + u²·(1/2 - u/6). */
NB_V512 static inline __m512 nb__v_exp_neg_clamped(__m512 c) {
    const __m512 t = _mm512_fmadd_ps(c, _mm512_set1_ps(-23.0831203f), _mm512_set1_ps(NB__V_SHIFT));
    const __m512 kf = _mm512_sub_ps(t, _mm512_set1_ps(NB__V_SHIFT));
    __m512 u = _mm512_fmadd_ps(kf, _mm512_set1_ps(4.332169890e-02f), c);
    u = _mm512_fmadd_ps(kf, _mm512_set1_ps(-1.190408883e-10f), u);
    const __m512i ti = _mm512_castps_si512(t);
    const __m512i tab = _mm512_load_si512((const void *)nb__exp2_16_bits);
    const __m512 s =
        _mm512_castsi512_ps(_mm512_add_epi32(_mm512_permutexvar_epi32(ti, tab), _mm512_slli_epi32(ti, 19)));
    const __m512 q = _mm512_fnmadd_ps(_mm512_set1_ps(1.0f / 6.0f), u, _mm512_set1_ps(0.5f));
    const __m512 p = _mm512_fmsub_ps(_mm512_mul_ps(u, u), q, u);
    return _mm512_fmadd_ps(s, p, s);
}

/* expm1(c) for c in [-87.3, 88.5] as s·(p + lo) + (s - 1), with p =
 * expm1(r) to degree 4 (relative truncation 1.8e-9) and lo the table's
 * relative rounding: s - 1 is exact where the result is small (s in [1/2,
 * 2]), and for k = 0 the result is p itself, so tiny c keeps its relative
 * precision. Within 2.5e-7 relative. */
NB_V512 static inline __m512 nb__v_expm1_clamped(__m512 c) {
    __m512 s;
    __m512i k;
    const __m512 r = nb__v_exp_reduce(c, &s, &k);
    __m512 q = _mm512_fmadd_ps(_mm512_set1_ps(1.0f / 24.0f), r, _mm512_set1_ps(1.0f / 6.0f));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(0.5f));
    const __m512 p = _mm512_fmadd_ps(_mm512_mul_ps(r, r), q, r);
    const __m512 lo = _mm512_permutexvar_ps(k, _mm512_load_ps(nb__exp2_16_lo));
    return _mm512_fmadd_ps(s, _mm512_add_ps(p, lo), _mm512_sub_ps(s, _mm512_set1_ps(1.0f)));
}

/* 1/d by rcp14 (relative error below 2^-14) and one Newton step, r + r·(1
 * - d·r): within 1 ulp plus 2^-28, about 1.2e-7 relative; exactly 1 for d =
 * 1. For normal d whose reciprocal is normal (|d| < 8.5e37). */
NB_V512 static inline __m512 nb__v_rcp(__m512 d) {
    const __m512 r = _mm512_rcp14_ps(d);
    return _mm512_fmadd_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(1.0f)), r);
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
    return nb__v_rcp(_mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

/* Bitwise: sign bit from x, the rest from m (vpternlogd 0xD8: C ? B : A
 * per bit, with C the sign mask). */
NB_V512 static inline __m512 nb__v_with_sign_of(__m512 m, __m512 x) {
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    return _mm512_castsi512_ps(
        _mm512_ternarylogic_epi32(_mm512_castps_si512(m), _mm512_castps_si512(x), sign, 0xD8));
}

/* tanh(x) = -t/(2 + t) with t = expm1(-2|x|), signed as x: no cancellation
 * near 0 and nothing overflows; |x| clamped at 43.6 (tanh is 1 in float
 * from 9.1 on). Within 4e-7 relative. */
NB_V512 static inline __m512 nb__v_tanh(__m512 x) {
    const __m512 ax = _mm512_min_ps(_mm512_set1_ps(43.6f), _mm512_abs_ps(x));
    const __m512 t = nb__v_expm1_clamped(_mm512_mul_ps(ax, _mm512_set1_ps(-2.0f)));
    const __m512 h = _mm512_mul_ps(t, nb__v_rcp(_mm512_sub_ps(_mm512_set1_ps(-2.0f), t)));
    return nb__v_with_sign_of(h, x);
}

/* log(1 + u) for u in [0, 1] as ops/common.h's nb__log1p_small, with the
 * division u/(2 + u) by nb__v_rcp. */
NB_V512 static inline __m512 nb__v_log1p_small(__m512 u) {
    const __m512 s = _mm512_mul_ps(u, nb__v_rcp(_mm512_add_ps(_mm512_set1_ps(2.0f), u)));
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
    const __m512 t = _mm512_fmadd_ps(_mm512_add_ps(c, b), _mm512_set1_ps(23.0831203f), _mm512_set1_ps(NB__V_SHIFT));
    const __m512 kf = _mm512_sub_ps(t, _mm512_set1_ps(NB__V_SHIFT));
    __m512 r = _mm512_add_ps(_mm512_fnmadd_ps(kf, _mm512_set1_ps(4.332169890e-02f), c), b);
    r = _mm512_fnmadd_ps(kf, _mm512_set1_ps(-1.190408883e-10f), r);
    const __m512i ti = _mm512_castps_si512(t);
    const __m512i tab = _mm512_load_si512((const void *)nb__exp2_16_bits);
    const __m512 s =
        _mm512_castsi512_ps(_mm512_add_epi32(_mm512_permutexvar_epi32(ti, tab), _mm512_slli_epi32(ti, 19)));
    const __m512 q = _mm512_fmadd_ps(_mm512_set1_ps(1.0f / 6.0f), r, _mm512_set1_ps(0.5f));
    const __m512 p = _mm512_fmadd_ps(_mm512_mul_ps(r, r), q, r);
    return _mm512_fmadd_ps(s, p, s);
}

/* x·x/2 as hi + lo with hi exact, as nb__half_square. */
NB_V512 static inline void nb__v_half_square(__m512 x, __m512 *hi, __m512 *lo) {
    const __m512 xh = _mm512_castsi512_ps(
        _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0xfffff000u)));
    const __m512 xl = _mm512_sub_ps(x, xh);
    *hi = _mm512_mul_ps(_mm512_mul_ps(xh, xh), _mm512_set1_ps(0.5f));
    *lo = _mm512_mul_ps(_mm512_mul_ps(xl, _mm512_set1_ps(0.5f)), _mm512_add_ps(x, xh));
}

/* Q(|x|) = P(N(0,1) > |x|), as nb__normal_tail (Numerical Recipes' erfcc,
 * 1/(1 + z/2) by nb__v_rcp); 0 from |x| = 14 on, NaN stays NaN. */
NB_V512 static inline __m512 nb__v_normal_tail(__m512 x) {
    const __m512 ax = _mm512_abs_ps(x);
    const __m512 t = nb__v_rcp(_mm512_fmadd_ps(ax, _mm512_set1_ps(0.35355339059327376f), _mm512_set1_ps(1.0f)));
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
    __m512 hi, lo;
    nb__v_half_square(x, &hi, &lo);
    const __m512 e = nb__v_exp_sum(_mm512_sub_ps(_mm512_setzero_ps(), hi), _mm512_sub_ps(_mm512_setzero_ps(), lo));
    const __m512 d = _mm512_mul_ps(e, _mm512_set1_ps(0.39894228040143267794f));
    const __mmask16 far = _mm512_cmp_ps_mask(_mm512_abs_ps(x), _mm512_set1_ps(14.0f), _CMP_GE_OQ);
    return _mm512_mask_mov_ps(d, far, _mm512_setzero_ps());
}

#endif
#endif
