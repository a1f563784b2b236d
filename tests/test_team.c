/* The graph's team: at small batches a pass runs in one parallel region,
 * thread 0 running the ops in turn and the team sharing the large matrix
 * products (graph/run.c). Its results must be the serial ones, bit for bit,
 * and a failure inside it must come out as an error, not a hang. */
#include <criterion/criterion.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "nabla/custom.h"
#include "nabla/testing.h"

/* A custom op that passes x through and records whether its forward ran
 * inside a parallel region: the sign that the pass ran in the team. */
static int same_shape(int n, const nb_shape *in, nb_shape *out, void *user, char *err, size_t len) {
    (void)n, (void)user, (void)err, (void)len;
    *out = in[0];
    return 0;
}
static void pass_forward(int n, const float *const *in, const nb_shape *in_shapes, float *y,
                         const nb_shape *ys, void *user) {
    (void)n, (void)in_shapes;
    *(int *)user = omp_in_parallel();
    memcpy(y, in[0], nb_shape_size(ys) * sizeof(float));
}
static void pass_backward(int n, const float *const *in, const nb_shape *in_shapes, const float *y,
                          const float *dy, const nb_shape *ys, float *const *din, void *user) {
    (void)n, (void)in, (void)in_shapes, (void)y, (void)user;
    for (size_t i = 0; i < nb_shape_size(ys); i++) din[0][i] += dy[i];
}
static const nb_custom_op pass_op = {.name = "pass", .shape = same_shape, .forward = pass_forward,
                                     .backward = pass_backward};

enum { IN = 200, H1 = 100, H2 = 64, OUT = 10, NP = 6 };

typedef struct {
    nb_tensor *p[NP]; /* w1 b1 w2 b2 w3t b3 */
    float *x, *labels;
} net;

static net make_net(int batch) {
    net n = {
        .p = {t_tensor("w1", 2, (int[]){IN, H1}, -0.1f, 0.1f, 1), t_tensor("b1", 1, (int[]){H1}, -0.1f, 0.1f, 2),
              t_tensor("w2", 2, (int[]){H1, H2}, -0.1f, 0.1f, 3), t_tensor("b2", 1, (int[]){H2}, -0.1f, 0.1f, 4),
              /* stored transposed: the product reads it through strides */
              t_tensor("w3t", 2, (int[]){OUT, H2}, -0.1f, 0.1f, 5), t_tensor("b3", 1, (int[]){OUT}, -0.1f, 0.1f, 6)},
        .x = malloc(sizeof(float) * (size_t)batch * IN),
        .labels = malloc(sizeof(float) * (size_t)batch),
    };
    nb_tensor *xs = t_tensor("x", 2, (int[]){batch, IN}, -1, 1, 7);
    memcpy(n.x, xs->data, xs->size * sizeof(float));
    nb_tensor_free(xs);
    for (int i = 0; i < batch; i++) n.labels[i] = (float)(i * 7 % OUT);
    return n;
}

static void free_net(net *n) {
    for (int i = 0; i < NP; i++) nb_tensor_free(n->p[i]);
    free(n->x), free(n->labels);
}

/* One training step's loss, logits and gradients at the given thread count;
 * *in_team: whether the pass ran inside a parallel region. */
static float step(net *n, int batch, int threads, float *logits, float *grads[NP], int *in_team) {
    nb_set_num_threads(threads);
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", 2, (int[]){batch, IN}), *lab = nb_input(g, "labels", 1, (int[]){batch});
    nb_node *p[NP];
    for (int i = 0; i < NP; i++) p[i] = nb_param(g, n->p[i]);
    nb_node *h = nb_relu(g, nb_add(g, nb_matmul(g, x, p[0]), p[1]));
    h = nb_custom(g, &pass_op, 1, (nb_node *[]){h}, in_team);
    h = nb_relu(g, nb_add(g, nb_matmul(g, h, p[2]), p[3]));
    nb_node *y = nb_add(g, nb_matmul_t(g, h, p[4], false, true), p[5]);
    nb_node *loss = nb_softmax_cross_entropy(g, y, lab);
    nb_feed(g, x, n->x, batch);
    nb_feed(g, lab, n->labels, batch);
    nb_forward(g, NB_TRAINING);
    nb_backward(g, loss);
    t_ok(g);
    memcpy(logits, nb_node_value(y), nb_node_size(y) * sizeof(float));
    for (int i = 0; i < NP; i++) memcpy(grads[i], n->p[i]->grad, n->p[i]->size * sizeof(float));
    float l = nb_node_value(loss)[0];
    nb_graph_free(g);
    return l;
}

static void check_same_at(int batch, int expect_team) {
    net n = make_net(batch);
    float *logits[2], *grads[2][NP];
    int team[2];
    float loss[2];
    for (int t = 0; t < 2; t++) {
        logits[t] = malloc(sizeof(float) * (size_t)batch * OUT);
        for (int i = 0; i < NP; i++) grads[t][i] = malloc(n.p[i]->size * sizeof(float));
        loss[t] = step(&n, batch, t + 1, logits[t], grads[t], &team[t]);
    }
    cr_assert_eq(team[0], 0, "one thread never opens a region");
    cr_assert_eq(team[1], expect_team, "batch %d at two threads: in a team %d, expected %d", batch, team[1],
                 expect_team);
    cr_assert(memcmp(&loss[0], &loss[1], sizeof(float)) == 0, "loss %.9g vs %.9g", (double)loss[0],
              (double)loss[1]);
    cr_assert(memcmp(logits[0], logits[1], sizeof(float) * (size_t)batch * OUT) == 0, "logits differ");
    for (int i = 0; i < NP; i++)
        cr_assert(memcmp(grads[0][i], grads[1][i], n.p[i]->size * sizeof(float)) == 0,
                  "gradient of %s differs between 1 and 2 threads", n.p[i]->name);
    for (int t = 0; t < 2; t++) {
        free(logits[t]);
        for (int i = 0; i < NP; i++) free(grads[t][i]);
    }
    free_net(&n);
}

Test(team, a_small_batch_runs_in_one_region_with_the_serial_results_bit_for_bit) { check_same_at(32, 1); }

Test(team, an_odd_batch_too) { check_same_at(7, 1); }

/* 1400 x 100 = 140,000 activations (over TEAM_MAX_ELEMENTS): ops split their own loops instead */
Test(team, a_large_batch_runs_op_by_op_with_the_same_results) { check_same_at(1400, 0); }

static void gradcheck_at(int threads) {
    nb_set_num_threads(threads);
    nb_graph *g = nb_graph_new();
    nb_tensor *a = t_tensor("a", 2, (int[]){32, 96}, -1, 1, 11), *b = t_tensor("b", 2, (int[]){96, 48}, -0.1f, 0.1f, 12);
    nb_node *y = nb_tanh(g, nb_matmul(g, nb_param(g, a), nb_param(g, b)));
    nb_tensor *w;
    nb_node *loss = t_weighted_sum(g, y, &w, 13);
    nb_assert_gradcheck(g, loss, 1e-2);
    nb_graph_free(g);
    nb_tensor_free(a), nb_tensor_free(b), nb_tensor_free(w);
}

Test(team, the_gradients_check_in_the_team) { gradcheck_at(2); }

/* The cross-entropy fails on thread 0 (a label out of range); the team must
 * stop at the shared product after it, and the error must name the fault. */
Test(team, a_failure_inside_the_team_is_an_error_not_a_hang) {
    nb_set_num_threads(2);
    nb_graph *g = nb_graph_new();
    nb_tensor *a = t_tensor("a", 2, (int[]){32, 10}, -1, 1, 21);
    nb_tensor *c = t_tensor("c", 2, (int[]){32, 128}, -1, 1, 22), *d = t_tensor("d", 2, (int[]){128, 128}, -1, 1, 23);
    nb_node *lab = nb_input(g, "labels", 1, (int[]){32});
    nb_node *ce = nb_softmax_cross_entropy(g, nb_param(g, a), lab);
    nb_node *big = nb_sum(g, nb_matmul(g, nb_param(g, c), nb_param(g, d)));
    nb_node *loss = nb_add(g, ce, big);
    float labels[32];
    for (int i = 0; i < 32; i++) labels[i] = i == 5 ? 10.0f : 1.0f;
    nb_feed(g, lab, labels, 32);
    cr_assert_eq(nb_forward(g, NB_TRAINING), NB_ERROR);
    cr_assert(strstr(nb_graph_error(g), "label") != NULL, "message: %s", nb_graph_error(g));
    cr_assert_eq(nb_backward(g, loss), NB_ERROR, "a graph in error stays in error");
    nb_graph_free(g);
    nb_tensor_free(a), nb_tensor_free(c), nb_tensor_free(d);
}
