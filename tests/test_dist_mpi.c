/* Data-parallel training over MPI (built when meson finds MPI): two
 * processes under mpirun end with one process's weights (through fit and
 * through a custom loop of nb_train_step), nabla train
 * under mpirun writes its files from rank 0 alone (and eval and summary
 * print once), and a process killed
 * mid-epoch ends the job with a message naming it. CI runs as root, hence
 * --allow-run-as-root; --oversubscribe lets 2 processes share fewer cores. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nabla/nabla.h"

#define MPIRUN "ASAN_OPTIONS=detect_leaks=0 timeout 120 mpirun -np 2 --oversubscribe --allow-run-as-root "

/* Runs cmd in dir, its output (both streams) in out; its exit status. */
static int run(const char *dir, const char *cmd, char *out, size_t len) {
    char line[2048];
    snprintf(line, sizeof line, "cd %s && %s 2>&1", dir, cmd);
    FILE *p = popen(line, "r");
    cr_assert_not_null(p);
    size_t n = fread(out, 1, len - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

Test(dist_mpi, two_processes_end_an_epoch_with_one_process_s_weights, .timeout = 150) {
    static char out[1 << 15];
    int rc = run("/tmp", MPIRUN NABLA_DIST_CHECK " equal", out, sizeof out);
    cr_assert_eq(rc, 0, "exit %d:\n%s", rc, out);
    cr_assert(strstr(out, "2 processes against one: largest weight difference"), "%s", out);
}

Test(dist_mpi, two_processes_stepping_a_custom_loop_end_with_one_process_s_weights, .timeout = 150) {
    static char out[1 << 15];
    int rc = run("/tmp", MPIRUN NABLA_DIST_CHECK " steps", out, sizeof out);
    cr_assert_eq(rc, 0, "exit %d:\n%s", rc, out);
    cr_assert(strstr(out, "custom loop: 2 processes against one: largest weight difference"), "%s", out);
}

Test(dist_mpi, nabla_train_under_mpirun_prints_and_writes_from_rank_0_only, .timeout = 150) {
    static char out[1 << 16];
    char dir[] = "/tmp/nabla-mpi-XXXXXX", cmd[1024];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(cmd, sizeof cmd,
             MPIRUN NABLA_TOOL " train --epochs 1 --train-size 1100 --threads 1 --save m.safetensors --history h.csv");
    int rc = run(dir, cmd, out, sizeof out);
    cr_assert_eq(rc, 0, "exit %d:\n%s", rc, out);
    const char *first = strstr(out, "test accuracy");
    cr_assert(first && !strstr(first + 1, "test accuracy"), "printed %s:\n%s", first ? "twice" : "never", out);
    cr_assert(strstr(out, "data-parallel over 2 processes"), "%s", out);
    char path[128];
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    nb_model *m = nb_model_load(path);
    cr_assert_not_null(m, "%s", nb_last_error());
    nb_model_free(m);
    /* one process's commands under mpirun: rank 0 alone prints */
    snprintf(cmd, sizeof cmd, MPIRUN NABLA_TOOL " eval --model m.safetensors --threads 1");
    rc = run(dir, cmd, out, sizeof out);
    cr_assert_eq(rc, 0, "eval: exit %d:\n%s", rc, out);
    first = strstr(out, "test accuracy");
    cr_assert(first && !strstr(first + 1, "test accuracy"), "eval printed %s:\n%s", first ? "twice" : "never", out);
    snprintf(cmd, sizeof cmd, MPIRUN NABLA_TOOL " summary --model m.safetensors");
    rc = run(dir, cmd, out, sizeof out);
    cr_assert_eq(rc, 0, "summary: exit %d:\n%s", rc, out);
    first = strstr(out, "Total params");
    cr_assert(first && !strstr(first + 1, "Total params"), "summary printed %s:\n%s", first ? "twice" : "never", out);
    unlink(path);
    snprintf(path, sizeof path, "%s/h.csv", dir);
    cr_assert_eq(access(path, F_OK), 0);
    unlink(path), rmdir(dir);
}

Test(dist_mpi, a_process_killed_mid_epoch_ends_the_job_naming_it, .timeout = 150) {
    static char out[1 << 15];
    int rc = run("/tmp", MPIRUN NABLA_DIST_CHECK " kill", out, sizeof out);
    cr_assert_neq(rc, 0, "the job survived:\n%s", out);
    cr_assert_neq(rc, 124, "the job hung until timeout:\n%s", out);
    cr_assert(strstr(out, "rank 1"), "no message names rank 1:\n%s", out);
}
