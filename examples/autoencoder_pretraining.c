/* examples/autoencoder_pretraining.c — the chapter's unsupervised
 * pretraining: an autoencoder learns to rebuild every training image (no
 * labels needed), then its encoder, copied, is the lower part of a
 * classifier trained on only 500 labeled images; the same classifier from
 * scratch is the baseline.
 *
 *   autoencoder_pretraining [--quick] [--data DIR]
 *
 * The pretrained classifier is saved, loaded back and checked to predict
 * the same bits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nabla/nabla.h"

static int fail(void) { return fprintf(stderr, "autoencoder_pretraining: %s\n", nb_last_error()), 1; }

static nb_layer *add(nb_model *m, nb_layer_spec s) { return nb_model_add(m, &s); }

int main(int argc, char **argv) {
    const char *dir = NULL;
    bool quick = argc > 1 && !strcmp(argv[1], "--quick");
    for (int i = 1 + quick; i + 1 < argc; i += 2)
        if (!strcmp(argv[i], "--data")) dir = argv[i + 1];
    nb_dataset train, test, labeled;
    if (nb_load_mnist_dir(dir, &train, &test) != NB_OK) return fail();
    nb_dataset_scale(&train, 1.0f / 255), nb_dataset_scale(&test, 1.0f / 255);
    if (quick) nb_dataset_slice(&train, 0, 5000, &train);
    if (nb_dataset_sample(&train, 500, 7, &labeled)) return fail();

    /* 784 -> 100 -> 30 -> 100 -> 784, the pixels in [0,1] rebuilt through a sigmoid */
    nb_model *ae = nb_model_new(2, (int[]){28, 28}, 42);
    add(ae, (nb_layer_spec){.kind = NB_LAYER_FLATTEN});
    add(ae, nb_dense_spec(100, "selu", "lecun_normal"));
    add(ae, nb_dense_spec(30, "selu", "lecun_normal"));
    add(ae, nb_dense_spec(100, "selu", "lecun_normal"));
    if (!add(ae, nb_dense_spec(784, "sigmoid", NULL))) return fail();
    nb_fit_opts o = nb_fit_defaults();
    o.epochs = quick ? 1 : 5, o.verbose = 0, o.optimizer = nb_optimizer_defaults(NB_NADAM);
    o.loss = (nb_loss_config){.kind = NB_LOSS_BINARY, .target_is_input = true};
    double bce, right;
    if (nb_fit(ae, &train, &o, NULL) || nb_evaluate_loss(ae, &test, 256, &o.loss, &bce, &right)) return fail();
    printf("autoencoder: test binary cross-entropy %.4f, %.1f%% of the pixels rebuilt on the right side of 1/2\n",
           bce, 100 * right);

    /* the classifier: the encoder (Flatten and two Dense, copied) or fresh layers, then Dense(10, softmax) */
    o.loss = (nb_loss_config){0}, o.epochs = quick ? 5 : 20;
    double acc[2];
    int same = 0;
    for (int pretrained = 0; pretrained < 2; pretrained++) {
        nb_model *c = nb_model_new(2, (int[]){28, 28}, 43);
        if (pretrained) {
            for (int i = 0; i < 3; i++) nb_model_add_from(c, nb_model_layer(ae, i), false);
        } else {
            add(c, (nb_layer_spec){.kind = NB_LAYER_FLATTEN});
            add(c, nb_dense_spec(100, "selu", "lecun_normal"));
            add(c, nb_dense_spec(30, "selu", "lecun_normal"));
        }
        if (!add(c, nb_dense_spec(10, "softmax", NULL))) return fail();
        if (nb_fit(c, &labeled, &o, NULL) || nb_evaluate(c, &test, 256, NULL, &acc[pretrained])) return fail();
        if (pretrained) { /* saved, loaded back, the same predictions bit for bit */
            nb_model *back = NULL;
            const size_t n = (size_t)test.n * 10;
            float *p = malloc(sizeof(float) * n), *q = malloc(sizeof(float) * n);
            if (!p || !q || nb_model_save(c, "pretrained.safetensors") || !(back = nb_model_load("pretrained.safetensors")) ||
                nb_predict(c, &test, 256, p) || nb_predict(back, &test, 256, q))
                return fail();
            same = memcmp(p, q, sizeof(float) * n) == 0;
            free(p), free(q), nb_model_free(back);
        }
        nb_model_free(c);
    }
    printf("classifier on 500 labeled images: test accuracy %.4f from scratch, %.4f on the pretrained encoder\n",
           acc[0], acc[1]);
    printf("saved to pretrained.safetensors and loaded back: %s predictions\n", same ? "identical" : "DIFFERENT");
    nb_model_free(ae);
    nb_dataset_free(&train), nb_dataset_free(&test), nb_dataset_free(&labeled);
    return same ? 0 : 1;
}
