/* examples/ch11_auxiliary.c — pretraining on an auxiliary task whose
 * labels cost nothing: every one of the 60,000 training images, its label
 * thrown away, is turned by 0, 90, 180 or 270 degrees (drawn per image),
 * and a net 784-300-100 (SELU, LeCun normal) + Dense(4, softmax) learns
 * to tell the rotation. Its two hidden layers are then the lower part of
 * a classifier (+ Dense(10, softmax)) trained on only 500 labeled images,
 * frozen (only the head learns) or frozen for 5 epochs then fine-tuned;
 * against the same classifier from scratch on the same 500 labels, and
 * with the same classifier code as ch11_pretraining (lab_few_labels), so
 * the two pretraining tasks compare. Accuracy on the 10,000 test images.
 *
 *   ch11_auxiliary [--quick] [--data DIR] [--seeds N] OUTDIR
 *
 * Claims checked: the rotation net beats chance (25%) by far (above 50% on
 * rotated test images), and the fine-tuned reused classifier's mean test
 * accuracy is at most 2 points below the classifier from scratch. */
#include <math.h>
#include <string.h>

#include "lab.h"

#define MAX_SEEDS LAB_FEW_SEEDS
#define MAX_EPOCHS LAB_FEW_EPOCHS

/* Each image of d (rows x cols, square) turned counter-clockwise by a
 * quarter turn k times, k drawn per image, which becomes its label. */
static void rotate_all(nb_dataset *d, uint64_t seed) {
    nb_rng rng;
    nb_rng_seed(&rng, seed, 0x707a7e);
    int n = d->rows;
    float tmp[1024];
    for (int i = 0; i < d->n; i++) {
        float *x = d->x + (size_t)i * d->dim;
        int k = (int)nb_rng_below(&rng, 4);
        for (int t = 0; t < k; t++) {
            for (int r = 0; r < n; r++)
                for (int c = 0; c < n; c++) tmp[r * n + c] = x[c * n + (n - 1 - r)];
            memcpy(x, tmp, sizeof(float) * (size_t)d->dim);
        }
        d->y[i] = (float)k;
    }
    d->n_classes = 4;
}

int main(int argc, char **argv) {
    lab_args a;
    if (!lab_parse(argc, argv, "ch11_auxiliary", &a)) return 2;
    if (a.seeds > MAX_SEEDS) a.seeds = MAX_SEEDS;
    int n_unlabeled = a.quick ? 5000 : 55000, n_valid = a.quick ? 1000 : 5000, n_test = a.quick ? 2000 : 10000;
    int aux_epochs = a.quick ? 2 : 5, epochs = a.quick ? 15 : 30, frozen = a.quick ? 2 : 5, n_labels = 500;
    nb_dataset train, valid, test, unlabeled, rot_test;
    if (!lab_load(&a, n_unlabeled, n_valid, n_test, false, &train, &valid, &test) ||
        nb_dataset_concat(&train, &valid, &unlabeled) || nb_dataset_slice(&test, 0, test.n, &rot_test))
        return lab_fail(&a, "data");
    if (train.rows != train.cols || train.dim > 1024) return lab_fail(&a, "square images of at most 1024 pixels");
    rotate_all(&rot_test, 7);

    static double acc[LAB_ARMS][MAX_SEEDS], curve[LAB_ARMS][MAX_SEEDS][MAX_EPOCHS], rot_acc[MAX_SEEDS];
    for (int s = 0; s < a.seeds; s++) {
        uint64_t seed = 42 + (uint64_t)s;
        nb_dataset rotated;
        if (nb_dataset_slice(&unlabeled, 0, unlabeled.n, &rotated)) return lab_fail(&a, "data");
        rotate_all(&rotated, seed);
        nb_model *aux = nb_model_new(1, (int[]){train.dim}, seed);
        const int width[2] = {300, 100};
        for (int i = 0; aux && i < 2; i++) {
            nb_layer_spec d = nb_dense_spec(width[i], "selu", "lecun_normal");
            if (!nb_model_add(aux, &d)) return lab_fail(&a, "rotation net");
        }
        nb_layer_spec out = nb_dense_spec(4, "softmax", NULL);
        nb_fit_opts o = nb_fit_defaults();
        o.epochs = aux_epochs, o.seed = seed, o.verbose = 0, o.optimizer = nb_optimizer_defaults(NB_NADAM);
        if (!aux || !nb_model_add(aux, &out) || nb_fit(aux, &rotated, &o, NULL) ||
            nb_evaluate(aux, &rot_test, 256, NULL, &rot_acc[s]))
            return lab_fail(&a, "rotation net");
        nb_dataset_free(&rotated);

        nb_dataset labeled;
        if (nb_dataset_sample(&train, n_labels, seed, &labeled)) return lab_fail(&a, "labels");
        for (int k = 0; k < LAB_ARMS; k++)
            if (!lab_few_labels(aux, 2, k, &labeled, &valid, &test, epochs, frozen, seed + 100, curve[k][s], &acc[k][s]))
                return lab_fail(&a, lab_arm_name[k]);
        fprintf(stderr, "seed %d: rotation accuracy %.4f; accuracy %.4f / %.4f / %.4f\n", s, rot_acc[s], acc[0][s],
                acc[1][s], acc[2][s]);
        nb_dataset_free(&labeled), nb_model_free(aux);
    }

    lab_md md;
    if (!lab_md_open(&md, &a, "Pretraining on an auxiliary task: rotations, then 500 labels")) return 3;
    char b[64];
    lab_md_printf(&md,
                  "Auxiliary task: each of %d training images (labels unused) turned by 0/90/180/270 degrees, drawn "
                  "per image and seed; net 784-300-100 (SELU, LeCun normal) + Dense(4, softmax), Nadam (lr 0.001, "
                  "batch 32), %d epochs; its accuracy on the %d test images, each turned at random: %s (chance "
                  "0.25). Classifier: its two hidden layers (copied) or fresh ones of the same configs, + Dense(10, "
                  "softmax), trained with Nadam for %d epochs on %d labeled images drawn per seed from the first %d "
                  "(the same for every arm; validation: the last %d); \"frozen then fine-tuned\" is frozen for the "
                  "first %d. The head alone learns at lr 0.01 while the reused layers are frozen, everything else "
                  "at 0.001. Test accuracy on %d test images; seeds 42..%d.\n\n",
                  unlabeled.n, aux_epochs, rot_test.n, lab_pm(b, 64, rot_acc, a.seeds, 4), epochs, n_labels, train.n,
                  valid.n, frozen, test.n, 41 + a.seeds);
    lab_few_labels_report(&md, &a, acc, curve, epochs,
                          "500 labels after rotation pretraining: validation accuracy (mean over seeds)",
                          "ch11_auxiliary.png");

    double m0, m2, mr;
    lab_mean_std(acc[LAB_SCRATCH], a.seeds, &m0, NULL), lab_mean_std(acc[LAB_FINETUNED], a.seeds, &m2, NULL);
    lab_mean_std(rot_acc, a.seeds, &mr, NULL);
    bool ok_rot = mr > 0.5, ok = m2 >= m0 - 0.02;
    lab_md_printf(&md,
                  "Claims checked: the rotation net's mean test accuracy is above 0.5 (chance 0.25): **%s**; the "
                  "reused, fine-tuned classifier's mean test accuracy is at most 2 points below the one from "
                  "scratch: **%s**\n",
                  ok_rot ? "holds" : "FAILS", ok ? "holds" : "FAILS");
    if (!lab_md_close(&md)) return 3;
    nb_dataset *all[] = {&train, &valid, &test, &unlabeled, &rot_test};
    for (int i = 0; i < 5; i++) nb_dataset_free(all[i]);
    return ok && ok_rot ? 0 : 1;
}
