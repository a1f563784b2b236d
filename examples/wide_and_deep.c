/* examples/wide_and_deep.c — a functional model of two inputs and two
 * outputs, as the book's Wide & Deep network with an auxiliary output
 * (chapter 10), on Fashion-MNIST:
 *
 *   wide input: 56 cheap features (each row's and each column's mean ink)
 *   deep input: the 784 pixels, through Dense(300) and Dense(100)
 *   main output: Dense(10) on concatenate(wide, deep), the class
 *   aux output: Dense(10) on the deep path alone, a regularizer
 *
 * trained with loss 0.9 · main + 0.1 · aux (Keras's loss_weights).
 *
 *   wide_and_deep [--quick] [--data DIR] [--seed S]
 *
 * Prints both heads' test accuracy, then saves the model, loads it back
 * and checks that both outputs predict the same bits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla/nabla.h"

static int fail(void) { return fprintf(stderr, "wide_and_deep: %s\n", nb_last_error()), 1; }

/* Each image's 28 row means and 28 column means. */
static float *wide_features(const nb_dataset *d) {
    float *w = malloc(sizeof(float) * 56 * (size_t)d->n);
    for (int i = 0; w && i < d->n; i++) {
        const float *x = d->x + (size_t)i * 784;
        float *o = w + (size_t)i * 56;
        memset(o, 0, sizeof(float) * 56);
        for (int r = 0; r < 28; r++)
            for (int c = 0; c < 28; c++) o[r] += x[r * 28 + c] / 28, o[28 + c] += x[r * 28 + c] / 28;
    }
    return w;
}

int main(int argc, char **argv) {
    const char *dir = NULL;
    bool quick = false;
    uint64_t seed = 42;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = true;
        else if (!strcmp(argv[i], "--data") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else return fprintf(stderr, "usage: wide_and_deep [--quick] [--data DIR] [--seed S]\n"), 2;
    }
    nb_dataset train, test;
    if (nb_load_mnist_dir(dir, &train, &test) != NB_OK) return fail();
    nb_dataset_scale(&train, 1.0f / 255), nb_dataset_scale(&test, 1.0f / 255);
    if (quick) nb_dataset_slice(&train, 0, 5000, &train), nb_dataset_slice(&test, 0, 2000, &test);

    /* the model, call by call */
    nb_model *m = nb_model_functional(seed);
    nb_sym wide = nb_model_input(m, "wide", 1, (int[]){56});
    nb_sym deep = nb_model_input(m, "deep", 1, (int[]){784});
    nb_sym h = nb_model_call(m, nb_dense_spec(300, "relu", "he_normal"), deep);
    h = nb_model_call(m, nb_dense_spec(100, "relu", "he_normal"), h);
    nb_sym both = nb_model_merge(m, NB_LAYER_CONCATENATE, 2, (nb_sym[]){wide, h});
    nb_model_output(m, "main", nb_model_call(m, nb_dense_spec(10, "softmax", NULL), both));
    nb_model_output(m, "aux", nb_model_call(m, nb_dense_spec(10, "softmax", NULL), h));
    if (nb_model_status(m) != NB_OK) return fail();
    nb_model_summary(m, stdout);

    /* the data: two input arrays, the labels as both heads' targets */
    float *wide_train = wide_features(&train), *wide_test = wide_features(&test);
    nb_array in_train[] = {{"wide", wide_train, 56}, {"deep", train.x, 784}};
    nb_array in_test[] = {{"wide", wide_test, 56}, {"deep", test.x, 784}};
    nb_array y_train[] = {{"main", train.y, 1}, {"aux", train.y, 1}};
    nb_array y_test[] = {{"main", test.y, 1}, {"aux", test.y, 1}};
    nb_data d_train = {train.n, 2, in_train, 2, y_train}, d_test = {test.n, 2, in_test, 2, y_test};

    const nb_output_loss losses[] = {{.output = "main", .loss = {.kind = NB_LOSS_SPARSE_CATEGORICAL}, .weight = 0.9f},
                                     {.output = "aux", .loss = {.kind = NB_LOSS_SPARSE_CATEGORICAL}, .weight = 0.1f}};
    nb_fit_opts o = nb_fit_defaults();
    o.epochs = quick ? 2 : 20, o.seed = seed, o.verbose = quick ? 0 : 1, o.validation_split = 0.1f;
    o.optimizer = nb_optimizer_defaults(NB_NADAM);
    o.n_losses = 2, o.losses = losses;
    nb_epoch_metrics e;
    if (nb_fit_data(m, &d_train, &o, NULL) || nb_evaluate_data(m, &d_test, &o, &e)) return fail();
    printf("test accuracy: main %.4f, aux %.4f (loss %.4f = 0.9 * %.4f + 0.1 * %.4f)\n", e.output_metric[0],
           e.output_metric[1], e.loss, e.output_loss[0], e.output_loss[1]);

    /* saved, loaded back, both outputs the same bits */
    const char *path = "wide_and_deep.safetensors";
    nb_model *back = NULL;
    const size_t n = (size_t)test.n * 10;
    float *p[2] = {malloc(sizeof(float) * n), malloc(sizeof(float) * n)};
    float *q[2] = {malloc(sizeof(float) * n), malloc(sizeof(float) * n)};
    if (!p[0] || !p[1] || !q[0] || !q[1] || nb_model_save(m, path) || !(back = nb_model_load(path)) ||
        nb_predict_data(m, &d_test, 256, p) || nb_predict_data(back, &d_test, 256, q))
        return fail();
    int same = !memcmp(p[0], q[0], sizeof(float) * n) && !memcmp(p[1], q[1], sizeof(float) * n);
    printf("saved to %s and loaded back: %s predictions\n", path, same ? "identical" : "DIFFERENT");
    for (int k = 0; k < 2; k++) free(p[k]), free(q[k]);
    free(wide_train), free(wide_test);
    nb_model_free(back), nb_model_free(m);
    nb_dataset_free(&train), nb_dataset_free(&test);
    return same ? 0 : 1;
}
