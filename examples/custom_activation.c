/* examples/custom_activation.c — a custom activation as a layer: Mish
 * (Misra 2019), x·tanh(softplus(x)), registered by name from nabla's own
 * ops, so its gradient comes with them. A model using it trains, saves the
 * activation by name, and loads back wherever "mish" is registered.
 *
 *   custom_activation [--quick] [--data DIR] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla/nabla.h"

static nb_node *mish(nb_graph *g, nb_node *x, float alpha, void *user) {
    (void)alpha, (void)user;
    return nb_mul(g, x, nb_tanh(g, nb_softplus(g, x)));
}

static int fail(void) { return fprintf(stderr, "custom_activation: %s\n", nb_last_error()), 1; }

static nb_layer *add(nb_model *m, nb_layer_spec s) { return nb_model_add(m, &s); }

int main(int argc, char **argv) {
    const char *dir = NULL;
    bool quick = argc > 1 && !strcmp(argv[1], "--quick");
    for (int i = 1 + quick; i + 1 < argc; i += 2)
        if (!strcmp(argv[i], "--data")) dir = argv[i + 1];
    if (nb_activation_register("mish", mish, NULL) != NB_OK) return fail();
    nb_dataset train, test;
    if (nb_load_mnist_dir(dir, &train, &test) != NB_OK) return fail();
    nb_dataset_scale(&train, 1.0f / 255), nb_dataset_scale(&test, 1.0f / 255);
    if (quick) nb_dataset_slice(&train, 0, 5000, &train);

    nb_model *m = nb_model_new(2, (int[]){28, 28}, 42);
    add(m, (nb_layer_spec){.kind = NB_LAYER_FLATTEN});
    add(m, nb_dense_spec(300, "mish", "he_normal"));
    add(m, nb_dense_spec(100, "mish", "he_normal"));
    if (!add(m, nb_dense_spec(10, "softmax", NULL))) return fail();
    nb_model_summary(m, stdout);
    nb_fit_opts o = nb_fit_defaults();
    o.epochs = quick ? 1 : 10, o.verbose = !quick;
    o.optimizer = nb_optimizer_defaults(NB_NADAM);
    double acc;
    if (nb_fit(m, &train, &o, NULL) || nb_evaluate(m, &test, 256, NULL, &acc)) return fail();
    printf("Mish 300-100: test accuracy %.4f\n", acc);

    nb_model *back = NULL;
    float *p = malloc(sizeof(float) * 10 * test.n), *q = malloc(sizeof(float) * 10 * test.n);
    if (!p || !q || nb_model_save(m, "mish.safetensors") || !(back = nb_model_load("mish.safetensors")) ||
        nb_predict(m, &test, 256, p) || nb_predict(back, &test, 256, q))
        return fail();
    int same = memcmp(p, q, sizeof(float) * 10 * test.n) == 0;
    printf("saved to mish.safetensors and loaded back: %s predictions\n", same ? "identical" : "DIFFERENT");
    free(p), free(q);
    nb_model_free(back), nb_model_free(m);
    nb_dataset_free(&train), nb_dataset_free(&test);
    return same ? 0 : 1;
}
