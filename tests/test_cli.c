/* The nabla command: bad flags get a usage message and a non-zero exit,
 * never a crash; a short train, eval and summary round trip works. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <math.h>

#include "nabla/nabla.h"

#ifndef NABLA_TOOL
#error "NABLA_TOOL must name the built nabla program"
#endif

/* Runs `nabla ARGS`, returns its exit status and its stdout+stderr in out. */
static int run(const char *args, char *out, size_t len) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", NABLA_TOOL, args);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t n = fread(out, 1, len - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    cr_assert(WIFEXITED(status), "nabla %s did not exit normally (signal?): %s", args, out);
    return WEXITSTATUS(status);
}

static void expect(const char *args, int code, const char *text) {
    static char out[1 << 16];
    int rc = run(args, out, sizeof out);
    cr_assert_eq(rc, code, "nabla %s: exit %d, expected %d\n%s", args, rc, code, out);
    cr_assert(strstr(out, text), "nabla %s: output lacks '%s':\n%s", args, text, out);
}

Test(cli, bad_commands_and_flags_get_usage_and_exit_2) {
    expect("", 2, "usage: nabla train");
    expect("frobnicate", 2, "unknown command 'frobnicate'");
    expect("train --bogus", 2, "bad or incomplete option '--bogus'");
    expect("train --epochs", 2, "bad or incomplete option");
    expect("train --layers 300,abc", 2, "--layers: '300,abc' is not a list");
    expect("train --lr -1", 2, "--lr: '-1' is not a number in range");
    expect("train --epochs 0", 2, "--epochs: '0' is not a whole number in range");
    expect("train --activation relux", 2, "unknown activation 'relux'");
    expect("train --optimizer adamm", 2, "unknown optimizer 'adamm'");
    expect("train --schedule cosine", 2, "unknown schedule 'cosine'");
    expect("train --preset fast", 2, "unknown preset 'fast'");
    expect("train --dropout 0.2 --alpha-dropout 0.1", 2, "exclude each other");
    expect("eval", 2, "--model FILE is required");
    expect("train extra", 2, "unexpected argument 'extra'");
    expect("--help", 0, "usage: nabla train");
}

Test(cli, missing_files_and_data_are_reported) {
    expect("eval --model /nonexistent/model.safetensors", 1, "/nonexistent/model.safetensors");
    expect("summary --model /nonexistent/m.safetensors", 1, "nabla:");
    expect("train --data /nonexistent-dir --epochs 1 --quiet", 1, "/nonexistent-dir");
}

Test(cli, train_eval_and_summary_round_trip, .timeout = 300) {
    char dir[] = "/tmp/nabla-cli-XXXXXX", args[512], model[96], csv[96];
    static char out[1 << 16];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(model, sizeof model, "%s/m.safetensors", dir);
    snprintf(csv, sizeof csv, "%s/h.csv", dir);
    /* the flags win over the preset: constant schedule, one epoch */
    snprintf(args, sizeof args,
             "train --preset default --schedule constant --epochs 1 --layers 50 --train-size 3300 "
             "--dropout 0.2 --mc-samples 5 --threads 1 --seed 3 --save %s --history %s --json",
             model, csv);
    int rc = run(args, out, sizeof out);
    cr_assert_eq(rc, 0, "%s", out);
    const char *json = strrchr(out, '{');
    cr_assert(json && strstr(json, "\"test_accuracy\":") && strstr(json, "\"epochs_run\":1") &&
                  strstr(json, "\"seed\":3}") && strstr(json, "\"threads\":1") &&
                  strstr(json, "\"mc_test_accuracy\":") && strstr(json, "\"train_samples_per_second\":"),
              "%s", out);
    double acc = 0;
    sscanf(strstr(json, "\"test_accuracy\":") + 16, "%lf", &acc);
    cr_assert_gt(acc, 0.5, "%s", out);
    cr_assert_eq(access(csv, R_OK), 0);

    snprintf(args, sizeof args, "eval --model %s --json --mc-samples 3", model);
    rc = run(args, out, sizeof out);
    cr_assert_eq(rc, 0, "%s", out);
    double acc2 = 0;
    cr_assert(strstr(out, "\"test_accuracy\":"), "%s", out);
    sscanf(strstr(out, "\"test_accuracy\":") + 16, "%lf", &acc2);
    cr_assert_float_eq(acc2, acc, 1e-4, "eval of the saved model: %s", out);
    cr_assert(strstr(out, "std"), "MC output shows the standard deviations: %s", out);

    snprintf(args, sizeof args, "summary --model %s", model);
    rc = run(args, out, sizeof out);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "Total params:") && strstr(out, "batch_normalization (BatchNormalization)"), "%s", out);
    unlink(model), unlink(csv), rmdir(dir);
}

Test(cli, options_are_checked_per_command_and_spelled_in_full) {
    expect("summary --model x --epochs 5", 2, "option '--epochs' does not apply here");
    expect("eval --model x --layers 10", 2, "option '--layers' does not apply here");
    expect("train --model x", 2, "option '--model' does not apply here");
    expect("train --pre selu", 2, "--preset: give it once, spelled in full");
    expect("train --layers 10,,10", 2, "--layers: '10,,10' is not a list");
    expect("train --layers 10,", 2, "is not a list");
    expect("train --train-size 50", 2, "--train-size: '50' is not a whole number in range");
}

/* Issue 10's fourth hole: --lr 100 trained at loss nan, exited 0, saved an
 * all-NaN model and printed "test_loss": 0. Now training stops at the
 * first non-finite loss, says where, exits 1 and saves nothing. */
Test(cli, a_diverging_training_stops_exits_1_and_saves_nothing, .timeout = 120) {
    char dir[] = "/tmp/nabla-div-XXXXXX", args[512], model[96];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(model, sizeof model, "%s/m.safetensors", dir);
    snprintf(args, sizeof args,
             "train --lr 100 --activation elu --epochs 2 --train-size 1100 --threads 1 --json --save %s", model);
    static char out[1 << 16];
    cr_assert_eq(run(args, out, sizeof out), 1, "%s", out);
    cr_assert(strstr(out, "the loss is") && strstr(out, "at epoch 1, step") && strstr(out, "invalid loss"), "%s", out);
    cr_assert_neq(access(model, F_OK), 0, "a diverged model was saved");
    rmdir(dir);
}

/* Issue 10's holes 9 and 14 in the command line: refused before any
 * training, with the flag named. */
Test(cli, lax_values_and_clashing_or_unwritable_outputs_are_refused_before_training) {
    expect("train --lr 0x10", 2, "--lr: '0x10' is not a number");
    expect("train --lr ' 0.5'", 2, "--lr: ' 0.5' is not a number");
    expect("train --lr inf", 2, "--lr: 'inf' is not a number");
    expect("train --epochs 1e3", 2, "--epochs: '1e3' is not a whole number");
    expect("train --epochs ' 3'", 2, "--epochs: ' 3' is not a whole number");
    expect("train --data ''", 2, "--data: the folder name is empty");
    expect("train --save /nonexistent-nabla/m.safetensors", 2, "--save: the folder '/nonexistent-nabla' does not exist");
    expect("train --plot /nonexistent-nabla/p.png", 2, "--plot: the folder");
    expect("train --plot /tmp/nabla-plot.txt", 2, "--plot: '/tmp/nabla-plot.txt' must end in .png or .svg");
    expect("lr-find --plot /tmp/nabla-plot", 2, "--plot: '/tmp/nabla-plot' must end in .png or .svg");
    expect("train --save ''", 2, "--save: the file name is empty");
    expect("train --save /tmp/nabla-same.st --history /tmp/nabla-same.st", 2, "name the same file");
    expect("train --history /tmp/nabla-same.png --plot /tmp/../tmp/nabla-same.png", 2, "name the same file");
}

/* Writes an uncompressed IDX file: magic, dims (big-endian), then n bytes
 * from f(i). */
static void write_idx(const char *path, unsigned magic, int rank, const unsigned *dims, unsigned char (*f)(long)) {
    FILE *fp = fopen(path, "wb");
    cr_assert_not_null(fp);
    unsigned char h[4] = {(unsigned char)(magic >> 24), (unsigned char)(magic >> 16), (unsigned char)(magic >> 8),
                          (unsigned char)magic};
    fwrite(h, 1, 4, fp);
    long total = 1;
    for (int i = 0; i < rank; i++) {
        unsigned char d[4] = {(unsigned char)(dims[i] >> 24), (unsigned char)(dims[i] >> 16),
                              (unsigned char)(dims[i] >> 8), (unsigned char)dims[i]};
        fwrite(d, 1, 4, fp);
        total *= dims[i];
    }
    for (long i = 0; i < total; i++) fputc(f(i), fp);
    fclose(fp);
}
static unsigned char pixel(long i) { return (unsigned char)(i * 2654435761u >> 24); }
static unsigned char label(long i) { return (unsigned char)(i % 10); }

/* Hole 12: the 5,000 validation images were taken whatever the data's
 * size, so 5,000 or fewer gave "the training set is empty". */
Test(cli, a_small_data_folder_trains_with_a_proportional_validation_split, .timeout = 120) {
    char dir[] = "/tmp/nabla-small-XXXXXX", p[160], args[512];
    cr_assert_not_null(mkdtemp(dir));
    const char *names[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                            "t10k-labels-idx1-ubyte"};
    unsigned n[4] = {1200, 1200, 200, 200};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        if (i % 2 == 0) write_idx(p, 0x803, 3, (unsigned[]){n[i], 28, 28}, pixel);
        else write_idx(p, 0x801, 1, (unsigned[]){n[i]}, label);
    }
    snprintf(args, sizeof args, "train --data %s --epochs 1 --threads 1 --quiet", dir);
    expect(args, 0, "test accuracy");
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

/* Issue 10, hole 4's second half: a model file whose weights are NaN (with
 * a valid checksum) loaded and evaluated with exit 0. */
Test(cli, eval_refuses_a_model_with_non_finite_weights) {
    char dir[] = "/tmp/nabla-nan-XXXXXX", path[96], args[160];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/nan.safetensors", dir);
    nb_model *m = nb_model_new(2, (int[]){28, 28}, 1);
    nb_layer_spec f = {.kind = NB_LAYER_FLATTEN}, d = nb_dense_spec(10, NULL, NULL);
    nb_model_add(m, &f);
    nb_layer *l = nb_model_add(m, &d);
    nb_layer_tensor(l, 0)->data[7] = NAN;
    cr_assert_eq(nb_model_save(m, path), NB_OK, "%s", nb_last_error());
    nb_model_free(m);
    snprintf(args, sizeof args, "eval --model %s", path);
    expect(args, 1, "tensor 'dense/kernel' holds nan at index 7");
    unlink(path), rmdir(dir);
}

Test(cli, resume_backs_up_each_epoch_and_clears_the_backup_when_done, .timeout = 120) {
    char dir[] = "/tmp/nabla-resume-XXXXXX", args[512], backup[96];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(backup, sizeof backup, "%s/run.backup", dir);
    snprintf(args, sizeof args, "train --resume %s --save %s", backup, backup);
    expect(args, 2, "--save and --resume name the same file");
    snprintf(args, sizeof args, "train --epochs 2 --train-size 1100 --threads 1 --quiet --resume %s", backup);
    expect(args, 0, "test accuracy");
    cr_assert_neq(access(backup, F_OK), 0, "the backup outlived a finished run");
    rmdir(dir);
}

/* Issue 11: nabla lr-find runs the range test on train's model, prints the
 * suggested rate and writes the CSV; its own options are checked before
 * any data is read, and train's that make no sense for it are refused. */
Test(cli, lr_find_prints_the_suggested_rate_and_writes_the_csv, .timeout = 120) {
    char dir[] = "/tmp/nabla-lrfind-XXXXXX", args[512], csv[96], line[256];
    static char out[1 << 16];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(csv, sizeof csv, "%s/lr.csv", dir);
    snprintf(args, sizeof args, "lr-find --layers 30 --train-size 1100 --steps 40 --lr-min 1e-4 --lr-max 1 "
                                "--threads 1 --csv %s", csv);
    cr_assert_eq(run(args, out, sizeof out), 0, "%s", out);
    const char *at = strstr(out, "suggested learning rate: ");
    cr_assert_not_null(at, "%s", out);
    double lr = 0;
    cr_assert_eq(sscanf(at + 25, "%lf", &lr), 1, "%s", out);
    cr_assert(lr >= 1e-5 && lr <= 0.1, "suggested %g: the minimum's rate / 10 lies in [1e-5, 0.1]\n%s", lr, out);
    cr_assert(strstr(out, "of 40 steps"), "%s", out);
    FILE *f = fopen(csv, "r");
    cr_assert_not_null(f, "no CSV at %s", csv);
    cr_assert(fgets(line, sizeof line, f) && !strcmp(line, "step,lr,loss,smoothed\n"), "%s", line);
    int rows = 0;
    double first = 0;
    while (fgets(line, sizeof line, f)) {
        long step;
        double r, loss, sm;
        cr_assert_eq(sscanf(line, "%ld,%lf,%lf,%lf", &step, &r, &loss, &sm), 4, "%s", line);
        if (rows == 0) first = r;
        rows++;
    }
    fclose(f);
    cr_assert(rows >= 2 && rows <= 40, "%d rows", rows);
    cr_assert(fabs(first - 1e-4) < 1e-10, "first rate %g", first);
    unlink(csv), rmdir(dir);

    expect("lr-find --lr-min 1 --lr-max 0.1", 2, "--lr-min 1 must be below --lr-max 0.1");
    expect("lr-find --lr-min 0", 2, "--lr-min: '0' is not a number in range");
    expect("lr-find --steps 1", 2, "--steps: '1' is not a whole number of steps, 2 or more");
    expect("lr-find --epochs 3", 2, "option '--epochs' does not apply here");
    expect("lr-find --lr 0.1", 2, "option '--lr' does not apply here");
    expect("train --lr-max 3", 2, "option '--lr-max' does not apply here");
    expect("lr-find --csv ''", 2, "--csv: the file name is empty");
    expect("--help", 0, "nabla lr-find");
}
