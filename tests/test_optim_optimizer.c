/* Optimizers: every kind against a double-precision implementation of its
 * formula written here, over several steps with changing gradients; Keras's
 * own golden values; defaults; names; config errors; frozen tensors; reset;
 * lr and momentum setters; clipping through the config; convergence. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph/internal.h"
#include "helpers.h"
#include "nabla/optim.h"
#include "nabla/testing.h"

#define ALL_KINDS 9
static const nb_optimizer_kind kinds[ALL_KINDS] = {NB_SGD,     NB_MOMENTUM, NB_NESTEROV,
                                                   NB_ADAGRAD, NB_RMSPROP,  NB_ADAM,
                                                   NB_ADAMAX,  NB_NADAM,    NB_ADAMW};

/* A trainable tensor of n values with a zeroed gradient buffer. */
static nb_tensor *param(const char *name, int n, const float *w) {
    nb_tensor *t = t_tensor_of(name, 1, (int[]){n}, w);
    cr_assert_eq(nb__tensor_ensure_grad(t), 0);
    memset(t->grad, 0, t->size * sizeof(float));
    return t;
}

static nb_optimizer *make(const nb_optimizer_config *c, int n, nb_tensor *const *p) {
    nb_optimizer *o = nb_optimizer_new(c, n, p);
    cr_assert(o, "nb_optimizer_new(%s): %s", nb_optimizer_name(c->kind), nb_last_error());
    return o;
}

/* ---- the reference: each formula of nabla/optim.h, in double ---- */

typedef struct ref {
    nb_optimizer_config c;
    long t;
    double prod; /* Nadam's product of mu */
    size_t n;
    double *w, *s0, *s1;
} ref;

static void ref_init(ref *r, const nb_optimizer_config *c, size_t n, const float *w0) {
    r->c = *c;
    r->t = 0;
    r->prod = 1.0;
    r->n = n;
    r->w = malloc(n * sizeof(double));
    r->s0 = calloc(n, sizeof(double));
    r->s1 = calloc(n, sizeof(double));
    cr_assert(r->w && r->s0 && r->s1);
    for (size_t i = 0; i < n; i++) {
        r->w[i] = w0[i];
        if (c->kind == NB_ADAGRAD) r->s0[i] = c->initial_accumulator;
    }
}

static void ref_free(ref *r) {
    free(r->w);
    free(r->s0);
    free(r->s1);
}

static void ref_step(ref *r, const double *g) {
    const nb_optimizer_config *c = &r->c;
    const long t = ++r->t;
    const double lr = c->lr, eps = c->epsilon, b1 = c->beta1, b2 = c->beta2, mom = c->momentum,
                 rho = c->rho, wd = c->weight_decay;
    double mu = 0, mu_next = 0;
    if (c->kind == NB_NADAM) {
        mu = b1 * (1.0 - 0.5 * pow(0.96, (double)t));
        mu_next = b1 * (1.0 - 0.5 * pow(0.96, (double)(t + 1)));
        r->prod *= mu;
    }
    for (size_t i = 0; i < r->n; i++) {
        double *w = &r->w[i], *m = &r->s0[i], *v = &r->s1[i];
        const double gi = g[i];
        *w -= lr * wd * *w;
        switch (c->kind) {
        case NB_SGD: *w -= lr * gi; break;
        case NB_MOMENTUM:
            *m = mom * *m - lr * gi;
            *w += *m;
            break;
        case NB_NESTEROV:
            *m = mom * *m - lr * gi;
            *w += mom * *m - lr * gi;
            break;
        case NB_ADAGRAD:
            *m += gi * gi;
            *w -= lr * gi / sqrt(*m + eps);
            break;
        case NB_RMSPROP:
            *m = rho * *m + (1 - rho) * gi * gi;
            *w -= lr * gi / sqrt(*m + eps);
            break;
        case NB_ADAM:
        case NB_ADAMW:
            *m = b1 * *m + (1 - b1) * gi;
            *v = b2 * *v + (1 - b2) * gi * gi;
            *w -= lr * sqrt(1 - pow(b2, t)) / (1 - pow(b1, t)) * *m / (sqrt(*v) + eps);
            break;
        case NB_ADAMAX:
            *m = b1 * *m + (1 - b1) * gi;
            *v = fmax(b2 * *v, fabs(gi));
            *w -= lr / (1 - pow(b1, t)) * *m / (*v + eps);
            break;
        case NB_NADAM: {
            *m = b1 * *m + (1 - b1) * gi;
            *v = b2 * *v + (1 - b2) * gi * gi;
            const double m_hat = mu_next * *m / (1 - r->prod * mu_next) + (1 - mu) * gi / (1 - r->prod);
            const double v_hat = *v / (1 - pow(b2, t));
            *w -= lr * m_hat / (sqrt(v_hat) + eps);
            break;
        }
        }
    }
}

/* Gradients that change sign and size from step to step and element to
 * element, so that every piece of state (and Adamax's max) matters. */
static double grad_at(int step, size_t i) {
    return sin(0.9 * (double)i + 1.7 * step + 0.3) * (1.0 + 0.5 * (double)(i % 3)) + 0.05 * step;
}

static const float W0[7] = {0.5f, -1.25f, 2.0f, 0.0f, -0.3f, 1.1f, 3.0f};

/* Runs the optimizer and the reference side by side for `steps` steps and
 * compares the weights after each. */
static void check_formula(nb_optimizer_config c, int steps, const char *label) {
    const int n = 7;
    nb_tensor *t = param("w", n, W0);
    nb_optimizer *o = make(&c, 1, &t);
    ref r;
    ref_init(&r, &c, (size_t)n, W0);
    for (int s = 0; s < steps; s++) {
        double g[7];
        for (int i = 0; i < n; i++) {
            t->grad[i] = (float)grad_at(s, (size_t)i);
            g[i] = t->grad[i];
        }
        nb_optimizer_step(o);
        ref_step(&r, g);
        float want[7];
        for (int i = 0; i < n; i++) want[i] = (float)r.w[i];
        cr_log_info("%s %s step %d: w[1] %.9g, reference %.9g", nb_optimizer_name(c.kind), label,
                    s + 1, (double)t->data[1], r.w[1]);
        nb_assert_near(t->data, want, (size_t)n, 2e-6, 2e-6);
    }
    cr_assert_eq(nb_optimizer_steps(o), steps);
    ref_free(&r);
    nb_optimizer_free(o);
    nb_tensor_free(t);
}

/* The Keras defaults with a larger lr, so that the updates stand well
 * above float rounding. */
static nb_optimizer_config scaled_defaults(nb_optimizer_kind k) {
    nb_optimizer_config c = nb_optimizer_defaults(k);
    c.lr *= 10.0f;
    return c;
}

static bool uses_momentum_kind(nb_optimizer_kind k) { return k == NB_MOMENTUM || k == NB_NESTEROV; }

/* Coefficients far from the defaults, where misplacing epsilon, swapping
 * the betas or getting Nadam's schedule wrong changes the result visibly. */
static nb_optimizer_config exaggerated(nb_optimizer_kind k) {
    nb_optimizer_config c = nb_optimizer_defaults(k);
    c.lr = 0.2f;
    c.momentum = uses_momentum_kind(k) ? 0.7f : 0.0f;
    if (k == NB_RMSPROP) c.rho = 0.6f;
    if (c.beta1 != 0.0f) c.beta1 = 0.6f, c.beta2 = 0.8f;
    if (c.epsilon != 0.0f) c.epsilon = 0.1f;
    if (k == NB_ADAGRAD) c.initial_accumulator = 0.3f;
    if (k == NB_ADAMW) c.weight_decay = 0.3f;
    return c;
}

#define FORMULA_TEST(NAME, KIND)                                                             \
    Test(optimizer, NAME##_matches_its_formula_over_several_steps) {                        \
        check_formula(scaled_defaults(KIND), 5, "defaults");                                 \
        check_formula(exaggerated(KIND), 5, "exaggerated");                                  \
    }

FORMULA_TEST(sgd, NB_SGD)
FORMULA_TEST(momentum, NB_MOMENTUM)
FORMULA_TEST(nesterov, NB_NESTEROV)
FORMULA_TEST(adagrad, NB_ADAGRAD)
FORMULA_TEST(rmsprop, NB_RMSPROP)
FORMULA_TEST(adam, NB_ADAM)
FORMULA_TEST(adamax, NB_ADAMAX)
FORMULA_TEST(nadam, NB_NADAM)
FORMULA_TEST(adamw, NB_ADAMW)

Test(optimizer, weight_decay_applies_to_any_kind_before_its_update) {
    nb_optimizer_config c = exaggerated(NB_SGD);
    c.weight_decay = 0.25f;
    check_formula(c, 4, "sgd+decay");
    c = exaggerated(NB_ADAM);
    c.weight_decay = 0.1f;
    check_formula(c, 4, "adam+decay");
}

/* ---- Keras's own numbers (the *_test.py files of keras/src/optimizers, Keras 3) ---- */

/* Keras's single step: lr 0.5, w {1,2,3,4}, g {1,6,7,2}. */
static void keras_single_step(nb_optimizer_kind k, const float want[4]) {
    nb_optimizer_config c = nb_optimizer_defaults(k);
    c.lr = 0.5f;
    nb_tensor *t = param("w", 4, (float[]){1, 2, 3, 4});
    memcpy(t->grad, (float[]){1, 6, 7, 2}, 4 * sizeof(float));
    nb_optimizer *o = make(&c, 1, &t);
    nb_optimizer_step(o);
    nb_assert_near(t->data, want, 4, 1e-4, 1e-4);
    nb_optimizer_free(o);
    nb_tensor_free(t);
}

Test(optimizer, single_steps_match_keras_test_values) {
    keras_single_step(NB_SGD, (float[]){0.5f, -1.0f, -0.5f, 3.0f});
    keras_single_step(NB_ADAGRAD, (float[]){0.5233f, 1.5007f, 2.5005f, 3.5061f});
    keras_single_step(NB_RMSPROP, (float[]){-0.5811f, 0.4189f, 1.4189f, 2.4189f});
    keras_single_step(NB_ADAM, (float[]){0.5f, 1.5f, 2.5f, 3.5f});
    keras_single_step(NB_ADAMAX, (float[]){0.5f, 1.5f, 2.5f, 3.5f});
    keras_single_step(NB_NADAM, (float[]){0.4686f, 1.4686f, 2.4686f, 3.4686f});
    keras_single_step(NB_ADAMW, (float[]){0.4980f, 1.4960f, 2.494f, 3.492f});
}

/* Keras's golden test: w = ones(10), one step with g = 0.01, then steps
 * with g = 0.1, 0.2, ..., 1.0, checking w before each of those. */
static void keras_golden(const nb_optimizer_config *c, const float golden[5][10]) {
    float ones[10];
    for (int i = 0; i < 10; i++) ones[i] = 1.0f;
    nb_tensor *t = param("x", 10, ones);
    nb_optimizer *o = make(c, 1, &t);
    for (int i = 0; i < 10; i++) t->grad[i] = 0.01f;
    nb_optimizer_step(o);
    for (int row = 0; row < 5; row++) {
        cr_log_info("%s golden row %d: x[9] %.5f, Keras %.4f", nb_optimizer_name(c->kind), row,
                    (double)t->data[9], (double)golden[row][9]);
        nb_assert_near(t->data, golden[row], 10, 5e-4, 5e-4);
        for (int i = 0; i < 10; i++) t->grad[i] = 0.1f * (float)(i + 1);
        nb_optimizer_step(o);
    }
    nb_optimizer_free(o);
    nb_tensor_free(t);
}

Test(optimizer, sgd_matches_keras_golden_values) {
    static const float golden[5][10] = {
        {0.9999f, 0.9999f, 0.9999f, 0.9999f, 0.9999f, 0.9999f, 0.9999f, 0.9999f, 0.9999f, 0.9999f},
        {0.9989f, 0.9979f, 0.9969f, 0.9959f, 0.9949f, 0.9939f, 0.9929f, 0.9919f, 0.9909f, 0.9899f},
        {0.9979f, 0.9959f, 0.9939f, 0.9919f, 0.9899f, 0.9879f, 0.9859f, 0.9839f, 0.9819f, 0.9799f},
        {0.9969f, 0.9939f, 0.9909f, 0.9879f, 0.9849f, 0.9819f, 0.9789f, 0.9759f, 0.9729f, 0.9699f},
        {0.9959f, 0.9919f, 0.9879f, 0.9839f, 0.9799f, 0.9759f, 0.9719f, 0.9679f, 0.9639f, 0.9599f}};
    /* Keras's SGD(nesterov=True) keeps momentum 0 */
    nb_optimizer_config c = nb_optimizer_defaults(NB_NESTEROV);
    c.momentum = 0.0f;
    keras_golden(&c, golden);
    c = nb_optimizer_defaults(NB_SGD);
    keras_golden(&c, golden);
}

Test(optimizer, adagrad_matches_keras_golden_values) {
    static const float golden[5][10] = {
        {0.9963f, 0.9963f, 0.9963f, 0.9963f, 0.9963f, 0.9963f, 0.9963f, 0.9963f, 0.9963f, 0.9963f},
        {0.9604f, 0.9278f, 0.9003f, 0.8784f, 0.8615f, 0.8487f, 0.8388f, 0.8313f, 0.8255f, 0.8209f},
        {0.9251f, 0.8629f, 0.8137f, 0.7768f, 0.7497f, 0.7298f, 0.7151f, 0.704f, 0.6956f, 0.6891f},
        {0.8903f, 0.8012f, 0.7342f, 0.6862f, 0.6521f, 0.6277f, 0.6099f, 0.5967f, 0.5867f, 0.579f},
        {0.856f, 0.7422f, 0.6604f, 0.6037f, 0.5644f, 0.5367f, 0.5168f, 0.5021f, 0.491f, 0.4825f}};
    nb_optimizer_config c = nb_optimizer_defaults(NB_ADAGRAD);
    c.lr = 0.2f, c.initial_accumulator = 0.3f, c.epsilon = 1e-6f;
    keras_golden(&c, golden);
}

Test(optimizer, adamax_matches_keras_golden_values) {
    static const float golden[5][10] = {
        {0.8f, 0.8f, 0.8f, 0.8f, 0.8f, 0.8f, 0.8f, 0.8f, 0.8f, 0.8f},
        {0.6827f, 0.6873f, 0.6888f, 0.6896f, 0.6901f, 0.6904f, 0.6906f, 0.6908f, 0.6909f, 0.691f},
        {0.5333f, 0.5407f, 0.5431f, 0.5444f, 0.5451f, 0.5456f, 0.546f, 0.5462f, 0.5464f, 0.5466f},
        {0.368f, 0.3773f, 0.3804f, 0.382f, 0.3829f, 0.3835f, 0.384f, 0.3843f, 0.3846f, 0.3848f},
        {0.1933f, 0.204f, 0.2076f, 0.2094f, 0.2105f, 0.2112f, 0.2117f, 0.2121f, 0.2124f, 0.2126f}};
    nb_optimizer_config c = nb_optimizer_defaults(NB_ADAMAX);
    c.lr = 0.2f, c.beta1 = 0.85f, c.beta2 = 0.95f, c.epsilon = 1e-6f;
    keras_golden(&c, golden);
}

Test(optimizer, nadam_matches_keras_golden_values) {
    static const float golden[5][10] = {
        {0.4281f, 0.4281f, 0.4281f, 0.4281f, 0.4281f, 0.4281f, 0.4281f, 0.4281f, 0.4281f, 0.4281f},
        {-0.1738f, -0.1731f, -0.1726f, -0.1723f, -0.1721f, -0.172f, -0.1719f, -0.1718f, -0.1718f,
         -0.1717f},
        {-0.7115f, -0.7103f, -0.7096f, -0.7092f, -0.709f, -0.7088f, -0.7086f, -0.7085f, -0.7085f,
         -0.7084f},
        {-1.2335f, -1.2322f, -1.2313f, -1.2309f, -1.2306f, -1.2304f, -1.2302f, -1.2301f, -1.23f,
         -1.2299f},
        {-1.7492f, -1.7478f, -1.7469f, -1.7464f, -1.7461f, -1.7459f, -1.7457f, -1.7456f, -1.7455f,
         -1.7454f}};
    nb_optimizer_config c = nb_optimizer_defaults(NB_NADAM);
    c.lr = 0.5f, c.beta1 = 0.5f, c.beta2 = 0.67f, c.epsilon = 1e-5f;
    keras_golden(&c, golden);
}

Test(optimizer, adamw_matches_keras_golden_values) {
    static const float golden[5][10] = {
        {0.4998f, 0.4998f, 0.4998f, 0.4998f, 0.4998f, 0.4998f, 0.4998f, 0.4998f, 0.4998f, 0.4998f},
        {0.2486f, 0.2475f, 0.2463f, 0.2451f, 0.244f, 0.2428f, 0.2417f, 0.2405f, 0.2394f, 0.2382f},
        {0.1223f, 0.1198f, 0.1174f, 0.1149f, 0.1124f, 0.11f, 0.1075f, 0.1051f, 0.1027f, 0.1003f},
        {0.0586f, 0.0549f, 0.0512f, 0.0475f, 0.0439f, 0.0402f, 0.0366f, 0.033f, 0.0294f, 0.0258f},
        {0.0263f, 0.0215f, 0.0167f, 0.012f, 0.0073f, 0.0026f, -0.0021f, -0.0067f, -0.0113f,
         -0.0159f}};
    nb_optimizer_config c = nb_optimizer_defaults(NB_ADAMW);
    c.lr = 1.0f, c.weight_decay = 0.5f, c.epsilon = 2.0f;
    keras_golden(&c, golden);
}

Test(optimizer, rmsprop_matches_the_keras_docstring_example) {
    /* RMSprop(learning_rate=0.1) on loss w²/2 from w = 10 gives 9.683772 */
    nb_optimizer_config c = nb_optimizer_defaults(NB_RMSPROP);
    c.lr = 0.1f;
    nb_tensor *t = param("w", 1, (float[]){10.0f});
    nb_optimizer *o = make(&c, 1, &t);
    t->grad[0] = t->data[0];
    nb_optimizer_step(o);
    cr_assert_float_eq(t->data[0], 9.683772f, 2e-6f, "w = %.7f", (double)t->data[0]);
    nb_optimizer_free(o);
    nb_tensor_free(t);
}

/* ---- defaults and names ---- */

Test(optimizer, defaults_are_keras_defaults) {
    for (int i = 0; i < ALL_KINDS; i++) {
        const nb_optimizer_kind k = kinds[i];
        const nb_optimizer_config c = nb_optimizer_defaults(k);
        const bool sgd_family = k == NB_SGD || k == NB_MOMENTUM || k == NB_NESTEROV;
        const bool adam_family = k == NB_ADAM || k == NB_ADAMAX || k == NB_NADAM || k == NB_ADAMW;
        cr_assert_eq(c.kind, k);
        cr_assert_eq(c.lr, sgd_family ? 0.01f : 0.001f, "%s lr %g", nb_optimizer_name(k), (double)c.lr);
        cr_assert_eq(c.momentum, k == NB_MOMENTUM || k == NB_NESTEROV ? 0.9f : 0.0f);
        cr_assert_eq(c.rho, k == NB_RMSPROP ? 0.9f : 0.0f);
        cr_assert_eq(c.beta1, adam_family ? 0.9f : 0.0f);
        cr_assert_eq(c.beta2, adam_family ? 0.999f : 0.0f);
        cr_assert_eq(c.epsilon, sgd_family ? 0.0f : 1e-7f, "%s eps", nb_optimizer_name(k));
        cr_assert_eq(c.initial_accumulator, k == NB_ADAGRAD ? 0.1f : 0.0f);
        cr_assert_eq(c.weight_decay, k == NB_ADAMW ? 0.004f : 0.0f);
        cr_assert(c.clip_value == 0.0f && c.clip_norm == 0.0f && c.clip_global_norm == 0.0f);
        /* and the defaults make a valid optimizer */
        nb_optimizer *o = make(&c, 0, NULL);
        nb_optimizer_free(o);
    }
    const nb_optimizer_config bad = nb_optimizer_defaults((nb_optimizer_kind)77);
    cr_assert_eq(bad.kind, NB_SGD);
    cr_assert_eq(bad.lr, 0.01f);
}

Test(optimizer, names_round_trip_and_unknown_names_are_refused) {
    static const char *expected[ALL_KINDS] = {"sgd",  "momentum", "nesterov", "adagrad", "rmsprop",
                                              "adam", "adamax",   "nadam",    "adamw"};
    for (int i = 0; i < ALL_KINDS; i++) {
        cr_assert_str_eq(nb_optimizer_name(kinds[i]), expected[i]);
        nb_optimizer_kind k = (nb_optimizer_kind)-1;
        cr_assert(nb_optimizer_parse(expected[i], &k));
        cr_assert_eq(k, kinds[i]);
    }
    nb_optimizer_kind k = NB_SGD;
    cr_assert(nb_optimizer_parse("AdamW", &k) && k == NB_ADAMW, "case is ignored");
    cr_assert(nb_optimizer_parse("RMSProp", NULL), "kind may be NULL");
    k = NB_NADAM;
    cr_assert_not(nb_optimizer_parse("adamww", &k));
    cr_assert_not(nb_optimizer_parse("ada", &k));
    cr_assert_not(nb_optimizer_parse("", &k));
    cr_assert_not(nb_optimizer_parse("lbfgs", &k));
    cr_assert_not(nb_optimizer_parse(NULL, &k));
    cr_assert_eq(k, NB_NADAM, "a refused name leaves kind alone");
    cr_assert_str_eq(nb_optimizer_name((nb_optimizer_kind)42), "unknown");
    cr_assert_str_eq(nb_optimizer_name((nb_optimizer_kind)-3), "unknown");
}

/* ---- errors ---- */

static void refused(const nb_optimizer_config *c, int n, nb_tensor *const *p, const char *msg) {
    nb_optimizer *o = nb_optimizer_new(c, n, p);
    cr_assert_null(o, "expected a refusal with '%s'", msg);
    cr_assert(strstr(nb_last_error(), msg), "message '%s' lacks '%s'", nb_last_error(), msg);
    cr_assert(strstr(nb_last_error(), "optimizer:"), "message '%s' names no module", nb_last_error());
}

#define BAD(KIND, FIELD, VALUE, MSG)                                                         \
    do {                                                                                     \
        nb_optimizer_config c_ = nb_optimizer_defaults(KIND);                                \
        c_.FIELD = (VALUE);                                                                  \
        refused(&c_, 1, &t, MSG);                                                            \
    } while (0)

Test(optimizer, bad_configs_are_refused_with_a_message) {
    nb_tensor *t = param("w", 3, W0), *u = param("u", 2, W0);
    refused(NULL, 1, &t, "config is NULL");
    BAD(NB_SGD, kind, (nb_optimizer_kind)99, "unknown kind 99");
    BAD(NB_SGD, lr, 0.0f, "lr 0");
    BAD(NB_ADAM, lr, -0.1f, "lr -0.1");
    BAD(NB_ADAM, lr, NAN, "lr nan");
    BAD(NB_ADAM, lr, INFINITY, "lr inf");
    BAD(NB_MOMENTUM, momentum, 1.0f, "momentum 1 outside [0,1)");
    BAD(NB_NESTEROV, momentum, -0.5f, "momentum -0.5 outside");
    BAD(NB_NESTEROV, momentum, NAN, "momentum nan outside");
    BAD(NB_RMSPROP, rho, 1.0f, "rho 1 outside");
    BAD(NB_RMSPROP, rho, -0.1f, "rho -0.1 outside");
    BAD(NB_ADAM, beta1, 1.0f, "beta1 1 outside");
    BAD(NB_NADAM, beta1, -0.1f, "beta1 -0.1 outside");
    BAD(NB_ADAMAX, beta2, 1.5f, "beta2 1.5 outside");
    BAD(NB_ADAMW, beta2, NAN, "beta2 nan outside");
    BAD(NB_ADAGRAD, epsilon, 0.0f, "epsilon 0 must be positive");
    BAD(NB_RMSPROP, epsilon, -1e-7f, "epsilon -1e-07");
    BAD(NB_ADAM, epsilon, INFINITY, "epsilon inf");
    BAD(NB_ADAGRAD, initial_accumulator, -0.1f, "initial_accumulator -0.1");
    BAD(NB_ADAMW, weight_decay, -0.01f, "weight_decay -0.01");
    BAD(NB_SGD, weight_decay, NAN, "weight_decay nan");
    BAD(NB_SGD, clip_value, -1.0f, "clip_value -1");
    BAD(NB_SGD, clip_norm, -2.0f, "clip_norm -2");
    BAD(NB_SGD, clip_global_norm, NAN, "clip_global_norm nan");
    BAD(NB_SGD, clip_norm, INFINITY, "clip_norm inf");
    nb_optimizer_config c = nb_optimizer_defaults(NB_ADAM);
    c.clip_value = 1.0f, c.clip_global_norm = 5.0f;
    refused(&c, 1, &t, "at most one of clip_value (1), clip_norm (0) and clip_global_norm (5)");
    c = nb_optimizer_defaults(NB_ADAM);
    c.clip_norm = 1.0f, c.clip_value = 1.0f;
    refused(&c, 1, &t, "at most one");
    c = nb_optimizer_defaults(NB_ADAM);
    refused(&c, -1, &t, "-1 tensors");
    refused(&c, 2, NULL, "params is NULL for 2 tensors");
    refused(&c, 2, (nb_tensor *[]){t, NULL}, "tensor 1 is NULL");
    refused(&c, 3, (nb_tensor *[]){t, u, t}, "tensor 2 ('w') is tensor 0 again");
    /* fields the kind does not use are not checked */
    c = nb_optimizer_defaults(NB_SGD);
    c.rho = 7.0f, c.beta1 = -1.0f, c.momentum = 2.0f, c.epsilon = -1.0f, c.initial_accumulator = -1.0f;
    nb_optimizer *o = make(&c, 1, &t);
    nb_optimizer_free(o);
    /* 0 tensors is a valid (idle) optimizer */
    o = make(&c, 0, NULL);
    nb_optimizer_step(o);
    cr_assert_eq(nb_optimizer_steps(o), 1);
    nb_optimizer_free(o);
    nb_tensor_free(t);
    nb_tensor_free(u);
}

Test(optimizer, null_optimizer_is_harmless) {
    nb_optimizer_free(NULL);
    nb_optimizer_step(NULL);
    nb_optimizer_reset(NULL);
    nb_optimizer_set_lr(NULL, 0.1f);
    nb_optimizer_set_momentum(NULL, 0.5f);
    cr_assert_eq(nb_optimizer_lr(NULL), 0.0f);
    cr_assert_not(nb_optimizer_has_momentum(NULL));
    cr_assert_eq(nb_optimizer_momentum(NULL), 0.0f);
    cr_assert_eq(nb_optimizer_steps(NULL), 0);
    cr_assert_null(nb_optimizer_config_of(NULL));
}

/* ---- frozen tensors and tensors without gradients ---- */

Test(optimizer, frozen_tensors_and_tensors_without_gradients_are_unchanged) {
    for (int i = 0; i < ALL_KINDS; i++) {
        nb_optimizer_config c = nb_optimizer_defaults(kinds[i]);
        c.clip_global_norm = 0.5f;
        c.weight_decay = 0.1f;
        nb_tensor *live = param("live", 3, W0), *frozen = param("frozen", 3, W0);
        nb_tensor *nograd = t_tensor_of("nograd", 1, (int[]){3}, W0);
        frozen->trainable = false;
        for (int j = 0; j < 3; j++) live->grad[j] = 1.0f, frozen->grad[j] = 100.0f;
        nb_optimizer *o = make(&c, 3, (nb_tensor *[]){frozen, live, nograd});
        for (int s = 0; s < 3; s++) nb_optimizer_step(o);
        for (int j = 0; j < 3; j++) {
            cr_assert_eq(frozen->data[j], W0[j], "%s changed a frozen tensor", nb_optimizer_name(kinds[i]));
            cr_assert_eq(frozen->grad[j], 100.0f, "%s clipped a frozen tensor's gradient",
                         nb_optimizer_name(kinds[i]));
            cr_assert_eq(nograd->data[j], W0[j]);
            cr_assert_neq(live->data[j], W0[j], "%s did not train", nb_optimizer_name(kinds[i]));
        }
        cr_assert_null(nograd->grad);
        /* the frozen tensor's 100s took no part in the global norm:
         * live's gradient (norm sqrt 3) alone was scaled to norm 0.5 */
        cr_assert_float_eq(live->grad[0], (float)(0.5 / sqrt(3.0)), 1e-6f);
        nb_optimizer_free(o);
        nb_tensor_free(live);
        nb_tensor_free(frozen);
        nb_tensor_free(nograd);
    }
}

Test(optimizer, a_tensor_frozen_for_a_while_keeps_its_state) {
    /* momentum: frozen during step 1, so its velocity is still 0 at step 2 */
    nb_optimizer_config c = nb_optimizer_defaults(NB_MOMENTUM);
    nb_tensor *a = param("a", 1, (float[]){1.0f}), *b = param("b", 1, (float[]){1.0f});
    nb_optimizer *o = make(&c, 2, (nb_tensor *[]){a, b});
    a->grad[0] = b->grad[0] = 2.0f;
    b->trainable = false;
    nb_optimizer_step(o); /* a: v = -0.02 */
    b->trainable = true;
    a->grad[0] = b->grad[0] = 3.0f;
    nb_optimizer_step(o); /* a: v = 0.9·-0.02 - 0.03; b: v = -0.03 */
    cr_assert_float_eq(a->data[0], (float)(1.0 - 0.02 + (0.9 * -0.02 - 0.03)), 1e-7f);
    cr_assert_float_eq(b->data[0], (float)(1.0 - 0.03), 1e-7f);
    nb_optimizer_free(o);
    nb_tensor_free(a);
    nb_tensor_free(b);
}

/* ---- reset, lr and momentum ---- */

Test(optimizer, reset_gives_the_same_steps_as_a_new_optimizer) {
    for (int i = 0; i < ALL_KINDS; i++) {
        nb_optimizer_config c = exaggerated(kinds[i]);
        nb_tensor *t = param("w", 7, W0);
        nb_optimizer *o = make(&c, 1, &t);
        float first[3][7];
        for (int pass = 0; pass < 2; pass++) {
            memcpy(t->data, W0, sizeof W0);
            for (int s = 0; s < 3; s++) {
                for (int j = 0; j < 7; j++) t->grad[j] = (float)grad_at(s, (size_t)j);
                nb_optimizer_step(o);
                if (pass == 0)
                    memcpy(first[s], t->data, sizeof first[s]);
                else
                    cr_assert_arr_eq(t->data, first[s], sizeof first[s], "%s step %d after reset",
                                     nb_optimizer_name(kinds[i]), s + 1);
            }
            cr_assert_eq(nb_optimizer_steps(o), 3);
            nb_optimizer_reset(o);
            cr_assert_eq(nb_optimizer_steps(o), 0);
        }
        nb_optimizer_free(o);
        nb_tensor_free(t);
    }
}

Test(optimizer, set_lr_changes_the_next_steps) {
    nb_optimizer_config c = nb_optimizer_defaults(NB_SGD);
    nb_tensor *t = param("w", 1, (float[]){1.0f});
    nb_optimizer *o = make(&c, 1, &t);
    cr_assert_eq(nb_optimizer_lr(o), 0.01f);
    nb_optimizer_set_lr(o, 0.5f);
    cr_assert_eq(nb_optimizer_lr(o), 0.5f);
    cr_assert_eq(nb_optimizer_config_of(o)->lr, 0.5f);
    t->grad[0] = 1.0f;
    nb_optimizer_step(o);
    cr_assert_float_eq(t->data[0], 0.5f, 1e-7f);
    nb_optimizer_set_lr(o, -1.0f);
    cr_assert(strstr(nb_last_error(), "learning rate -1 ignored"), "%s", nb_last_error());
    nb_optimizer_set_lr(o, NAN);
    cr_assert(strstr(nb_last_error(), "learning rate nan ignored"), "%s", nb_last_error());
    nb_optimizer_set_lr(o, INFINITY);
    cr_assert_eq(nb_optimizer_lr(o), 0.5f, "bad rates are ignored");
    nb_optimizer_set_lr(o, 0.0f);
    nb_optimizer_step(o);
    cr_assert_float_eq(t->data[0], 0.5f, 1e-7f, "lr 0 keeps the weights");
    nb_optimizer_free(o);
    nb_tensor_free(t);
}

Test(optimizer, momentum_is_momentum_or_beta1) {
    for (int i = 0; i < ALL_KINDS; i++) {
        const nb_optimizer_kind k = kinds[i];
        nb_optimizer_config c = nb_optimizer_defaults(k);
        nb_optimizer *o = make(&c, 0, NULL);
        const bool sgd_m = k == NB_MOMENTUM || k == NB_NESTEROV;
        const bool adam = k == NB_ADAM || k == NB_ADAMAX || k == NB_NADAM || k == NB_ADAMW;
        cr_assert_eq(nb_optimizer_has_momentum(o), sgd_m || adam, "%s", nb_optimizer_name(k));
        cr_assert_eq(nb_optimizer_momentum(o), sgd_m || adam ? 0.9f : 0.0f);
        nb_optimizer_set_momentum(o, 0.85f);
        const nb_optimizer_config *now = nb_optimizer_config_of(o);
        if (sgd_m) cr_assert(now->momentum == 0.85f && now->beta1 == 0.0f);
        if (adam) cr_assert(now->beta1 == 0.85f && now->momentum == 0.0f);
        if (!sgd_m && !adam) cr_assert(now->momentum == 0.0f && now->beta1 == 0.0f);
        cr_assert_eq(nb_optimizer_momentum(o), sgd_m || adam ? 0.85f : 0.0f);
        if (sgd_m || adam) {
            nb_optimizer_set_momentum(o, 1.0f);
            cr_assert(strstr(nb_last_error(), "momentum 1 ignored"), "%s", nb_last_error());
            nb_optimizer_set_momentum(o, NAN);
            cr_assert_eq(nb_optimizer_momentum(o), 0.85f);
        }
        nb_optimizer_free(o);
    }
}

/* The reference changes its coefficient at the same step as the optimizer. */
static void check_momentum_change(nb_optimizer_kind k) {
    nb_optimizer_config c = exaggerated(k);
    nb_tensor *t = param("w", 7, W0);
    nb_optimizer *o = make(&c, 1, &t);
    ref r;
    ref_init(&r, &c, 7, W0);
    for (int s = 0; s < 5; s++) {
        if (s == 2) {
            nb_optimizer_set_momentum(o, 0.3f);
            if (k == NB_MOMENTUM || k == NB_NESTEROV)
                r.c.momentum = 0.3f;
            else
                r.c.beta1 = 0.3f;
        }
        double g[7];
        for (int j = 0; j < 7; j++) g[j] = t->grad[j] = (float)grad_at(s, (size_t)j);
        nb_optimizer_step(o);
        ref_step(&r, g);
        float want[7];
        for (int j = 0; j < 7; j++) want[j] = (float)r.w[j];
        nb_assert_near(t->data, want, 7, 2e-6, 2e-6);
    }
    ref_free(&r);
    nb_optimizer_free(o);
    nb_tensor_free(t);
}

Test(optimizer, a_momentum_changed_between_steps_applies_from_the_next_step) {
    check_momentum_change(NB_MOMENTUM);
    check_momentum_change(NB_NESTEROV);
    check_momentum_change(NB_ADAM);
    check_momentum_change(NB_NADAM);
}

/* ---- clipping through the config ---- */

Test(optimizer, clipping_modes_in_the_config_clip_before_the_update) {
    /* SGD with lr 1 moves each weight by minus its clipped gradient */
    nb_optimizer_config c = nb_optimizer_defaults(NB_SGD);
    c.lr = 1.0f;
    const float zeros[3] = {0};
    nb_tensor *a = param("a", 3, zeros), *b = param("b", 2, zeros);
    nb_tensor *p[2] = {a, b};

    c.clip_value = 0.5f;
    nb_optimizer *o = make(&c, 2, p);
    memcpy(a->grad, (float[]){2.0f, -3.0f, 0.1f}, 3 * sizeof(float));
    memcpy(b->grad, (float[]){-0.5f, 0.7f}, 2 * sizeof(float));
    nb_optimizer_step(o);
    nb_assert_near(a->data, ((float[]){-0.5f, 0.5f, -0.1f}), 3, 1e-7, 0);
    nb_assert_near(b->data, ((float[]){0.5f, -0.5f}), 2, 1e-7, 0);
    nb_assert_near(a->grad, ((float[]){0.5f, -0.5f, 0.1f}), 3, 1e-7, 0); /* clipped in place */
    nb_optimizer_free(o);

    /* per tensor: a = (3,4,0) has norm 5 -> (0.6,0.8,0); b = (0.3,0.4) stays */
    memset(a->data, 0, 3 * sizeof(float)), memset(b->data, 0, 2 * sizeof(float));
    c.clip_value = 0.0f, c.clip_norm = 1.0f;
    o = make(&c, 2, p);
    memcpy(a->grad, (float[]){3.0f, 4.0f, 0.0f}, 3 * sizeof(float));
    memcpy(b->grad, (float[]){0.3f, 0.4f}, 2 * sizeof(float));
    nb_optimizer_step(o);
    nb_assert_near(a->data, ((float[]){-0.6f, -0.8f, 0.0f}), 3, 1e-7, 0);
    nb_assert_near(b->data, ((float[]){-0.3f, -0.4f}), 2, 1e-7, 0);
    nb_optimizer_free(o);

    /* global: (3,4,0,12,0) has norm 13 -> everything times 2/13 */
    memset(a->data, 0, 3 * sizeof(float)), memset(b->data, 0, 2 * sizeof(float));
    c.clip_norm = 0.0f, c.clip_global_norm = 2.0f;
    o = make(&c, 2, p);
    memcpy(a->grad, (float[]){3.0f, 4.0f, 0.0f}, 3 * sizeof(float));
    memcpy(b->grad, (float[]){12.0f, 0.0f}, 2 * sizeof(float));
    nb_optimizer_step(o);
    const float k = 2.0f / 13.0f;
    nb_assert_near(a->data, ((float[]){-3 * k, -4 * k, 0.0f}), 3, 1e-7, 1e-6);
    nb_assert_near(b->data, ((float[]){-12 * k, 0.0f}), 2, 1e-7, 1e-6);
    nb_optimizer_free(o);

    /* Keras's own check: clipnorm 1 takes (100, 100) to (sqrt2/2, sqrt2/2) */
    memset(b->data, 0, 2 * sizeof(float));
    c.clip_global_norm = 0.0f, c.clip_norm = 1.0f;
    o = make(&c, 1, &b);
    b->grad[0] = b->grad[1] = 100.0f;
    nb_optimizer_step(o);
    nb_assert_near(b->grad, ((float[]){0.70710678f, 0.70710678f}), 2, 1e-7, 1e-6);
    nb_optimizer_free(o);
    nb_tensor_free(a);
    nb_tensor_free(b);
}

/* ---- large tensors: parallel, and the same on any number of threads ---- */

Test(optimizer, large_tensors_match_the_formula_on_any_thread_count) {
    const size_t n = 100003; /* above NB_PAR_MIN, not a whole number of blocks */
    const nb_optimizer_kind ks[3] = {NB_NADAM, NB_RMSPROP, NB_ADAMW};
    for (int kk = 0; kk < 3; kk++) {
        float *w0 = malloc(n * sizeof(float)), *out1 = malloc(n * sizeof(float));
        float *want = malloc(n * sizeof(float));
        double *g = malloc(n * sizeof(double));
        cr_assert(w0 && out1 && want && g);
        for (size_t i = 0; i < n; i++) w0[i] = (float)sin(0.37 * (double)i);
        nb_optimizer_config c = exaggerated(ks[kk]);
        for (int threads = 1; threads <= 4; threads += 3) {
            nb_set_num_threads(threads);
            nb_tensor *t = t_tensor_of("big", 1, (int[]){(int)n}, w0);
            cr_assert_eq(nb__tensor_ensure_grad(t), 0);
            nb_optimizer *o = make(&c, 1, &t);
            ref r;
            ref_init(&r, &c, n, w0);
            for (int s = 0; s < 3; s++) {
                for (size_t i = 0; i < n; i++) g[i] = t->grad[i] = (float)grad_at(s, i);
                nb_optimizer_step(o);
                ref_step(&r, g);
            }
            for (size_t i = 0; i < n; i++) want[i] = (float)r.w[i];
            nb_assert_near(t->data, want, n, 2e-6, 2e-6);
            if (threads == 1)
                memcpy(out1, t->data, n * sizeof(float));
            else
                cr_assert_arr_eq(t->data, out1, n * sizeof(float), "%s: 4 threads differ from 1",
                                 nb_optimizer_name(ks[kk]));
            ref_free(&r);
            nb_optimizer_free(o);
            nb_tensor_free(t);
        }
        free(w0), free(out1), free(want), free(g);
    }
}

/* ---- sanity: momentum descends a quadratic ---- */

static void descend_quadratic(nb_optimizer_kind k, int steps) {
    /* f(w) = 1/2 sum a_i (w_i - c_i)^2, badly conditioned (a from 0.1 to 10) */
    const double a[4] = {0.1, 1.0, 3.0, 10.0}, target[4] = {1.0, -2.0, 0.5, 3.0};
    nb_optimizer_config c = nb_optimizer_defaults(k);
    c.lr = 0.05f;
    nb_tensor *t = param("w", 4, (float[]){0, 0, 0, 0});
    nb_optimizer *o = make(&c, 1, &t);
    double f0 = 0, f = 0;
    for (int s = 0; s <= steps; s++) {
        f = 0;
        for (int i = 0; i < 4; i++) {
            const double d = t->data[i] - target[i];
            f += 0.5 * a[i] * d * d;
            t->grad[i] = (float)(a[i] * d);
        }
        if (s == 0) f0 = f;
        if (s < steps) nb_optimizer_step(o);
    }
    cr_log_info("%s: f %.3g -> %.3g in %d steps", nb_optimizer_name(k), f0, f, steps);
    for (int i = 0; i < 4; i++)
        cr_assert_float_eq(t->data[i], (float)target[i], 1e-3f, "%s: w[%d] = %g, minimum at %g",
                           nb_optimizer_name(k), i, (double)t->data[i], target[i]);
    nb_optimizer_free(o);
    nb_tensor_free(t);
}

Test(optimizer, momentum_and_nesterov_converge_on_a_quadratic) {
    descend_quadratic(NB_MOMENTUM, 600);
    descend_quadratic(NB_NESTEROV, 600);
}

/* ---- state: read, set, copy ---- */

enum { ST_N0 = 37, ST_N1 = 5 }; /* two tensors, one not a multiple of 16 */

/* A gradient that depends on the weights and the step, as training's does:
 * the same bits in, the same bits out. */
static void st_grads(nb_tensor *const *p, int step) {
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < p[k]->size; i++)
            p[k]->grad[i] = 0.3f * p[k]->data[i] + 0.05f * sinf(0.7f * (float)step + (float)(i + 40 * k));
}

static void st_params(nb_tensor **p, const float *w0, const float *w1) {
    p[0] = param("a", ST_N0, w0);
    p[1] = param("b", ST_N1, w1);
}

static bool st_same(nb_tensor *const *a, nb_tensor *const *b) {
    for (int k = 0; k < 2; k++)
        if (memcmp(a[k]->data, b[k]->data, a[k]->size * sizeof(float))) return false;
    return true;
}

/* Optimizer A takes k steps; B, fresh on other tensors holding A's weights,
 * gets A's state through the entry API (or copy_state); then both take n
 * more steps: the weights and every state array end bit-identical. Without
 * the state copy they differ (checked), so the test can fail. */
static void resume_is_bit_identical(nb_optimizer_kind kind, bool use_copy) {
    float w0[ST_N0], w1[ST_N1];
    for (int i = 0; i < ST_N0; i++) w0[i] = 0.1f * (float)(i % 11) - 0.5f;
    for (int i = 0; i < ST_N1; i++) w1[i] = 1.0f - 0.3f * (float)i;
    nb_optimizer_config c = nb_optimizer_defaults(kind);
    nb_tensor *pa[2], *pb[2], *pc[2];
    st_params(pa, w0, w1);
    nb_optimizer *a = make(&c, 2, pa);
    const int k = 7, n = 9;
    for (int s = 0; s < k; s++) {
        st_grads(pa, s);
        nb_optimizer_step(a);
    }
    st_params(pb, pa[0]->data, pa[1]->data);
    st_params(pc, pa[0]->data, pa[1]->data); /* the control: no state copied */
    nb_optimizer *b = make(&c, 2, pb), *ctl = make(&c, 2, pc);
    const int per = kind == NB_SGD ? 0 : (kind <= NB_RMSPROP ? 1 : 2);
    cr_assert_eq(nb_optimizer_state_count(a), 2 * per);
    if (use_copy) {
        cr_assert(nb_optimizer_copy_state(b, a), "%s", nb_last_error());
    } else {
        for (int i = 0; i < nb_optimizer_state_count(a); i++) {
            nb_optimizer_state_entry ea, eb;
            cr_assert(nb_optimizer_state(a, i, &ea) && nb_optimizer_state(b, i, &eb), "%s", nb_last_error());
            cr_assert_eq(ea.param, pa[i / per]);
            cr_assert_eq(eb.param, pb[i / per]);
            cr_assert_eq(ea.param_index, i / per);
            cr_assert_eq(ea.size, pa[i / per]->size);
            cr_assert_str_eq(ea.name, eb.name);
            memcpy(eb.data, ea.data, ea.size * sizeof(float));
        }
        cr_assert(nb_optimizer_set_steps(b, nb_optimizer_steps(a), nb_optimizer_nadam_product(a)), "%s",
                  nb_last_error());
    }
    cr_assert_eq(nb_optimizer_steps(b), k);
    for (int s = k; s < k + n; s++) {
        st_grads(pa, s);
        st_grads(pb, s);
        st_grads(pc, s);
        nb_optimizer_step(a);
        nb_optimizer_step(b);
        nb_optimizer_step(ctl);
    }
    cr_assert(st_same(pa, pb), "%s: weights differ after resuming", nb_optimizer_name(kind));
    for (int i = 0; i < nb_optimizer_state_count(a); i++) {
        nb_optimizer_state_entry ea, eb;
        cr_assert(nb_optimizer_state(a, i, &ea) && nb_optimizer_state(b, i, &eb));
        cr_assert(memcmp(ea.data, eb.data, ea.size * sizeof(float)) == 0, "%s: state %s of tensor %d differs",
                  nb_optimizer_name(kind), ea.name, ea.param_index);
    }
    cr_assert_eq(nb_optimizer_nadam_product(a), nb_optimizer_nadam_product(b));
    if (kind != NB_SGD) cr_assert(!st_same(pa, pc), "%s: the state made no difference", nb_optimizer_name(kind));
    nb_optimizer_free(a);
    nb_optimizer_free(b);
    nb_optimizer_free(ctl);
    for (int i = 0; i < 2; i++) nb_tensor_free(pa[i]), nb_tensor_free(pb[i]), nb_tensor_free(pc[i]);
}

Test(optimizer, state_copied_through_the_entries_resumes_bit_identically) {
    for (int k = 0; k < ALL_KINDS; k++) resume_is_bit_identical(kinds[k], false);
}

Test(optimizer, state_copied_with_copy_state_resumes_bit_identically) {
    for (int k = 0; k < ALL_KINDS; k++) resume_is_bit_identical(kinds[k], true);
}

Test(optimizer, state_entries_are_named_as_in_the_formulas) {
    static const char *const want[ALL_KINDS][2] = {{NULL, NULL}, {"v", NULL}, {"v", NULL}, {"a", NULL}, {"s", NULL},
                                                   {"m", "v"},   {"m", "u"},  {"m", "v"},  {"m", "v"}};
    float w[ST_N0] = {0};
    for (int k = 0; k < ALL_KINDS; k++) {
        nb_optimizer_config c = nb_optimizer_defaults(kinds[k]);
        nb_tensor *p[2] = {param("a", 3, w), param("b", 4, w)};
        nb_optimizer *o = make(&c, 2, p);
        const int count = nb_optimizer_state_count(o);
        for (int i = 0; i < count; i++) {
            nb_optimizer_state_entry e;
            cr_assert(nb_optimizer_state(o, i, &e));
            cr_assert_str_eq(e.name, want[k][i % (count / 2)], "%s entry %d", nb_optimizer_name(kinds[k]), i);
            cr_assert_eq(e.param, p[i / (count / 2)]);
            /* AdaGrad starts at initial_accumulator, the others at 0 */
            for (size_t j = 0; j < e.size; j++)
                cr_assert_eq(e.data[j], kinds[k] == NB_ADAGRAD ? 0.1f : 0.0f);
        }
        cr_assert_eq(nb_optimizer_nadam_product(o), 1.0);
        nb_optimizer_state_entry e;
        cr_assert_not(nb_optimizer_state(o, count, &e));
        cr_assert(strstr(nb_last_error(), "outside"), "%s", nb_last_error());
        cr_assert_not(nb_optimizer_state(o, -1, &e));
        cr_assert_not(nb_optimizer_state(o, 0, NULL));
        nb_optimizer_free(o);
        nb_tensor_free(p[0]);
        nb_tensor_free(p[1]);
    }
    cr_assert_eq(nb_optimizer_state_count(NULL), 0);
}

/* Writing an entry sets the state the next step uses: momentum with v set
 * by hand and a zero gradient moves w by momentum·v exactly as the formula
 * (v = 0.9·v - lr·0; w += v). */
Test(optimizer, writing_an_entry_sets_the_state) {
    nb_optimizer_config c = nb_optimizer_defaults(NB_MOMENTUM);
    nb_tensor *p = param("w", 3, (float[]){1.0f, 2.0f, 3.0f});
    nb_optimizer *o = make(&c, 1, &p);
    nb_optimizer_state_entry e;
    cr_assert(nb_optimizer_state(o, 0, &e));
    e.data[0] = 0.5f, e.data[1] = -1.0f, e.data[2] = 0.0f;
    nb_optimizer_step(o);
    const float want[3] = {1.0f + 0.9f * 0.5f, 2.0f + 0.9f * -1.0f, 3.0f};
    nb_assert_near(p->data, want, 3, 0, 1e-7);
    nb_optimizer_free(o);
    nb_tensor_free(p);
}

/* Adam's bias correction follows the restored t: one step at t = 1000 on a
 * zero state moves w by lr·sqrt(1-b2^1000)/(1-b1^1000)·m/(sqrt(v)+eps). */
Test(optimizer, set_steps_restores_t_and_refuses_bad_values) {
    nb_optimizer_config c = nb_optimizer_defaults(NB_ADAM);
    nb_tensor *p = param("w", 1, (float[]){1.0f});
    nb_optimizer *o = make(&c, 1, &p);
    cr_assert(nb_optimizer_set_steps(o, 999, 0.5)); /* the product is ignored for Adam */
    cr_assert_eq(nb_optimizer_nadam_product(o), 1.0);
    p->grad[0] = 0.2f;
    nb_optimizer_step(o);
    cr_assert_eq(nb_optimizer_steps(o), 1000);
    const double m = 0.1 * 0.2, v = 0.001 * 0.04, alpha = 0.001 * sqrt(1 - pow(0.999, 1000)) / (1 - pow(0.9, 1000));
    const float want = (float)(1.0 - alpha * m / (sqrt(v) + 1e-7));
    nb_assert_near(p->data, &want, 1, 0, 1e-6);
    cr_assert_not(nb_optimizer_set_steps(o, -1, 1.0));
    cr_assert(strstr(nb_last_error(), "steps -1"), "%s", nb_last_error());
    cr_assert_eq(nb_optimizer_steps(o), 1000);
    cr_assert_not(nb_optimizer_set_steps(NULL, 1, 1.0));
    nb_optimizer_free(o);

    c = nb_optimizer_defaults(NB_NADAM);
    o = make(&c, 1, &p);
    cr_assert_not(nb_optimizer_set_steps(o, 3, 0.0));
    cr_assert(strstr(nb_last_error(), "product 0 outside (0,1]"), "%s", nb_last_error());
    cr_assert_not(nb_optimizer_set_steps(o, 3, NAN));
    cr_assert(nb_optimizer_set_steps(o, 3, 0.25));
    cr_assert_eq(nb_optimizer_nadam_product(o), 0.25);
    nb_optimizer_free(o);
    nb_tensor_free(p);
}

Test(optimizer, copy_state_refuses_another_kind_count_or_size) {
    float w[8] = {0};
    nb_optimizer_config ca = nb_optimizer_defaults(NB_ADAM), cr = nb_optimizer_defaults(NB_RMSPROP);
    nb_tensor *p3 = param("a", 3, w), *p4 = param("b", 4, w), *q3 = param("c", 3, w);
    nb_optimizer *a = make(&ca, 1, &p3), *r = make(&cr, 1, &q3), *a4 = make(&ca, 1, &p4);
    nb_optimizer *a2 = make(&ca, 2, (nb_tensor *[]){q3, p4});
    cr_assert_not(nb_optimizer_copy_state(r, a));
    cr_assert(strstr(nb_last_error(), "adam with 1 tensors into rmsprop"), "%s", nb_last_error());
    cr_assert_not(nb_optimizer_copy_state(a2, a));
    cr_assert(strstr(nb_last_error(), "into adam with 2 tensors"), "%s", nb_last_error());
    cr_assert_not(nb_optimizer_copy_state(a4, a));
    cr_assert(strstr(nb_last_error(), "tensor 0 ('a') has 3 elements, the destination's ('b') 4"), "%s",
              nb_last_error());
    cr_assert_not(nb_optimizer_copy_state(NULL, a));
    nb_optimizer_free(a);
    nb_optimizer_free(r);
    nb_optimizer_free(a4);
    nb_optimizer_free(a2);
    nb_tensor_free(p3);
    nb_tensor_free(p4);
    nb_tensor_free(q3);
}
