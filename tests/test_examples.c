/* The programs of examples/ run on a little data and do what they say:
 * the chapter's transfer learning trains A, then B on A, and the saved B
 * loads back with the same predictions. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs cmd in a fresh folder; returns its exit status, its output in out. */
static int run_in_tmp(const char *cmd, char *out, size_t len, char *dir) {
    cr_assert_not_null(mkdtemp(dir));
    char line[1024];
    snprintf(line, sizeof line, "cd %s && %s 2>&1", dir, cmd);
    FILE *p = popen(line, "r");
    cr_assert_not_null(p);
    size_t n = fread(out, 1, len - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    cr_assert(WIFEXITED(status), "%s did not exit normally: %s", cmd, out);
    return WEXITSTATUS(status);
}

Test(examples, transfer_learning_trains_a_then_b_on_a_and_reloads_b_identically, .timeout = 300) {
    static char out[1 << 14];
    char dir[] = "/tmp/nabla-example-XXXXXX", saved[128];
    int rc = run_in_tmp(NABLA_EXAMPLE_TRANSFER " --quick", out, sizeof out, dir);
    cr_assert_eq(rc, 0, "exit %d:\n%s", rc, out);
    double a, b;
    const char *la = strstr(out, "model A (8 classes): test accuracy "), *lb = strstr(out, "(shirt or sandal, 200 images): test accuracy ");
    cr_assert(la && lb && strstr(out, "identical predictions"), "%s", out);
    cr_assert_eq(sscanf(la, "model A (8 classes): test accuracy %lf", &a), 1);
    cr_assert_eq(sscanf(lb, "(shirt or sandal, 200 images): test accuracy %lf", &b), 1);
    /* chance is 1/8 and 1/2: both learned something even in the quick run */
    cr_assert(a > 0.4, "model A: %g", a);
    cr_assert(b > 0.75, "model B on A: %g", b);
    snprintf(saved, sizeof saved, "%s/model_b_on_a.safetensors", dir);
    cr_assert_eq(access(saved, F_OK), 0, "no saved model");
    unlink(saved), rmdir(dir);
}

Test(examples, a_custom_activation_trains_as_a_layer_and_reloads_by_name, .timeout = 300) {
    static char out[1 << 14];
    char dir[] = "/tmp/nabla-example-XXXXXX", saved[128];
    int rc = run_in_tmp(NABLA_EXAMPLE_MISH " --quick", out, sizeof out, dir);
    cr_assert_eq(rc, 0, "exit %d:\n%s", rc, out);
    double acc;
    const char *l = strstr(out, "Mish 300-100: test accuracy ");
    cr_assert(l && strstr(out, "identical predictions") && strstr(out, "(Dense)"), "%s", out);
    cr_assert_eq(sscanf(l, "Mish 300-100: test accuracy %lf", &acc), 1);
    cr_assert(acc > 0.7, "one quick epoch with Mish: %g", acc);
    snprintf(saved, sizeof saved, "%s/mish.safetensors", dir);
    cr_assert_eq(access(saved, F_OK), 0, "no saved model");
    unlink(saved), rmdir(dir);
}

Test(examples, an_autoencoder_learns_unlabeled_and_its_encoder_serves_a_classifier, .timeout = 300) {
    static char out[1 << 14];
    char dir[] = "/tmp/nabla-example-XXXXXX";
    int rc = run_in_tmp(NABLA_EXAMPLE_AUTOENCODER " --quick", out, sizeof out, dir);
    cr_assert_eq(rc, 0, "exit %d:\n%s", rc, out);
    double bce, right, scratch, pre;
    const char *a = strstr(out, "autoencoder: test binary cross-entropy "), *c = strstr(out, "test accuracy ");
    cr_assert(a && c, "%s", out);
    cr_assert_eq(sscanf(a, "autoencoder: test binary cross-entropy %lf, %lf%%", &bce, &right), 2, "%s", out);
    cr_assert_eq(sscanf(c, "test accuracy %lf from scratch, %lf on the pretrained encoder", &scratch, &pre), 2, "%s", out);
    cr_assert(right > 80, "the autoencoder rebuilt %g%% of the pixels", right);
    cr_assert(scratch > 0.5 && pre > 0.5, "classifiers: %g and %g", scratch, pre);
    cr_assert(strstr(out, "identical predictions"), "%s", out);
    char saved[128];
    snprintf(saved, sizeof saved, "%s/pretrained.safetensors", dir);
    cr_assert_eq(access(saved, F_OK), 0, "no saved model");
    unlink(saved), rmdir(dir);
}

Test(examples, wide_and_deep_trains_two_heads_on_two_inputs_and_reloads_identically, .timeout = 300) {
    static char out[1 << 14];
    char dir[] = "/tmp/nabla-example-XXXXXX", saved[128];
    int rc = run_in_tmp(NABLA_EXAMPLE_WIDE_DEEP " --quick", out, sizeof out, dir);
    cr_assert_eq(rc, 0, "exit %d:\n%s", rc, out);
    double main_acc, aux_acc, loss, lm, la;
    const char *l = strstr(out, "test accuracy: main ");
    cr_assert(l && strstr(out, "identical predictions") && strstr(out, "concatenate (Concatenate)"), "%s", out);
    cr_assert_eq(sscanf(l, "test accuracy: main %lf, aux %lf (loss %lf = 0.9 * %lf + 0.1 * %lf)", &main_acc, &aux_acc,
                        &loss, &lm, &la), 5, "%s", l);
    cr_assert(main_acc > 0.75 && aux_acc > 0.6, "two quick epochs: main %g, aux %g", main_acc, aux_acc);
    cr_assert(loss > 0.9 * lm + 0.1 * la - 1e-3 && loss < 0.9 * lm + 0.1 * la + 1e-3, "%s", l);
    snprintf(saved, sizeof saved, "%s/wide_and_deep.safetensors", dir);
    cr_assert_eq(access(saved, F_OK), 0, "no saved model");
    unlink(saved), rmdir(dir);
}
