/* nabla-demo — builds a small network, trains it, and prints its loss falling.
 *
 * The task: learn y = sin(x1) + x2·x3 from 512 random points with a
 * 3-32-32-1 network (tanh, then ELU), mean squared error, plain SGD, batch
 * 64 with a smaller last batch. Only the public API is used. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "nabla/nabla.h"

enum { N = 500, IN = 3, H = 32, BATCH = 64, EPOCHS = 200 };

static nb_tensor *dense_weights(const char *name, int fan_in, int fan_out, nb_rng *r) {
    nb_tensor *w = nb_tensor_new(2, (int[]){fan_in, fan_out});
    if (!w) return NULL;
    nb_tensor_set_name(w, name);
    float limit = sqrtf(6.0f / (float)(fan_in + fan_out)); /* Glorot uniform */
    for (size_t i = 0; i < w->size; i++) w->data[i] = limit * (2.0f * nb_rng_uniform(r) - 1.0f);
    return w;
}

int main(void) {
    nb_rng r;
    nb_rng_seed(&r, 42, 0);
    static float x[N * IN], y[N];
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < IN; j++) x[i * IN + j] = 2.0f * nb_rng_uniform(&r) - 1.0f;
        y[i] = sinf(2.0f * x[i * IN]) + x[i * IN + 1] * x[i * IN + 2];
    }

    nb_tensor *w1 = dense_weights("w1", IN, H, &r), *w2 = dense_weights("w2", H, H, &r),
              *w3 = dense_weights("w3", H, 1, &r);
    nb_tensor *b1 = nb_tensor_new(1, (int[]){H}), *b2 = nb_tensor_new(1, (int[]){H}),
              *b3 = nb_tensor_new(1, (int[]){1});
    nb_tensor *params[] = {w1, b1, w2, b2, w3, b3};

    nb_graph *g = nb_graph_new();
    nb_node *in = nb_input(g, "x", 2, (int[]){BATCH, IN});
    nb_node *target = nb_input(g, "y", 2, (int[]){BATCH, 1});
    nb_node *h = nb_tanh(g, nb_add(g, nb_matmul(g, in, nb_param(g, w1)), nb_param(g, b1)));
    h = nb_elu(g, nb_add(g, nb_matmul(g, h, nb_param(g, w2)), nb_param(g, b2)), 1.0f);
    nb_node *pred = nb_add(g, nb_matmul(g, h, nb_param(g, w3)), nb_param(g, b3));
    nb_node *loss = nb_mse(g, pred, target);
    if (nb_graph_status(g) != NB_OK) {
        fprintf(stderr, "nabla-demo: %s\n", nb_graph_error(g));
        return 1;
    }

    printf("nabla-demo: 3-32-32-1 regression, %d samples, SGD lr 0.1, batch %d, %d threads\n", N,
           BATCH, nb_get_num_threads());
    const float lr = 0.1f;
    for (int epoch = 1; epoch <= EPOCHS; epoch++) {
        double total = 0.0;
        for (int start = 0; start < N; start += BATCH) {
            int b = N - start < BATCH ? N - start : BATCH; /* the last batch is smaller */
            nb_feed(g, in, x + start * IN, b);
            nb_feed(g, target, y + start, b);
            nb_forward(g, NB_TRAINING);
            nb_backward(g, loss);
            if (nb_graph_status(g) != NB_OK) {
                fprintf(stderr, "nabla-demo: %s\n", nb_graph_error(g));
                return 1;
            }
            total += (double)nb_node_value(loss)[0] * b;
            for (size_t p = 0; p < sizeof params / sizeof params[0]; p++)
                for (size_t i = 0; i < params[p]->size; i++)
                    params[p]->data[i] -= lr * params[p]->grad[i];
        }
        if (epoch == 1 || epoch % 20 == 0) printf("epoch %3d  loss %.5f\n", epoch, total / N);
    }
    nb_graph_free(g);
    for (size_t p = 0; p < sizeof params / sizeof params[0]; p++) nb_tensor_free(params[p]);
    return 0;
}
