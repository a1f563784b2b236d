/* examples/transfer_learning.c — the chapter's transfer learning, as Géron
 * writes it in Keras: model A learns 8 Fashion-MNIST classes (all but
 * sandal and shirt); model B, "shirt or sandal" from only 200 images,
 * reuses A's hidden layers, frozen for 4 epochs, then trains them too.
 *
 *   transfer_learning [--quick] [--data DIR] [--seed S]
 *
 * --quick trains on fewer images for fewer epochs (the test suite runs it).
 * Prints A's and B's test accuracy, then saves B, loads it back and checks
 * that the loaded model predicts the same bits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla/nabla.h"

static int fail(void) { return fprintf(stderr, "transfer_learning: %s\n", nb_last_error()), 1; }

static nb_layer *add(nb_model *m, nb_layer_spec s) { return nb_model_add(m, &s); }

int main(int argc, char **argv) {
    const char *dir = NULL;
    bool quick = false;
    uint64_t seed = 42;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = true;
        else if (!strcmp(argv[i], "--data") && i + 1 < argc) dir = argv[++i];
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
        else return fprintf(stderr, "usage: transfer_learning [--quick] [--data DIR] [--seed S]\n"), 2;
    }
    nb_dataset train, test, train_a, test_a, b_all, train_b, test_b;
    if (nb_load_mnist_dir(dir, &train, &test) != NB_OK) return fail();
    nb_dataset_scale(&train, 1.0f / 255), nb_dataset_scale(&test, 1.0f / 255);
    if (quick) nb_dataset_slice(&train, 0, 6000, &train);
    const int a_classes[] = {0, 1, 2, 3, 4, 7, 8, 9}, b_classes[] = {5, 6}; /* B: sandal 0, shirt 1 */
    if (nb_dataset_select(&train, a_classes, 8, NULL, &train_a) || nb_dataset_select(&test, a_classes, 8, NULL, &test_a) ||
        nb_dataset_select(&train, b_classes, 2, NULL, &b_all) || nb_dataset_select(&test, b_classes, 2, NULL, &test_b) ||
        nb_dataset_sample(&b_all, 200, seed, &train_b))
        return fail();

    /* A: Flatten, 3 x Dense(100, relu, he_normal), Dense(8, softmax); SGD 0.001 as in the book */
    nb_model *a = nb_model_new(2, (int[]){28, 28}, seed);
    add(a, (nb_layer_spec){.kind = NB_LAYER_FLATTEN});
    for (int i = 0; i < 3; i++) add(a, nb_dense_spec(100, "relu", "he_normal"));
    if (!add(a, nb_dense_spec(8, "softmax", NULL))) return fail();
    nb_fit_opts o = nb_fit_defaults();
    o.epochs = quick ? 2 : 20, o.seed = seed, o.verbose = 0, o.optimizer.lr = 0.001f;
    double acc_a, acc_b;
    if (nb_fit(a, &train_a, &o, NULL) || nb_evaluate(a, &test_a, 256, NULL, &acc_a)) return fail();

    /* B on A: copies of A's layers but the last, then Dense(1, sigmoid) */
    nb_model *b = nb_model_new(2, (int[]){28, 28}, seed);
    for (int i = 0; i < nb_model_layer_count(a) - 1; i++)
        if (!nb_model_add_from(b, nb_model_layer(a, i), false)) return fail();
    if (!add(b, nb_dense_spec(1, "sigmoid", NULL))) return fail();
    nb_loss_config bce = {.kind = NB_LOSS_BINARY};
    o.loss = bce;
    for (int pass = 0; pass < 2; pass++) { /* frozen for 4 epochs, then all trained for 16 */
        for (int i = 0; i < nb_model_layer_count(b) - 1; i++) nb_layer_set_trainable(nb_model_layer(b, i), pass == 1);
        o.epochs = pass == 0 ? 4 : 16;
        if (nb_fit(b, &train_b, &o, NULL)) return fail();
    }
    if (nb_evaluate_loss(b, &test_b, 256, &bce, NULL, &acc_b)) return fail();
    printf("model A (8 classes): test accuracy %.4f\nmodel B on A (shirt or sandal, 200 images): test accuracy %.4f\n",
           acc_a, acc_b);

    /* saved, loaded back, the same predictions bit for bit */
    const char *path = "model_b_on_a.safetensors";
    nb_model *back = NULL;
    float *p = malloc(sizeof(float) * test_b.n), *q = malloc(sizeof(float) * test_b.n);
    if (!p || !q || nb_model_save(b, path) || !(back = nb_model_load(path)) || nb_predict(b, &test_b, 256, p) ||
        nb_predict(back, &test_b, 256, q))
        return fail();
    int same = memcmp(p, q, sizeof(float) * test_b.n) == 0;
    printf("saved to %s and loaded back: %s predictions\n", path, same ? "identical" : "DIFFERENT");
    free(p), free(q);
    nb_model_free(back), nb_model_free(b), nb_model_free(a);
    nb_dataset *all[] = {&train, &test, &train_a, &test_a, &b_all, &train_b, &test_b};
    for (int i = 0; i < 7; i++) nb_dataset_free(all[i]);
    return same ? 0 : 1;
}
