/* Training beside a busy process (issue 9): it finishes, and with the same
 * bits as alone on one thread, whatever thread counts the pace governor
 * falls back to on the way. No timing is asserted. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "nabla/train.h"

enum { DIM = 128, N = 2048 };

static nb_dataset data(void) {
    nb_dataset d = {.n = N, .dim = DIM, .rows = 1, .cols = DIM, .n_classes = 10};
    d.x = malloc(sizeof(float) * (size_t)N * DIM);
    d.y = malloc(sizeof(float) * (size_t)N);
    nb_rng r;
    nb_rng_seed(&r, 7, 1);
    for (int i = 0; i < N; i++) {
        int c = (int)nb_rng_below(&r, 10);
        for (int j = 0; j < DIM; j++) d.x[i * DIM + j] = nb_rng_normal(&r) + (j % 10 == c ? 1.5f : 0.0f);
        d.y[i] = (float)c;
    }
    return d;
}

/* Products big enough to be shared by the team at batch 32, batch norm
 * and dropout for the random and the statistics ops. */
static nb_model *model(void) {
    nb_model *m = nb_model_new(1, (int[]){DIM}, 11);
    nb_layer_spec s[] = {nb_dense_spec(256, NULL, "he_normal"), nb_batch_norm_spec(), nb_activation_spec("elu"),
                         nb_dropout_spec(0.2f), nb_dense_spec(128, "relu", "he_normal"),
                         nb_dense_spec(10, NULL, NULL)};
    for (size_t i = 0; i < sizeof s / sizeof *s; i++) cr_assert_not_null(nb_model_add(m, &s[i]), "%s", nb_last_error());
    return m;
}

/* Trains 3 epochs at `threads` and returns every tensor's bytes. */
static unsigned char *train(int threads, size_t *bytes) {
    nb_set_num_threads(threads);
    nb_dataset d = data();
    nb_model *m = model();
    nb_fit_opts o = nb_fit_defaults();
    o.epochs = 3;
    o.verbose = 0;
    o.seed = 5;
    o.optimizer = nb_optimizer_defaults(NB_NADAM);
    cr_assert_eq(nb_fit(m, &d, &o, NULL), NB_OK, "%s", nb_last_error());
    nb_tensor *const *ts;
    int n = nb_model_tensors(m, &ts);
    size_t total = 0;
    for (int i = 0; i < n; i++) total += ts[i]->size * sizeof(float);
    unsigned char *out = malloc(total), *at = out;
    for (int i = 0; i < n; i++) {
        memcpy(at, ts[i]->data, ts[i]->size * sizeof(float));
        at += ts[i]->size * sizeof(float);
    }
    *bytes = total;
    nb_model_free(m);
    nb_dataset_free(&d);
    return out;
}

static pid_t start_busy(void) {
    pid_t pid = fork();
    cr_assert(pid >= 0, "fork failed");
    if (pid == 0) {
        alarm(300); /* never outlive a test that dies before killing it */
        for (volatile unsigned long i = 0;; i++) {
        }
    }
    return pid;
}

static void stop_busy(pid_t pid) {
    kill(pid, SIGKILL); /* by its process id, never by name */
    waitpid(pid, NULL, 0);
}

Test(contention, training_beside_a_busy_process_finishes_with_the_bits_of_one_thread_alone, .timeout = 300) {
    size_t n1, n2, n3;
    unsigned char *alone = train(1, &n1);
    pid_t busy = start_busy();
    unsigned char *two = train(2, &n2);
    unsigned char *three = train(3, &n3);
    stop_busy(busy);
    cr_assert_eq(n1, n2);
    cr_assert_eq(n1, n3);
    cr_assert(memcmp(alone, two, n1) == 0, "two threads beside a busy process changed the weights");
    cr_assert(memcmp(alone, three, n1) == 0, "three threads beside a busy process changed the weights");
    free(alone), free(two), free(three);
}

Test(contention, adaptation_can_be_switched_off_and_reads_back) {
    nb_set_num_threads(2);
    cr_assert(nb_get_thread_adaptation(), "on by default");
    nb_set_thread_adaptation(false);
    cr_assert(!nb_get_thread_adaptation());
    cr_assert_eq(nb_get_active_threads(), 2, "off: every region takes the configured count");
    nb_set_thread_adaptation(true);
    cr_assert(nb_get_thread_adaptation());
}

Test(contention, the_environment_switches_adaptation_off) {
    setenv("NABLA_ADAPT_THREADS", "0", 1);
    cr_assert(!nb_get_thread_adaptation());
}
