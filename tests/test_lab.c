/* The chapter-11 lab (examples/ch11_*.c): each program, run with --quick
 * on a little data, checks its own claim and exits 0 only if the claim
 * holds, and writes its markdown table into the folder it is given. Each
 * test runs in a folder of its own (the suite runs two tests at once). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Sanitizer builds run the programs 10 to 20 times slower: there they get
 * one seed, 42. Every claim is checked on every seed, and seed 42's runs
 * are the same bits with one seed or three, so the check is the same one,
 * on a third of the work. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_UNDEFINED__)
#define LAB_SEEDS "1"
#else
#define LAB_SEEDS "3"
#endif

/* Runs NABLA_LAB_DIR/prog --quick --seeds LAB_SEEDS DIR/results (no shell), its output in DIR/log;
 * returns its exit status and reads DIR/prog.md into md. */
static int run_lab(const char *prog, char *dir, char *md, size_t len) {
    cr_assert_not_null(mkdtemp(dir));
    char exe[1024], log[1024], out[1024];
    snprintf(exe, sizeof exe, "%s/%s", NABLA_LAB_DIR, prog);
    snprintf(log, sizeof log, "%s/log", dir);
    snprintf(out, sizeof out, "%s/results", dir);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
    char *argv[] = {exe, "--quick", "--seeds", LAB_SEEDS, out, NULL};
    pid_t pid;
    cr_assert_eq(posix_spawn(&pid, exe, &fa, NULL, argv, environ), 0, "cannot run %s", exe);
    posix_spawn_file_actions_destroy(&fa);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "%s did not exit normally", prog);
    char path[1100];
    snprintf(path, sizeof path, "%s/%s.md", out, prog);
    md[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f) {
        size_t n = fread(md, 1, len - 1, f);
        md[n] = '\0';
        fclose(f);
    }
    return WEXITSTATUS(status);
}

/* Removes DIR/log, DIR/results/ and its files (all the program wrote), DIR. */
static void tidy(const char *dir) {
    char p[1400], res[1100];
    snprintf(p, sizeof p, "%s/log", dir);
    unlink(p);
    snprintf(res, sizeof res, "%s/results", dir);
    DIR *d = opendir(res);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", res, e->d_name);
        unlink(p);
    }
    if (d) closedir(d);
    rmdir(res), rmdir(dir);
}

static void check(const char *prog, const char *title) {
    static char md[1 << 16];
    char dir[] = "/tmp/nabla-lab-XXXXXX";
    int rc = run_lab(prog, dir, md, sizeof md);
    char log[4096] = "";
    char path[1100];
    snprintf(path, sizeof path, "%s/log", dir);
    FILE *f = fopen(path, "r");
    if (f) {
        size_t n = fread(log, 1, sizeof log - 1, f);
        log[n] = '\0';
        fclose(f);
    }
    cr_assert_eq(rc, 0, "%s --quick exited with %d (1: its claim failed):\n%s\n%s", prog, rc, md, log);
    cr_assert(strstr(md, title), "%s wrote no table titled '%s':\n%s", prog, title, md);
    cr_assert(strstr(md, "|---|"), "%s wrote no markdown table:\n%s", prog, md);
    cr_assert(strstr(md, "**holds**") && !strstr(md, "FAILS"), "%s:\n%s", prog, md);
    tidy(dir);
}

Test(lab, vanishing_gradients_sigmoid_saturates_and_he_relu_does_not, .timeout = 600) {
    check("ch11_vanishing", "Vanishing gradients");
}

Test(lab, activations_match_their_derivatives_and_nonsaturating_ones_beat_sigmoid, .timeout = 600) {
    check("ch11_activations", "Activation functions");
}

Test(lab, selu_self_normalizes_a_100_layer_net, .timeout = 600) { check("ch11_selu", "self-normalization"); }

Test(lab, momentum_and_adaptive_optimizers_beat_plain_sgd_early, .timeout = 600) {
    check("ch11_optimizers", "Faster optimizers");
}

Test(lab, schedules_have_their_shapes_and_decay_beats_a_constant_rate, .timeout = 600) {
    check("ch11_schedules", "Learning-rate schedules");
}

Test(lab, batch_norm_trains_a_deep_sigmoid_net_and_clipping_tames_an_exploding_one, .timeout = 600) {
    check("ch11_batchnorm", "Batch normalization and gradient clipping");
}

Test(lab, l2_and_dropout_shrink_the_gap_and_mc_dropout_calibrates_better, .timeout = 600) {
    check("ch11_regularization", "Regularization");
}

Test(lab, transfer_from_model_a_leaves_a_unchanged_and_does_no_harm_on_200_images, .timeout = 600) {
    check("ch11_transfer", "Transfer learning");
}

Test(lab, autoencoder_pretraining_does_no_harm_with_500_labels, .timeout = 600) {
    check("ch11_pretraining", "Unsupervised pretraining");
}

Test(lab, rotation_pretraining_learns_its_task_and_does_no_harm_with_500_labels, .timeout = 600) {
    check("ch11_auxiliary", "auxiliary task");
}

Test(lab, table_11_3_default_and_self_normalizing_nets_train_to_early_stopping, .timeout = 600) {
    check("ch11_table113", "Table 11-3");
}
