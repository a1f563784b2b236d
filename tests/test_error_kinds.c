/* Error kinds: each failure says what kind it is (nb_last_error_kind,
 * nb_graph_error_kind), produced here by real failures — a missing file,
 * a corrupt one, a bad argument, a NaN caught by the finiteness check, an
 * allocation that cannot succeed — so a caller can react without parsing
 * the message. */
#define _GNU_SOURCE  // nftw
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "graph/file.h"
#include "graph/internal.h"
#include "helpers.h"
#include "nabla/testing.h"

static char tmpdir[64];

static void make_tmpdir(void) {
    strcpy(tmpdir, "/tmp/nabla-kinds-XXXXXX");
    cr_assert(mkdtemp(tmpdir), "mkdtemp failed");
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static void remove_tmpdir(void) { nftw(tmpdir, remove_one, 16, FTW_DEPTH | FTW_PHYS); }

TestSuite(error_kinds, .init = make_tmpdir, .fini = remove_tmpdir);

/* tmpdir/name, in a caller's buffer of PATH_MAX bytes. */
static const char *tpath(char *buf, const char *name) {
    snprintf(buf, PATH_MAX, "%s/%s", tmpdir, name);
    return buf;
}

static const char *write_bytes(char *buf, const char *name, const void *bytes, size_t len) {
    tpath(buf, name);
    FILE *f = fopen(buf, "wb");
    cr_assert_not_null(f, "cannot write %s", buf);
    cr_assert_eq(fwrite(bytes, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
    return buf;
}

static const char *write_text(char *buf, const char *name, const char *text) {
    return write_bytes(buf, name, text, strlen(text));
}

/* The last error has this kind, and a message that holds part. */
#define expect_kind(kind, part)                                                                  \
    do {                                                                                         \
        cr_assert_eq(nb_last_error_kind(), (kind), "kind %s, expected %s; message '%s'",         \
                     nb_error_kind_name(nb_last_error_kind()), nb_error_kind_name(kind),         \
                     nb_last_error());                                                           \
        cr_assert(strstr(nb_last_error(), (part)), "message '%s' lacks '%s'", nb_last_error(),   \
                  (part));                                                                       \
    } while (0)

#define expect_graph_kind(g, kind, part)                                                         \
    do {                                                                                         \
        cr_assert_eq(nb_graph_error_kind(g), (kind), "kind %s, expected %s; message '%s'",       \
                     nb_error_kind_name(nb_graph_error_kind(g)), nb_error_kind_name(kind),       \
                     nb_graph_error(g));                                                         \
        cr_assert(strstr(nb_graph_error(g), (part)), "message '%s' lacks '%s'", nb_graph_error(g), \
                  (part));                                                                       \
    } while (0)

Test(error_kinds, every_kind_has_a_distinct_stable_name) {
    static const struct {
        nb_error_kind kind;
        const char *name;
    } names[] = {
        {NB_ERR_NONE, "none"},       {NB_ERR_INVALID_ARGUMENT, "invalid_argument"},
        {NB_ERR_OUT_OF_MEMORY, "out_of_memory"}, {NB_ERR_IO, "io"},
        {NB_ERR_CORRUPT, "corrupt"}, {NB_ERR_NONFINITE, "nonfinite"},
        {NB_ERR_UNSUPPORTED, "unsupported"},
    };
    const int n = (int)(sizeof names / sizeof names[0]);
    for (int i = 0; i < n; i++) {
        cr_assert_eq((int)names[i].kind, i, "the kinds are numbered 0.. in order");
        cr_assert_str_eq(nb_error_kind_name(names[i].kind), names[i].name);
    }
    cr_assert_str_eq(nb_error_kind_name((nb_error_kind)n), "unknown");
    cr_assert_str_eq(nb_error_kind_name((nb_error_kind)-1), "unknown");
}

Test(error_kinds, nothing_failed_yet_is_none) {
    /* each test runs in a fresh process */
    cr_assert_eq(nb_last_error_kind(), NB_ERR_NONE);
    cr_assert_str_eq(nb_last_error(), "");
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", 2, (int[]){2, 3});
    cr_assert_not_null(nb_relu(g, x));
    cr_assert_eq(nb_graph_error_kind(g), NB_ERR_NONE);
    cr_assert_eq(nb_last_error_kind(), NB_ERR_NONE);
    nb_graph_free(g);
}

/* ---- I/O ---- */

Test(error_kinds, a_missing_or_unreadable_file_is_io) {
    char p[PATH_MAX], q[PATH_MAX];
    nb_dataset d;
    cr_assert_eq(nb_load_csv(tpath(p, "missing.csv"), -1, false, &d), NB_ERROR);
    expect_kind(NB_ERR_IO, "missing.csv: cannot open: No such file or directory");

    write_text(q, "labels", "");
    cr_assert_eq(nb_load_idx(tpath(p, "missing-images"), q, &d), NB_ERROR);
    expect_kind(NB_ERR_IO, "missing-images: cannot open");

    /* a folder where a file was expected */
    cr_assert_eq(nb_load_csv(tmpdir, -1, false, &d), NB_ERROR);
    expect_kind(NB_ERR_IO, "is a folder");

    /* a data folder without the four files */
    nb_dataset te;
    cr_assert_eq(nb_load_mnist_dir(tmpdir, &d, &te), NB_ERROR);
    expect_kind(NB_ERR_IO, "no train-images-idx3-ubyte[.gz] in");

    if (geteuid() != 0) { /* root reads anything */
        write_text(p, "locked.csv", "1,2\n");
        cr_assert_eq(chmod(p, 0), 0);
        cr_assert_eq(nb_load_csv(p, -1, false, &d), NB_ERROR);
        expect_kind(NB_ERR_IO, "Permission denied");
    }
}

Test(error_kinds, the_atomic_writer_leaves_errno_for_the_kind) {
    char p[PATH_MAX], err[256] = "";
    nb_atomic_file a;
    errno = 0;
    cr_assert_not(nb__atomic_open(&a, tpath(p, "no-such-folder/out.bin"), err, sizeof err));
    cr_assert_eq(errno, ENOENT, "errno %d (%s): %s", errno, strerror(errno), err);
    cr_assert_eq(nb__errno_kind(errno), NB_ERR_IO);
    cr_assert_eq(nb__errno_kind(ENOMEM), NB_ERR_OUT_OF_MEMORY);
    cr_assert_eq(nb__errno_kind(ENOSPC), NB_ERR_IO);
}

/* ---- corrupt content ---- */

/* An IDX header: magic, then rank big-endian dimensions, into b; returns its length. */
static size_t idx_header(unsigned char *b, unsigned magic, int rank, const unsigned *dims) {
    size_t k = 0;
    for (int s = 24; s >= 0; s -= 8) b[k++] = (unsigned char)(magic >> s);
    for (int i = 0; i < rank; i++)
        for (int s = 24; s >= 0; s -= 8) b[k++] = (unsigned char)(dims[i] >> s);
    return k;
}

Test(error_kinds, a_truncated_or_malformed_idx_file_is_corrupt) {
    char img[PATH_MAX], lab[PATH_MAX];
    unsigned char b[64 + 2 * 2 * 3];
    nb_dataset d;
    /* three 2x2 images, their three labels */
    size_t k = idx_header(b, 0x803, 3, (unsigned[]){3, 2, 2});
    memset(b + k, 7, 12);
    write_bytes(img, "img", b, k + 12);
    k = idx_header(b, 0x801, 1, (unsigned[]){3});
    memset(b + k, 1, 3);
    write_bytes(lab, "lab", b, k + 3);
    cr_assert_eq(nb_load_idx(img, lab, &d), NB_OK, "%s", nb_last_error());
    nb_dataset_free(&d);

    /* the pixels cut short */
    k = idx_header(b, 0x803, 3, (unsigned[]){3, 2, 2});
    write_bytes(img, "short", b, k + 5);
    cr_assert_eq(nb_load_idx(img, lab, &d), NB_ERROR);
    expect_kind(NB_ERR_CORRUPT, "truncated: expected 12 pixel bytes, got 5");

    /* a header cut short */
    write_bytes(img, "stub", b, 6);
    cr_assert_eq(nb_load_idx(img, lab, &d), NB_ERROR);
    expect_kind(NB_ERR_CORRUPT, "truncated: header has 6 of its 16 bytes");

    /* a labels file given as the images */
    cr_assert_eq(nb_load_idx(lab, lab, &d), NB_ERROR);
    expect_kind(NB_ERR_CORRUPT, "bad magic 0x00000801");

    /* bytes after the declared data */
    k = idx_header(b, 0x801, 1, (unsigned[]){3});
    memset(b + k, 1, 5);
    write_bytes(lab, "long-labels", b, k + 5);
    write_bytes(img, "img2", (unsigned char[16 + 12]){0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2},
                16 + 12);
    cr_assert_eq(nb_load_idx(img, lab, &d), NB_ERROR);
    expect_kind(NB_ERR_CORRUPT, "trailing data");
}

Test(error_kinds, a_malformed_csv_file_is_corrupt) {
    char p[PATH_MAX];
    nb_dataset d;
    cr_assert_eq(nb_load_csv(write_text(p, "ragged.csv", "1,2,0\n3,4\n"), -1, false, &d), NB_ERROR);
    expect_kind(NB_ERR_CORRUPT, "ragged.csv:2: 2 fields, expected 3 as on line 1");
    cr_assert_eq(nb_load_csv(write_text(p, "word.csv", "1,two,0\n"), -1, false, &d), NB_ERROR);
    expect_kind(NB_ERR_CORRUPT, "field 2 'two' is not a number");
    cr_assert_eq(nb_load_csv(write_bytes(p, "nul.csv", "1,2\n3\0,4\n", 9), -1, false, &d), NB_ERROR);
    expect_kind(NB_ERR_CORRUPT, "NUL byte");
    cr_assert_eq(nb_load_csv(write_text(p, "empty.csv", ""), -1, false, &d), NB_ERROR);
    expect_kind(NB_ERR_CORRUPT, "no data lines");
}

/* ---- non-finite values ---- */

Test(error_kinds, a_nan_or_infinity_in_a_csv_field_is_nonfinite) {
    char p[PATH_MAX];
    nb_dataset d;
    cr_assert_eq(nb_load_csv(write_text(p, "nan.csv", "1,2\nnan,3\n"), -1, false, &d), NB_ERROR);
    expect_kind(NB_ERR_NONFINITE, "nan.csv:2: field 1 'nan' is not a finite float");
    cr_assert_eq(nb_load_csv(write_text(p, "big.csv", "1e39,2\n"), -1, false, &d), NB_ERROR);
    expect_kind(NB_ERR_NONFINITE, "field 1 '1e39' is not a finite float");
}

Test(error_kinds, the_finiteness_check_gives_the_graph_a_nonfinite_error) {
    nb_graph *g = nb_graph_new();
    nb_node *a = nb_input(g, "a", 1, (int[]){2}), *b = nb_input(g, "b", 1, (int[]){2});
    nb_node *q = nb_div(g, a, b);
    nb_node *loss = nb_sum(g, q);
    t_ok(g);
    float one[2] = {1, 1}, zero[2] = {1, 0};
    nb_feed(g, a, one, 2);
    nb_feed(g, b, zero, 2);
    /* unchecked, the infinity passes */
    cr_assert_eq(nb_forward(g, NB_INFERENCE), NB_OK, "%s", nb_graph_error(g));
    cr_assert_eq(nb_graph_error_kind(g), NB_ERR_NONE);
    nb_graph_check_finite(g, true);
    cr_assert_eq(nb_forward(g, NB_INFERENCE), NB_ERROR);
    expect_graph_kind(g, NB_ERR_NONFINITE, "forward: non-finite value inf in node 'div#2'");
    (void)loss;
    nb_graph_free(g);
}

/* ---- invalid arguments ---- */

Test(error_kinds, a_bad_argument_is_invalid_argument) {
    nb_tensor *w = t_tensor("w", 1, (int[]){4}, -1, 1, 1);
    nb_optimizer_config c = nb_optimizer_defaults(NB_SGD);
    c.lr = -0.5f;
    cr_assert_null(nb_optimizer_new(&c, 1, &w));
    expect_kind(NB_ERR_INVALID_ARGUMENT, "lr -0.5 must be positive and finite");
    c.lr = NAN; /* a NaN setting is a bad argument, not a non-finite value */
    cr_assert_null(nb_optimizer_new(&c, 1, &w));
    expect_kind(NB_ERR_INVALID_ARGUMENT, "must be positive and finite");

    cr_assert_null(nb_tensor_new(NB_MAX_RANK + 1, (int[]){1, 1, 1, 1, 1}));
    expect_kind(NB_ERR_INVALID_ARGUMENT, "tensor: rank 5 outside [0,4]");

    cr_assert_null(nb_schedule_new(NULL));
    expect_kind(NB_ERR_INVALID_ARGUMENT, "schedule: config is NULL");

    nb_dataset src = {0}, out;
    cr_assert_eq(nb_dataset_slice(&src, 0, 1, &out), NB_ERROR);
    expect_kind(NB_ERR_INVALID_ARGUMENT, "slice: source dataset is empty");
    nb_tensor_free(w);
}

Test(error_kinds, a_bad_shape_is_a_graph_error_of_kind_invalid_argument) {
    nb_tensor *w = t_tensor("w", 2, (int[]){300, 100}, -1, 1, 1);
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", 2, (int[]){32, 784});
    cr_assert_null(nb_matmul(g, x, nb_param(g, w)));
    expect_graph_kind(g, NB_ERR_INVALID_ARGUMENT, "matmul: inner dimensions differ");
    /* the first error wins, its kind too */
    cr_assert_eq(nb__fail_kind(g, NB_ERR_OUT_OF_MEMORY, "later: out of memory"), NB_ERROR);
    expect_graph_kind(g, NB_ERR_INVALID_ARGUMENT, "matmul: inner dimensions differ");
    /* the graph's error is its own: the thread's last error is untouched */
    cr_assert_eq(nb_last_error_kind(), NB_ERR_NONE);
    nb_graph_free(g);

    cr_assert_eq(nb_graph_error_kind(NULL), NB_ERR_INVALID_ARGUMENT);
    g = nb_graph_new();
    cr_assert_eq(nb_graph_fail(g, "builder: %d units", -3), NB_ERROR);
    expect_graph_kind(g, NB_ERR_INVALID_ARGUMENT, "builder: -3 units");
    nb_graph_free(g);
    nb_tensor_free(w);
}

/* ---- beyond nabla's limits ---- */

Test(error_kinds, more_than_2_to_the_40_elements_is_unsupported) {
    cr_assert_null(nb_tensor_new(3, (int[]){1 << 20, 1 << 20, 2}));
    expect_kind(NB_ERR_UNSUPPORTED, "has more than 2^40 elements");
    nb_graph *g = nb_graph_new();
    cr_assert_null(nb_input(g, "x", 3, (int[]){1 << 20, 1 << 20, 2}));
    expect_graph_kind(g, NB_ERR_UNSUPPORTED, "more than 2^40 elements");
    nb_graph_free(g);
}

/* ---- out of memory ---- */

/* Not under ASan: it reserves terabytes of address space, and a failed
 * allocation ends the process (csv-oom-child below covers that build). */
#if !defined(__SANITIZE_ADDRESS__)
/* VmSize from /proc/self/status, in bytes; 0 if unknown. */
static unsigned long long mapped_bytes(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %llu kB", &kb) == 1) break;
    fclose(f);
    return kb * 1024;
}

Test(error_kinds, an_allocation_beyond_the_address_space_is_out_of_memory) {
    /* made before the cap: the graph, its runtime and its threads */
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", 2, (int[]){1 << 14, 1 << 14}); /* 1 GB a buffer */
    cr_assert_not_null(nb_relu(g, x));
    struct rlimit old, cap;
    cr_assert_eq(getrlimit(RLIMIT_AS, &old), 0);
    unsigned long long now = mapped_bytes();
    cr_assert_gt(now, 0);
    cap = old;
    cap.rlim_cur = now + ((rlim_t)256 << 20);
    if (old.rlim_max != RLIM_INFINITY && cap.rlim_cur > old.rlim_max) cap.rlim_cur = old.rlim_max;
    cr_assert_eq(setrlimit(RLIMIT_AS, &cap), 0);
    nb_tensor *t = nb_tensor_new(2, (int[]){1 << 15, 1 << 15}); /* 4 GB */
    nb_error_kind tensor_kind = nb_last_error_kind();
    char msg[256];
    snprintf(msg, sizeof msg, "%s", nb_last_error());
    nb_status st = nb_forward(g, NB_INFERENCE); /* plans a 2 GB arena first */
    cr_assert_eq(setrlimit(RLIMIT_AS, &old), 0);
    cr_assert_null(t);
    cr_assert_eq(tensor_kind, NB_ERR_OUT_OF_MEMORY, "kind %s: %s", nb_error_kind_name(tensor_kind), msg);
    cr_assert(strstr(msg, "tensor: out of memory for 1073741824 floats"), "%s", msg);
    cr_assert_eq(st, NB_ERROR);
    expect_graph_kind(g, NB_ERR_OUT_OF_MEMORY, "graph: out of memory planning");
    nb_graph_free(g);
}
#endif

/* Runs csv-oom-child (built beside this test executable) on path with its
 * address space capped 32 MB above what it has mapped; returns its exit
 * status, its report in report. Under AddressSanitizer the child's failed
 * allocations return NULL, as glibc's do. */
static int run_oom_child(const char *path, char *report, size_t len) {
    char self[PATH_MAX], child[PATH_MAX + 32], out[PATH_MAX];
    ssize_t l = readlink("/proc/self/exe", self, sizeof self - 1);
    cr_assert_gt(l, 0);
    self[l] = '\0';
    char *slash = strrchr(self, '/');
    cr_assert(slash);
    *slash = '\0';
    snprintf(child, sizeof child, "%s/csv-oom-child", self);
    cr_assert_eq(access(child, X_OK), 0, "%s is missing (built by tests/meson.build)", child);
    tpath(out, "child.txt");
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        const char *asan = getenv("ASAN_OPTIONS");
        char opts[1024];
        snprintf(opts, sizeof opts, "%s%sallocator_may_return_null=1", asan ? asan : "",
                 asan && *asan ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1);
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0) _exit(90);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(child, child, path, "32", (char *)NULL);
        _exit(91);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status), "csv-oom-child died (status 0x%x)", status);
    FILE *f = fopen(out, "r");
    cr_assert(f);
    size_t got = fread(report, 1, len - 1, f);
    report[got] = '\0';
    fclose(f);
    return WEXITSTATUS(status);
}

Test(error_kinds, a_line_too_long_for_memory_is_out_of_memory_not_corrupt) {
    /* 256 MB without a newline, read with 32 MB to spare: getline fails
     * with ENOMEM in a capped child (this runs under ASan too) */
    char p[PATH_MAX], report[1024];
    write_text(p, "long.csv", "1,2\n");
    cr_assert_eq(truncate(p, 4 + ((off_t)256 << 20)), 0);
    int code = run_oom_child(p, report, sizeof report);
    cr_assert_eq(code, 0, "csv-oom-child exited %d: %s", code, report);
    cr_assert(strstr(report, "long.csv:2: out of memory"), "report: %s", report);
    cr_assert(strstr(report, "kind: out_of_memory\n"), "report: %s", report);
}

/* ---- the last error is overwritten; a graph's kind follows it out ---- */

Test(error_kinds, the_next_failure_overwrites_the_kind_and_a_success_keeps_it) {
    char p[PATH_MAX];
    nb_dataset d;
    cr_assert_eq(nb_load_csv(tpath(p, "missing.csv"), -1, false, &d), NB_ERROR);
    expect_kind(NB_ERR_IO, "cannot open");
    cr_assert_null(nb_tensor_new(1, (int[]){0}));
    expect_kind(NB_ERR_INVALID_ARGUMENT, "tensor: dimension 0 is 0");
    /* a success changes neither the message nor the kind */
    nb_tensor *t = nb_tensor_new(1, (int[]){3});
    cr_assert_not_null(t);
    expect_kind(NB_ERR_INVALID_ARGUMENT, "tensor: dimension 0 is 0");
    nb_tensor_free(t);
    cr_assert_eq(nb_load_csv(write_text(p, "inf.csv", "inf,1\n"), -1, false, &d), NB_ERROR);
    expect_kind(NB_ERR_NONFINITE, "not a finite float");
    /* the old form still sets a kind: invalid argument */
    nb__set_last_error("layer: units is %d", 0);
    expect_kind(NB_ERR_INVALID_ARGUMENT, "layer: units is 0");
}

Test(error_kinds, copying_a_graph_error_out_keeps_its_kind) {
    nb_graph *g = nb_graph_new();
    nb_node *x = nb_input(g, "x", 1, (int[]){2});
    nb_node *y = nb_div(g, x, x);
    t_ok(g);
    nb_graph_check_finite(g, true);
    float zeros[2] = {0, 0};
    nb_feed(g, x, zeros, 2); /* 0/0 */
    cr_assert_eq(nb_forward(g, NB_TRAINING), NB_ERROR);
    nb__set_error_from_graph(g, "fit: %s", nb_graph_error(g));
    expect_kind(NB_ERR_NONFINITE, "fit: forward: non-finite value"); /* nan or -nan */
    (void)y;
    nb_graph_free(g);

    /* a graph in no error has no kind to give: the caller's failure is
     * then a bad argument */
    g = nb_graph_new();
    nb__set_error_from_graph(g, "evaluate: %s", "the model has no output");
    expect_kind(NB_ERR_INVALID_ARGUMENT, "evaluate: the model has no output");
    nb_graph_free(g);
    nb__set_error_from_graph(NULL, "evaluate: %s", nb_graph_error(NULL));
    expect_kind(NB_ERR_INVALID_ARGUMENT, "evaluate: graph is NULL");
}

/* Models, their files and training (nn/, train/). */
Test(error_kinds, model_files_and_training_say_their_kinds) {
    char path[128], cut[128];
    snprintf(path, sizeof path, "%s/m.safetensors", tmpdir);
    snprintf(cut, sizeof cut, "%s/cut.safetensors", tmpdir);
    cr_assert_null(nb_model_load(path));
    cr_assert_eq(nb_last_error_kind(), NB_ERR_IO, "missing: %s", nb_last_error());
    nb_model *m = nb_model_new(1, (int[]){3}, 1);
    nb_model_add(m, &(nb_layer_spec){.kind = NB_LAYER_DENSE, .units = 2});
    cr_assert_eq(nb_model_save(m, path), NB_OK, "%s", nb_last_error());
    /* the same file without its last bytes */
    FILE *f = fopen(path, "rb");
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    f = fopen(cut, "wb");
    fwrite(buf, 1, n - 4, f);
    fclose(f);
    cr_assert_null(nb_model_load(cut));
    cr_assert_eq(nb_last_error_kind(), NB_ERR_CORRUPT, "truncated: %s", nb_last_error());
    /* a file naming a class nobody registered */
    char *at = memmem(buf, n, "\\\"Dense\\\"", 9);
    cr_assert_not_null(at);
    memcpy(at, "\\\"Dunce\\\"", 9);
    f = fopen(cut, "wb");
    fwrite(buf, 1, n, f);
    fclose(f);
    cr_assert_null(nb_model_load(cut));
    cr_assert_eq(nb_last_error_kind(), NB_ERR_UNSUPPORTED, "unregistered: %s", nb_last_error());
    /* weights for another model: the caller's mismatch */
    nb_model *other = nb_model_new(1, (int[]){4}, 1);
    nb_model_add(other, &(nb_layer_spec){.kind = NB_LAYER_DENSE, .units = 2});
    cr_assert_eq(nb_model_load_weights(other, path), NB_ERROR);
    cr_assert_eq(nb_last_error_kind(), NB_ERR_INVALID_ARGUMENT, "mismatch: %s", nb_last_error());
    /* a functional model's sticky error keeps its kind */
    nb_model *fm = nb_model_functional(1);
    nb_model_input(fm, "x", 1, (int[]){0});
    cr_assert_eq(nb_model_error_kind(fm), NB_ERR_INVALID_ARGUMENT, "%s", nb_model_error(fm));
    cr_assert_eq(nb_model_error_kind(m), NB_ERR_NONE);
    /* a training that diverges */
    static float x[64], y[64];
    for (int i = 0; i < 64; i++) x[i] = (float)(i % 3), y[i] = 100.0f * (float)i;
    nb_dataset d = {.x = x, .y = y, .n = 64, .dim = 1, .rows = 1, .cols = 1};
    nb_model *r = nb_model_new(1, (int[]){1}, 1);
    nb_model_add(r, &(nb_layer_spec){.kind = NB_LAYER_DENSE, .units = 1});
    nb_fit_opts o = nb_fit_defaults();
    o.verbose = 0, o.epochs = 50, o.optimizer.lr = 10, o.loss.kind = NB_LOSS_MSE;
    nb_history h;
    cr_assert_eq(nb_fit(r, &d, &o, &h), NB_ERROR);
    cr_assert(h.diverged, "%s", nb_last_error());
    cr_assert_eq(nb_last_error_kind(), NB_ERR_NONFINITE, "diverged: %s", nb_last_error());
    nb_history_free(&h);
    nb_model_free(r), nb_model_free(fm), nb_model_free(other), nb_model_free(m);
}
