/* examples/ch11_pretraining.c — unsupervised pretraining: an autoencoder
 * 784-300-100-300-784 (SELU, LeCun normal; a sigmoid output rebuilding
 * the pixels, binary cross-entropy) learns from all 60,000 training images
 * without their labels; its encoder (784-300-100) is then the lower part
 * of a classifier (+ Dense(10, softmax)) trained on only 500 labeled
 * images, frozen (only the new head learns) or frozen for 5 epochs and
 * then fine-tuned; against the same classifier from scratch on the same
 * 500 labels. Accuracy on the 10,000 held-out test images.
 *
 *   ch11_pretraining [--quick] [--data DIR] [--seeds N] OUTDIR
 *
 * Claim checked: the fine-tuned pretrained classifier's mean test accuracy
 * is at most 2 points below the classifier from scratch (pretraining does
 * no harm; how much it helps is reported). */
#include <math.h>

#include "lab.h"

#define MAX_SEEDS LAB_FEW_SEEDS
#define MAX_EPOCHS LAB_FEW_EPOCHS

int main(int argc, char **argv) {
    lab_args a;
    if (!lab_parse(argc, argv, "ch11_pretraining", &a)) return 2;
    if (a.seeds > MAX_SEEDS) a.seeds = MAX_SEEDS;
    int n_unlabeled = a.quick ? 5000 : 55000, n_valid = a.quick ? 1000 : 5000, n_test = a.quick ? 2000 : 10000;
    int ae_epochs = a.quick ? 2 : 5, epochs = a.quick ? 15 : 30, frozen = a.quick ? 2 : 5, n_labels = 500;
    nb_dataset train, valid, test, unlabeled;
    if (!lab_load(&a, n_unlabeled, n_valid, n_test, false, &train, &valid, &test) ||
        nb_dataset_concat(&train, &valid, &unlabeled)) /* every training image, labels unused */
        return lab_fail(&a, "data");

    static double acc[LAB_ARMS][MAX_SEEDS], curve[LAB_ARMS][MAX_SEEDS][MAX_EPOCHS], ae_bce[MAX_SEEDS];
    for (int s = 0; s < a.seeds; s++) {
        uint64_t seed = 42 + (uint64_t)s;
        nb_model *ae = nb_model_new(1, (int[]){train.dim}, seed);
        const int width[3] = {300, 100, 300};
        for (int i = 0; ae && i < 3; i++) {
            nb_layer_spec d = nb_dense_spec(width[i], "selu", "lecun_normal");
            if (!nb_model_add(ae, &d)) return lab_fail(&a, "autoencoder");
        }
        nb_layer_spec out = nb_dense_spec(train.dim, "sigmoid", NULL);
        if (!ae || !nb_model_add(ae, &out)) return lab_fail(&a, "autoencoder");
        nb_fit_opts o = nb_fit_defaults();
        o.epochs = ae_epochs, o.seed = seed, o.verbose = 0, o.optimizer = nb_optimizer_defaults(NB_NADAM);
        o.loss = (nb_loss_config){.kind = NB_LOSS_BINARY, .target_is_input = true};
        if (nb_fit(ae, &unlabeled, &o, NULL) || nb_evaluate_loss(ae, &test, 256, &o.loss, &ae_bce[s], NULL))
            return lab_fail(&a, "autoencoder");

        nb_dataset labeled;
        if (nb_dataset_sample(&train, n_labels, seed, &labeled)) return lab_fail(&a, "labels");
        for (int k = 0; k < LAB_ARMS; k++)
            if (!lab_few_labels(ae, 2, k, &labeled, &valid, &test, epochs, frozen, seed + 100, curve[k][s], &acc[k][s]))
                return lab_fail(&a, lab_arm_name[k]);
        fprintf(stderr, "seed %d: autoencoder bce %.4f; accuracy %.4f / %.4f / %.4f\n", s, ae_bce[s], acc[0][s],
                acc[1][s], acc[2][s]);
        nb_dataset_free(&labeled), nb_model_free(ae);
    }

    lab_md md;
    if (!lab_md_open(&md, &a, "Unsupervised pretraining: 500 labels")) return 3;
    char b[64];
    lab_md_printf(&md,
                  "Autoencoder 784-300-100-300-784 (SELU, LeCun normal; sigmoid output, binary cross-entropy "
                  "against the pixels in [0,1]) trained with Nadam (lr 0.001, batch 32) for %d epochs on %d "
                  "training images, labels unused; its test reconstruction loss %s. Classifier: the encoder's two "
                  "layers (copied) or fresh ones of the same configs, + Dense(10, softmax), trained with Nadam "
                  "for %d epochs on %d labeled images drawn per seed from the first %d (the same for every arm; "
                  "validation: the last %d); \"frozen then fine-tuned\" is frozen for the first %d. The head "
                  "alone learns at lr 0.01 while the reused layers are frozen, everything else at 0.001. Test "
                  "accuracy on %d test images; seeds 42..%d.\n\n",
                  ae_epochs, unlabeled.n, lab_pm(b, 64, ae_bce, a.seeds, 4), epochs, n_labels, train.n, valid.n,
                  frozen, test.n, 41 + a.seeds);
    lab_few_labels_report(&md, &a, acc, curve, epochs, "500 labels: validation accuracy (mean over seeds)",
                          "ch11_pretraining.png");

    double m0, m2;
    lab_mean_std(acc[LAB_SCRATCH], a.seeds, &m0, NULL), lab_mean_std(acc[LAB_FINETUNED], a.seeds, &m2, NULL);
    bool ok = m2 >= m0 - 0.02;
    lab_md_printf(&md,
                  "Claim checked: the pretrained, fine-tuned classifier's mean test accuracy is at most 2 points "
                  "below the one from scratch: **%s**\n",
                  ok ? "holds" : "FAILS");
    if (!lab_md_close(&md)) return 3;
    nb_dataset *all[] = {&train, &valid, &test, &unlabeled};
    for (int i = 0; i < 4; i++) nb_dataset_free(all[i]);
    return ok ? 0 : 1;
}
