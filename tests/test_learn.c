/* Whole models: a tiny network learns, training is bit-for-bit repeatable,
 * and a model using every kind of op allocates nothing once warmed up. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_count.h"
#include "helpers.h"
#include "nabla/testing.h"

static void sgd(nb_tensor *const *params, int n, float lr) {
    for (int p = 0; p < n; p++)
        for (size_t i = 0; i < params[p]->size; i++) params[p]->data[i] -= lr * params[p]->grad[i];
}

Test(learn, xor_is_learned_to_a_small_loss) {
    /* 2-8-1, tanh then a logit, binary cross-entropy, full-batch SGD */
    const float x[4 * 2] = {0, 0, 0, 1, 1, 0, 1, 1}, y[4] = {0, 1, 1, 0};
    nb_tensor *w1 = t_tensor("w1", 2, (int[]){2, 8}, -1, 1, 1), *b1 = t_tensor("b1", 1, (int[]){8}, -0.1f, 0.1f, 2);
    nb_tensor *w2 = t_tensor("w2", 2, (int[]){8, 1}, -1, 1, 3), *b2 = t_tensor("b2", 1, (int[]){1}, 0, 0, 4);
    nb_tensor *params[] = {w1, b1, w2, b2};
    nb_graph *g = nb_graph_new();
    nb_node *in = nb_input(g, "x", 2, (int[]){4, 2}), *target = nb_input(g, "y", 2, (int[]){4, 1});
    nb_node *h = nb_tanh(g, nb_add(g, nb_matmul(g, in, nb_param(g, w1)), nb_param(g, b1)));
    nb_node *logit = nb_add(g, nb_matmul(g, h, nb_param(g, w2)), nb_param(g, b2));
    nb_node *loss = nb_bce_with_logits(g, logit, target);
    nb_feed(g, in, x, 4);
    nb_feed(g, target, y, 4);
    float first = 0, last = 0;
    for (int step = 0; step < 2000; step++) {
        nb_forward(g, NB_TRAINING);
        nb_backward(g, loss);
        if (step == 0) first = nb_node_value(loss)[0];
        last = nb_node_value(loss)[0];
        sgd(params, 4, 0.5f);
    }
    t_ok(g);
    cr_log_info("xor: loss %.4f -> %.5f", first, last);
    cr_assert_lt(last, 0.02f, "loss fell only from %g to %g", first, last);
    nb_forward(g, NB_INFERENCE);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(nb_node_value(logit)[i] > 0, y[i] > 0.5f, "sample %d misclassified", i);
    nb_graph_free(g);
    for (int p = 0; p < 4; p++) nb_tensor_free(params[p]);
}

/* A model with every kind of op a training step uses: matmul, bias add,
 * batch norm, ELU, dropout, softmax cross-entropy, an l2 penalty. */
typedef struct {
    nb_tensor *w1, *g1, *be1, *rm1, *rv1, *w2, *b2;
    nb_graph *g;
    nb_node *in, *labels, *loss;
} model;

enum { IN = 20, HID = 64, OUT = 5, BATCH = 32, N = 200 };

static void model_build(model *m, uint64_t seed) {
    m->w1 = t_tensor("w1", 2, (int[]){IN, HID}, -0.3f, 0.3f, 11);
    m->g1 = t_tensor("gamma1", 1, (int[]){HID}, 1, 1, 12);
    m->be1 = t_tensor("beta1", 1, (int[]){HID}, 0, 0, 13);
    m->rm1 = t_tensor("mean1", 1, (int[]){HID}, 0, 0, 14);
    m->rv1 = t_tensor("var1", 1, (int[]){HID}, 1, 1, 15);
    m->rm1->trainable = m->rv1->trainable = false;
    m->w2 = t_tensor("w2", 2, (int[]){HID, OUT}, -0.3f, 0.3f, 16);
    m->b2 = t_tensor("b2", 1, (int[]){OUT}, 0, 0, 17);
    nb_graph *g = m->g = nb_graph_new();
    nb_graph_set_seed(g, seed);
    m->in = nb_input(g, "x", 2, (int[]){BATCH, IN});
    m->labels = nb_input(g, "labels", 1, (int[]){BATCH});
    nb_node *h = nb_matmul(g, m->in, nb_param(g, m->w1));
    h = nb_batchnorm(g, h, nb_param(g, m->g1), nb_param(g, m->be1), m->rm1, m->rv1, 0.99f, 1e-3f);
    h = nb_dropout(g, nb_elu(g, h, 1.0f), 0.2f);
    nb_node *logits = nb_add(g, nb_matmul(g, h, nb_param(g, m->w2)), nb_param(g, m->b2));
    nb_node *penalty = nb_scale(g, nb_sum_squares(g, nb_param(g, m->w2)), 1e-4f);
    m->loss = nb_add(g, nb_softmax_cross_entropy(g, logits, m->labels), penalty);
    t_ok(g);
}

static void model_free(model *m) {
    nb_graph_free(m->g);
    nb_tensor *ts[] = {m->w1, m->g1, m->be1, m->rm1, m->rv1, m->w2, m->b2};
    for (int i = 0; i < 7; i++) nb_tensor_free(ts[i]);
}

static void data(float *x, float *labels) {
    nb_rng r;
    nb_rng_seed(&r, 99, 0);
    for (int i = 0; i < N; i++) {
        int c = (int)nb_rng_below(&r, OUT);
        labels[i] = (float)c;
        for (int j = 0; j < IN; j++) x[i * IN + j] = nb_rng_normal(&r) + (j % OUT == c ? 1.5f : 0.0f);
    }
}

/* One epoch of SGD in batches of 32 (the last one 8); returns the mean loss. */
static double epoch(model *m, const float *x, const float *labels) {
    nb_tensor *params[] = {m->w1, m->g1, m->be1, m->w2, m->b2};
    double total = 0;
    for (int s = 0; s < N; s += BATCH) {
        int b = N - s < BATCH ? N - s : BATCH;
        nb_feed(m->g, m->in, x + s * IN, b);
        nb_feed(m->g, m->labels, labels + s, b);
        nb_forward(m->g, NB_TRAINING);
        nb_backward(m->g, m->loss);
        total += nb_node_value(m->loss)[0] * b;
        sgd(params, 5, 0.05f);
    }
    return total / N;
}

Test(learn, a_classifier_with_every_op_kind_learns) {
    static float x[N * IN], labels[N];
    data(x, labels);
    model m;
    model_build(&m, 5);
    double first = epoch(&m, x, labels), last = first;
    for (int e = 1; e < 30; e++) last = epoch(&m, x, labels);
    t_ok(m.g);
    cr_log_info("classifier: loss %.4f -> %.4f", first, last);
    cr_assert_lt(last, 0.5 * first, "loss fell only from %g to %g", first, last);
    model_free(&m);
}

/* Trains for three epochs and returns a copy of every parameter and running statistic. */
static float *train_and_copy(uint64_t seed, int threads) {
    static float x[N * IN], labels[N];
    data(x, labels);
    nb_set_num_threads(threads);
    model m;
    model_build(&m, seed);
    for (int e = 0; e < 3; e++) epoch(&m, x, labels);
    t_ok(m.g);
    nb_tensor *ts[] = {m.w1, m.g1, m.be1, m.rm1, m.rv1, m.w2, m.b2};
    size_t total = 0;
    for (int i = 0; i < 7; i++) total += ts[i]->size;
    float *out = malloc(total * sizeof(float)), *p = out;
    for (int i = 0; i < 7; i++) {
        memcpy(p, ts[i]->data, ts[i]->size * sizeof(float));
        p += ts[i]->size;
    }
    model_free(&m);
    return out;
}

static const size_t n_weights = IN * HID + 4 * HID + HID * OUT + OUT;

Test(learn, the_same_seed_trains_bit_for_bit_the_same) {
    float *a = train_and_copy(7, 1), *b = train_and_copy(7, 1), *c = train_and_copy(8, 1);
    cr_assert(memcmp(a, b, n_weights * sizeof(float)) == 0, "two runs with seed 7 differ");
    cr_assert(memcmp(a, c, n_weights * sizeof(float)) != 0, "seeds 7 and 8 gave the same weights");
    free(a), free(b), free(c);
}

Test(learn, the_thread_count_does_not_change_training) {
    /* every op and the matmul compute each output element in a fixed order,
     * so one and two threads agree exactly, not just within a tolerance */
    float *a = train_and_copy(7, 1), *b = train_and_copy(7, 2);
    nb_assert_near(b, a, n_weights, 0, 0);
    free(a), free(b);
}

Test(learn, a_warmed_up_step_of_the_full_model_allocates_nothing) {
    cr_assert(alloc_count_works(), "this build cannot count allocations");
    static float x[N * IN], labels[N];
    data(x, labels);
    for (int threads = 1; threads <= 2; threads++) {
        nb_set_num_threads(threads);
        model m;
        model_build(&m, 3);
        epoch(&m, x, labels); /* warm-up: plans the arena, starts thread pools */
        unsigned long before = alloc_count();
        epoch(&m, x, labels); /* includes a smaller last batch */
        nb_forward(m.g, NB_INFERENCE);
        unsigned long after = alloc_count();
        t_ok(m.g);
        cr_assert_eq(after - before, 0, "%lu heap allocations in one epoch at %d threads",
                     after - before, threads);
        model_free(&m);
    }
}
