/* Gradient clipping on its own: by value, by each tensor's norm and by the
 * global norm, against values computed here; frozen tensors, tensors
 * without gradients, non-finite gradients and bad bounds. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"
#include "helpers.h"
#include "nabla/optim.h"
#include "nabla/testing.h"

/* A tensor whose gradient holds g (its data is zero). */
static nb_tensor *with_grad(const char *name, int n, const float *g) {
    nb_tensor *t = nb_tensor_new(1, (int[]){n});
    cr_assert(t, "%s", nb_last_error());
    nb_tensor_set_name(t, name);
    cr_assert_eq(nb__tensor_ensure_grad(t), 0);
    memcpy(t->grad, g, (size_t)n * sizeof(float));
    return t;
}

static double norm_of(const float *g, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return sqrt(s);
}

Test(clip, by_value_clamps_each_element) {
    nb_tensor *a = with_grad("a", 6, (float[]){2.0f, -3.0f, 0.25f, -0.5f, 0.5f, -0.49f});
    nb_tensor *b = with_grad("b", 2, (float[]){-100.0f, 1e-3f});
    nb_clip_by_value(2, (nb_tensor *[]){a, b}, 0.5f);
    nb_assert_near(a->grad, ((float[]){0.5f, -0.5f, 0.25f, -0.5f, 0.5f, -0.49f}), 6, 0, 0);
    nb_assert_near(b->grad, ((float[]){-0.5f, 1e-3f}), 2, 0, 0);
    /* Keras's check: clipvalue 1 takes (100, 100) to (1, 1) */
    nb_tensor *c = with_grad("c", 2, (float[]){100.0f, 100.0f});
    nb_clip_by_value(1, &c, 1.0f);
    nb_assert_near(c->grad, ((float[]){1.0f, 1.0f}), 2, 0, 0);
    nb_tensor_free(a);
    nb_tensor_free(b);
    nb_tensor_free(c);
}

Test(clip, by_value_keeps_nan_and_clamps_infinities) {
    nb_tensor *a = with_grad("a", 3, (float[]){NAN, INFINITY, -INFINITY});
    nb_clip_by_value(1, &a, 2.0f);
    cr_assert(isnan(a->grad[0]), "NaN became %g", (double)a->grad[0]);
    cr_assert_eq(a->grad[1], 2.0f);
    cr_assert_eq(a->grad[2], -2.0f);
    nb_tensor_free(a);
}

Test(clip, by_norm_rescales_each_tensor_on_its_own) {
    /* a: norm 13 > 2 -> a·2/13; b: norm 0.5 <= 2 -> unchanged */
    const float ga[3] = {3.0f, 4.0f, 12.0f}, gb[2] = {0.3f, -0.4f};
    nb_tensor *a = with_grad("a", 3, ga), *b = with_grad("b", 2, gb);
    nb_clip_by_norm(2, (nb_tensor *[]){a, b}, 2.0f);
    const double k = 2.0 / 13.0;
    nb_assert_near(a->grad, ((float[]){(float)(3 * k), (float)(4 * k), (float)(12 * k)}), 3, 0, 1e-6);
    cr_assert_arr_eq(b->grad, gb, sizeof gb, "a tensor under the bound is left exactly as it was");
    cr_assert_float_eq(norm_of(a->grad, 3), 2.0, 1e-6);
    /* Keras's check: clipnorm 1 takes (100, 100) to (sqrt2/2, sqrt2/2) */
    nb_tensor *c = with_grad("c", 2, (float[]){100.0f, 100.0f});
    nb_clip_by_norm(1, &c, 1.0f);
    nb_assert_near(c->grad, ((float[]){0.70710678f, 0.70710678f}), 2, 0, 1e-6);
    nb_tensor_free(a);
    nb_tensor_free(b);
    nb_tensor_free(c);
}

Test(clip, by_norm_zero_bound_zeroes_and_zero_gradients_stay_zero) {
    nb_tensor *a = with_grad("a", 2, (float[]){1.0f, -2.0f}), *z = with_grad("z", 2, (float[]){0, 0});
    nb_clip_by_norm(2, (nb_tensor *[]){a, z}, 0.0f);
    nb_assert_near(a->grad, ((float[]){0, 0}), 2, 0, 0);
    nb_assert_near(z->grad, ((float[]){0, 0}), 2, 0, 0);
    cr_assert_eq(nb_clip_by_global_norm(1, &z, 1.0f), 0.0, "the norm of zeros is 0, no NaN");
    nb_assert_near(z->grad, ((float[]){0, 0}), 2, 0, 0);
    nb_tensor_free(a);
    nb_tensor_free(z);
}

Test(clip, global_norm_rescales_all_together_and_returns_the_norm) {
    const float ga[3] = {3.0f, -4.0f, 1.0f}, gb[4] = {12.0f, 0.5f, -2.0f, 7.0f};
    nb_tensor *a = with_grad("a", 3, ga), *b = with_grad("b", 4, gb);
    const double want = sqrt(9.0 + 16 + 1 + 144 + 0.25 + 4 + 49);
    const double norm = nb_clip_by_global_norm(2, (nb_tensor *[]){a, b}, 5.0f);
    cr_assert_float_eq(norm, want, 1e-12, "norm %.15g, expected %.15g", norm, want);
    float wa[3], wb[4];
    for (int i = 0; i < 3; i++) wa[i] = (float)(ga[i] * 5.0 / want);
    for (int i = 0; i < 4; i++) wb[i] = (float)(gb[i] * 5.0 / want);
    nb_assert_near(a->grad, wa, 3, 0, 1e-6);
    nb_assert_near(b->grad, wb, 4, 0, 1e-6);
    /* now at norm 5: clipping again returns 5 and changes nothing */
    float before[4];
    memcpy(before, b->grad, sizeof before);
    cr_assert_float_eq(nb_clip_by_global_norm(2, (nb_tensor *[]){a, b}, 5.0f), 5.0, 1e-6);
    cr_assert_float_eq(nb_clip_by_global_norm(2, (nb_tensor *[]){a, b}, 6.0f), 5.0, 1e-6);
    cr_assert_arr_eq(b->grad, before, sizeof before);
    nb_tensor_free(a);
    nb_tensor_free(b);
}

Test(clip, frozen_tensors_and_missing_gradients_are_left_out) {
    const float g[2] = {30.0f, 40.0f};
    nb_tensor *live = with_grad("live", 2, (float[]){3.0f, 4.0f}), *frozen = with_grad("frozen", 2, g);
    nb_tensor *none = nb_tensor_new(1, (int[]){2});
    frozen->trainable = false;
    nb_tensor *p[4] = {live, frozen, none, NULL};
    /* the frozen 30, 40 are not in the norm: it is 5, not sqrt(2525) */
    cr_assert_float_eq(nb_clip_by_global_norm(4, p, 1.0f), 5.0, 1e-12);
    nb_assert_near(live->grad, ((float[]){0.6f, 0.8f}), 2, 0, 1e-6);
    nb_clip_by_norm(4, p, 0.1f);
    nb_clip_by_value(4, p, 0.01f);
    cr_assert_arr_eq(frozen->grad, g, sizeof g, "a frozen tensor's gradient was clipped");
    cr_assert_null(none->grad);
    nb_assert_near(live->grad, ((float[]){0.01f, 0.01f}), 2, 0, 1e-6);
    nb_tensor_free(live);
    nb_tensor_free(frozen);
    nb_tensor_free(none);
}

Test(clip, a_non_finite_global_norm_makes_every_gradient_nan_as_keras) {
    nb_tensor *a = with_grad("a", 2, (float[]){INFINITY, 1.0f}), *b = with_grad("b", 2, (float[]){2, 3});
    nb_tensor *p[2] = {a, b};
    cr_assert(isinf(nb_clip_by_global_norm(2, p, 1.0f)));
    for (int i = 0; i < 2; i++) cr_assert(isnan(a->grad[i]) && isnan(b->grad[i]));
    nb_tensor_free(a);
    nb_tensor_free(b);
    /* a NaN norm too */
    a = with_grad("a", 2, (float[]){NAN, 1.0f});
    b = with_grad("b", 1, (float[]){0.5f});
    p[0] = a, p[1] = b;
    cr_assert(isnan(nb_clip_by_global_norm(2, p, 100.0f)));
    cr_assert(isnan(b->grad[0]));
    nb_tensor_free(a);
    nb_tensor_free(b);
}

Test(clip, an_infinite_bound_only_measures_the_norm) {
    nb_tensor *a = with_grad("a", 2, (float[]){INFINITY, 1.0f}), *b = with_grad("b", 2, (float[]){6, 8});
    cr_assert(isinf(nb_clip_by_global_norm(1, &a, INFINITY)));
    cr_assert(isinf(a->grad[0]) && a->grad[1] == 1.0f, "nothing is clipped under an infinite bound");
    cr_assert_float_eq(nb_clip_by_global_norm(1, &b, INFINITY), 10.0, 1e-12);
    nb_assert_near(b->grad, ((float[]){6, 8}), 2, 0, 0);
    nb_clip_by_norm(1, &b, INFINITY);
    nb_clip_by_value(1, &b, INFINITY);
    nb_assert_near(b->grad, ((float[]){6, 8}), 2, 0, 0);
    nb_tensor_free(a);
    nb_tensor_free(b);
}

Test(clip, bad_bounds_clip_nothing_and_say_why) {
    const float g[2] = {6.0f, -8.0f};
    nb_tensor *a = with_grad("a", 2, g);
    nb_clip_by_value(1, &a, -1.0f);
    cr_assert(strstr(nb_last_error(), "clip: value -1 must be >= 0"), "%s", nb_last_error());
    nb_clip_by_norm(1, &a, NAN);
    cr_assert(strstr(nb_last_error(), "clip: norm nan must be >= 0"), "%s", nb_last_error());
    const double norm = nb_clip_by_global_norm(1, &a, -2.0f);
    cr_assert(strstr(nb_last_error(), "clip: global norm -2 must be >= 0"), "%s", nb_last_error());
    cr_assert_float_eq(norm, 10.0, 1e-12, "the norm is still measured");
    cr_assert_arr_eq(a->grad, g, sizeof g);
    /* empty or NULL lists do nothing */
    nb_clip_by_value(0, NULL, 1.0f);
    nb_clip_by_norm(3, NULL, 1.0f);
    nb_clip_by_value(-1, &a, 1.0f);
    cr_assert_eq(nb_clip_by_global_norm(0, NULL, 1.0f), 0.0);
    cr_assert_eq(nb_clip_by_global_norm(2, NULL, 1.0f), 0.0);
    cr_assert_arr_eq(a->grad, g, sizeof g);
    nb_tensor_free(a);
}

/* A long gradient: the norm is accumulated in double (a float sum of a
 * million squares is off by about 1e-4), split over threads, and the same
 * on any thread count. */
Test(clip, long_norms_are_exact_in_double_and_thread_independent) {
    const int n = 1 << 20;
    float *g = malloc((size_t)n * sizeof(float));
    cr_assert(g);
    for (int i = 0; i < n; i++) g[i] = (float)(0.1 + 0.05 * sin(0.001 * i));
    const double want = norm_of(g, (size_t)n);
    double got[2];
    float *clipped[2];
    for (int run = 0; run < 2; run++) {
        nb_set_num_threads(run == 0 ? 1 : 4);
        nb_tensor *a = with_grad("a", n, g), *b = with_grad("b", n, g);
        got[run] = nb_clip_by_global_norm(1, &a, 1.0f);
        nb_clip_by_norm(1, &b, 1.0f);
        cr_assert_float_eq(got[run], want, 1e-12 * want, "norm %.15g, expected %.15g", got[run], want);
        cr_assert_float_eq(norm_of(a->grad, (size_t)n), 1.0, 1e-5);
        cr_assert_arr_eq(a->grad, b->grad, (size_t)n * sizeof(float),
                         "one tensor: global and per-tensor clipping agree");
        clipped[run] = malloc((size_t)n * sizeof(float));
        cr_assert(clipped[run]);
        memcpy(clipped[run], a->grad, (size_t)n * sizeof(float));
        nb_tensor_free(a);
        nb_tensor_free(b);
    }
    cr_assert_eq(got[0], got[1], "1 thread %.17g, 4 threads %.17g", got[0], got[1]);
    cr_assert_arr_eq(clipped[0], clipped[1], (size_t)n * sizeof(float));
    free(clipped[0]);
    free(clipped[1]);
    free(g);
}
