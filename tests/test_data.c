/* Datasets: IDX and CSV loading (good files and each kind of bad one),
 * slices, scaling, standardization and shuffling.
 *
 * IDX and CSV files are written by the tests themselves into a fresh folder
 * under /tmp (gzip ones by a small writer below), so every byte the
 * loader sees is known here. One test reads the real Fashion-MNIST that
 * scripts/setup.sh installs.
 */
#define _GNU_SOURCE  // nftw
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nabla/nabla.h"

/* ---- a temporary folder per test ---- */

static char tmpdir[64];

static void make_tmpdir(void) {
    strcpy(tmpdir, "/tmp/nabla-data-XXXXXX");
    cr_assert(mkdtemp(tmpdir), "mkdtemp failed");
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

/* Everything under it, folders too (a compiled locale is one). */
static void remove_tmpdir(void) { nftw(tmpdir, remove_one, 16, FTW_DEPTH | FTW_PHYS); }

TestSuite(data, .init = make_tmpdir, .fini = remove_tmpdir);

/* tmpdir/name, in a caller's buffer. */
static const char *tpath(char *buf, const char *name) {
    snprintf(buf, PATH_MAX, "%s/%s", tmpdir, name);
    return buf;
}

static void expect_msg(const char *part) {
    const char *m = nb_last_error();
    cr_assert(strstr(m, part), "message '%s' lacks '%s'", m, part);
}

static void expect_empty(const nb_dataset *d) {
    cr_assert(!d->x && !d->y && d->n == 0 && d->dim == 0 && d->rows == 0 && d->cols == 0 &&
              d->n_classes == 0, "output not left zeroed");
}

/* ---- writing IDX files ---- */

/* CRC-32 (IEEE, reflected 0xEDB88320), bit by bit, for the gzip trailer. */
static uint32_t crc32_of(const unsigned char *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return c ^ 0xffffffffu;
}

static void put_le(unsigned char *p, uint32_t v, int bytes) {
    for (int i = 0; i < bytes; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* Writes bytes as they are, or as a gzip file (RFC 1952) whose deflate
 * stream is made of stored blocks (RFC 1951 §3.2.4). Written here rather
 * than with zlib's gzopen "wb", so the files the loader reads do not come
 * from the library that reads them (and the test needs no zlib link): the
 * gzip parts are exact, so a cut or a spoiled checksum lands where meant. */
static void write_file(const char *path, bool gz, const void *bytes, size_t len) {
    FILE *f = fopen(path, "wb");
    cr_assert(f, "fopen %s", path);
    if (!gz) {
        if (len) cr_assert_eq(fwrite(bytes, 1, len, f), len);
    } else {
        const unsigned char head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
        cr_assert_eq(fwrite(head, 1, 10, f), 10u);
        const unsigned char *p = bytes;
        size_t at = 0;
        do {
            size_t n = len - at > 65535 ? 65535 : len - at;
            unsigned char b[5];
            b[0] = at + n == len;  // BFINAL, BTYPE 00 (stored), padded to the byte
            put_le(b + 1, (uint32_t)n, 2);
            put_le(b + 3, (uint32_t)n ^ 0xffffu, 2);
            cr_assert_eq(fwrite(b, 1, 5, f), 5u);
            if (n) cr_assert_eq(fwrite(p + at, 1, n, f), n);
            at += n;
        } while (at < len);
        unsigned char tail[8];
        put_le(tail, len ? crc32_of(p, len) : 0, 4);
        put_le(tail + 4, (uint32_t)len, 4);
        cr_assert_eq(fwrite(tail, 1, 8, f), 8u);
    }
    cr_assert_eq(fclose(f), 0);
}

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

/* Writes an IDX file: magic, rank dims, then len bytes of data (which may be
 * fewer or more than the dims declare, to make bad files). */
static void write_idx(const char *path, bool gz, uint32_t magic, int rank, const uint32_t *dims,
                      const unsigned char *data, size_t len) {
    size_t head = 4 + 4 * (size_t)rank;
    unsigned char *buf = malloc(head + len + 1);
    cr_assert(buf);
    put_be32(buf, magic);
    for (int i = 0; i < rank; i++) put_be32(buf + 4 + 4 * i, dims[i]);
    if (len) memcpy(buf + head, data, len);
    write_file(path, gz, buf, head + len);
    free(buf);
}

/* The small set most tests use: 3 images of 2 x 3 pixels, labels 0, 2, 1. */
enum { SN = 3, SR = 2, SC = 3 };
static const unsigned char small_labels[SN] = {0, 2, 1};

static unsigned char small_pixel(int i, int shift) { return (unsigned char)(i * 37 + 11 + shift); }

static void write_small_images(const char *path, bool gz, int shift) {
    unsigned char px[SN * SR * SC];
    for (int i = 0; i < SN * SR * SC; i++) px[i] = small_pixel(i, shift);
    write_idx(path, gz, 0x803, 3, (uint32_t[]){SN, SR, SC}, px, sizeof px);
}

static void write_small_labels(const char *path, bool gz) {
    write_idx(path, gz, 0x801, 1, (uint32_t[]){SN}, small_labels, SN);
}

static void check_small(const nb_dataset *d, int shift, int classes) {
    cr_assert_eq(d->n, SN);
    cr_assert_eq(d->dim, SR * SC);
    cr_assert_eq(d->rows, SR);
    cr_assert_eq(d->cols, SC);
    cr_assert_eq(d->n_classes, classes);
    for (int i = 0; i < SN * SR * SC; i++)
        cr_assert_eq(d->x[i], (float)small_pixel(i, shift), "pixel %d: %g", i, d->x[i]);
    for (int i = 0; i < SN; i++) cr_assert_eq(d->y[i], (float)small_labels[i]);
}

/* ---- IDX: good files ---- */

Test(data, idx_loads_plain_files) {
    char pi[PATH_MAX], pl[PATH_MAX];
    write_small_images(tpath(pi, "img"), false, 0);
    write_small_labels(tpath(pl, "lab"), false);
    nb_dataset d;
    cr_assert_eq(nb_load_idx(pi, pl, &d), NB_OK, "%s", nb_last_error());
    check_small(&d, 0, 3);
    nb_dataset_free(&d);
    expect_empty(&d);
}

Test(data, idx_loads_gzip_files) {
    char pi[PATH_MAX], pl[PATH_MAX];
    write_small_images(tpath(pi, "img.gz"), true, 0);
    write_small_labels(tpath(pl, "lab.gz"), true);
    nb_dataset d;
    cr_assert_eq(nb_load_idx(pi, pl, &d), NB_OK, "%s", nb_last_error());
    check_small(&d, 0, 3);
    nb_dataset_free(&d);
}

Test(data, idx_tells_gzip_from_plain_by_content_not_name) {
    char pi[PATH_MAX], pl[PATH_MAX];
    write_small_images(tpath(pi, "img-plain.gz"), false, 5);  // plain, named .gz
    write_small_labels(tpath(pl, "lab-gzip"), true);          // gzip, no .gz
    nb_dataset d;
    cr_assert_eq(nb_load_idx(pi, pl, &d), NB_OK, "%s", nb_last_error());
    check_small(&d, 5, 3);
    nb_dataset_free(&d);
}

/* ---- IDX: bad files, each named in its message ---- */

/* Loads with one file bad and checks the message and the empty output. */
static void expect_idx_error(const char *pi, const char *pl, const char *named, const char *what) {
    nb_dataset d = {.n = 7, .dim = 7};
    cr_assert_eq(nb_load_idx(pi, pl, &d), NB_ERROR);
    expect_msg(named);
    expect_msg(what);
    expect_empty(&d);
}

Test(data, idx_rejects_bad_magic_images) {
    char pi[PATH_MAX], pl[PATH_MAX];
    // A label file given as the images: magic 0x801.
    write_small_labels(tpath(pi, "img"), false);
    write_small_labels(tpath(pl, "lab"), false);
    expect_idx_error(pi, pl, pi, "bad magic 0x00000801, expected 0x00000803");
}

Test(data, idx_rejects_bad_magic_labels) {
    char pi[PATH_MAX], pl[PATH_MAX];
    write_small_images(tpath(pi, "img.gz"), true, 0);
    write_idx(tpath(pl, "lab.gz"), true, 0x901, 1, (uint32_t[]){SN}, small_labels, SN);
    expect_idx_error(pi, pl, pl, "bad magic 0x00000901, expected 0x00000801");
}

Test(data, idx_rejects_truncated_images_plain_and_gzip) {
    char pi[PATH_MAX], pg[PATH_MAX], pl[PATH_MAX];
    unsigned char px[10] = {0};
    write_idx(tpath(pi, "img"), false, 0x803, 3, (uint32_t[]){SN, SR, SC}, px, sizeof px);
    write_idx(tpath(pg, "img.gz"), true, 0x803, 3, (uint32_t[]){SN, SR, SC}, px, sizeof px);
    write_small_labels(tpath(pl, "lab"), false);
    expect_idx_error(pi, pl, pi, ": truncated: expected 18 pixel bytes, got 10");
    expect_idx_error(pg, pl, pg, ": truncated: expected 18 pixel bytes, got 10");
}

Test(data, idx_rejects_truncated_labels) {
    char pi[PATH_MAX], pl[PATH_MAX];
    write_small_images(tpath(pi, "img"), false, 0);
    write_idx(tpath(pl, "lab.gz"), true, 0x801, 1, (uint32_t[]){SN}, small_labels, 2);
    expect_idx_error(pi, pl, pl, ": truncated: expected 3 label bytes, got 2");
}

Test(data, idx_rejects_truncated_header) {
    char pi[PATH_MAX], pl[PATH_MAX];
    unsigned char head[10];
    put_be32(head, 0x803);
    put_be32(head + 4, SN);
    write_file(tpath(pi, "img"), false, head, sizeof head);  // rows, half of cols missing
    write_small_labels(tpath(pl, "lab"), false);
    expect_idx_error(pi, pl, pi, "truncated: header has 10 of its 16 bytes");
    write_file(pi, false, head, 2);
    expect_idx_error(pi, pl, pi, "truncated: 2 bytes, too short for an IDX header");
    write_file(pi, true, head, 0);  // an empty gzip stream
    expect_idx_error(pi, pl, pi, "truncated: 0 bytes");
}

Test(data, idx_rejects_a_cut_gzip_stream) {
    char pi[PATH_MAX], pl[PATH_MAX];
    // The stored blocks hold the pixels as they are: cutting the file in
    // half cuts the data.
    enum { N = 50, R = 20, C = 20 };
    unsigned char *px = malloc(N * R * C);
    cr_assert(px);
    uint32_t s = 12345;
    for (int i = 0; i < N * R * C; i++) px[i] = (unsigned char)((s = s * 1103515245u + 12345u) >> 24);
    unsigned char lab[N] = {0};
    write_idx(tpath(pi, "img.gz"), true, 0x803, 3, (uint32_t[]){N, R, C}, px, N * R * C);
    write_idx(tpath(pl, "lab"), false, 0x801, 1, (uint32_t[]){N}, lab, N);
    free(px);
    struct stat st;
    cr_assert_eq(stat(pi, &st), 0);
    cr_assert_eq(truncate(pi, st.st_size / 2), 0);
    expect_idx_error(pi, pl, pi, ": truncated: expected 20000 pixel bytes, got ");
    expect_msg("unexpected end of file");  // zlib's word for the cut stream
}

Test(data, idx_rejects_a_gzip_stream_with_a_bad_checksum) {
    char pi[PATH_MAX], pl[PATH_MAX];
    write_small_images(tpath(pi, "img.gz"), true, 0);
    write_small_labels(tpath(pl, "lab"), false);
    // The gzip trailer is CRC-32 then length, 4 bytes each: spoil the CRC.
    FILE *f = fopen(pi, "r+b");
    cr_assert(f);
    cr_assert_eq(fseek(f, -8, SEEK_END), 0);
    int c = fgetc(f);
    cr_assert_eq(fseek(f, -8, SEEK_END), 0);
    fputc(c ^ 0xff, f);
    fclose(f);
    expect_idx_error(pi, pl, pi, "incorrect data check");
}

Test(data, idx_rejects_trailing_bytes) {
    char pi[PATH_MAX], pl[PATH_MAX], pg[PATH_MAX];
    unsigned char px[SN * SR * SC + 5] = {0};
    write_idx(tpath(pi, "img"), false, 0x803, 3, (uint32_t[]){SN, SR, SC}, px, sizeof px);
    write_small_labels(tpath(pl, "lab"), false);
    expect_idx_error(pi, pl, pi, "trailing data: 5 bytes after the 18 declared pixel bytes");
    unsigned char lab[SN + 1] = {0, 1, 2, 3};
    write_small_images(pi, false, 0);
    write_idx(tpath(pg, "lab.gz"), true, 0x801, 1, (uint32_t[]){SN}, lab, sizeof lab);
    expect_idx_error(pi, pg, pg, "trailing data: the gzip stream holds more than the 3 "
                             "declared label bytes");
}

Test(data, idx_rejects_count_mismatch) {
    char pi[PATH_MAX], pl[PATH_MAX];
    write_small_images(tpath(pi, "img"), false, 0);
    write_idx(tpath(pl, "lab"), false, 0x801, 1, (uint32_t[]){2}, small_labels, 2);
    char want[3 * PATH_MAX];
    snprintf(want, sizeof want, "%s has 3 images but %s has 2 labels", pi, pl);
    expect_idx_error(pi, pl, pi, want);
}

Test(data, idx_rejects_nonexistent_and_folder_paths) {
    char pi[PATH_MAX], pl[PATH_MAX];
    write_small_labels(tpath(pl, "lab"), false);
    expect_idx_error(tpath(pi, "no-such-file"), pl, pi, "cannot open: No such file");
    write_small_images(tpath(pi, "img"), false, 0);
    expect_idx_error(pi, tmpdir, tmpdir, "is a folder");
}

Test(data, idx_rejects_zero_dims) {
    char pi[PATH_MAX], pl[PATH_MAX];
    write_small_labels(tpath(pl, "lab"), false);
    write_idx(tpath(pi, "img"), false, 0x803, 3, (uint32_t[]){0, SR, SC}, NULL, 0);
    expect_idx_error(pi, pl, pi, "dimension 0 is 0");
    write_idx(pi, true, 0x803, 3, (uint32_t[]){SN, SR, 0}, NULL, 0);
    expect_idx_error(pi, pl, pi, "dimension 2 is 0");
    write_small_images(pi, false, 0);
    write_idx(pl, false, 0x801, 1, (uint32_t[]){0}, NULL, 0);
    expect_idx_error(pi, pl, pl, "dimension 0 is 0");
}

Test(data, idx_rejects_sizes_that_overflow) {
    char pi[PATH_MAX], pl[PATH_MAX];
    write_small_labels(tpath(pl, "lab"), false);
    // 2^31-1 cubed overflows 64 bits; a dimension of 2^31 is not an int.
    write_idx(tpath(pi, "img"), false, 0x803, 3,
              (uint32_t[]){0x7fffffff, 0x7fffffff, 0x7fffffff}, NULL, 0);
    expect_idx_error(pi, pl, pi, "is too large");
    write_idx(pi, false, 0x803, 3, (uint32_t[]){SN, 0x80000000u, 1}, NULL, 0);
    expect_idx_error(pi, pl, pi, "dimension 1 is 2147483648");
}

Test(data, idx_rejects_label_255) {
    char pi[PATH_MAX], pl[PATH_MAX];
    write_small_images(tpath(pi, "img"), false, 0);
    write_idx(tpath(pl, "lab"), false, 0x801, 1, (uint32_t[]){SN}, (unsigned char[]){1, 255, 0},
              SN);
    expect_idx_error(pi, pl, pl, "label 255 of example 1 is above 254");
}

Test(data, idx_rejects_null_arguments) {
    char pi[PATH_MAX];
    nb_dataset d;
    cr_assert_eq(nb_load_idx(tpath(pi, "img"), NULL, &d), NB_ERROR);
    expect_msg("labels path is NULL");
    expect_empty(&d);
    cr_assert_eq(nb_load_idx(NULL, pi, &d), NB_ERROR);
    expect_msg("images path is NULL");
    cr_assert_eq(nb_load_idx(pi, pi, NULL), NB_ERROR);
    expect_msg("out is NULL");
}

/* ---- the MNIST folder ---- */

static void write_mnist_dir(bool gz) {
    char p[PATH_MAX];
    const char *s = gz ? ".gz" : "";
    char name[64];
    snprintf(name, sizeof name, "train-images-idx3-ubyte%s", s);
    write_small_images(tpath(p, name), gz, 0);
    snprintf(name, sizeof name, "train-labels-idx1-ubyte%s", s);
    write_small_labels(tpath(p, name), gz);
    snprintf(name, sizeof name, "t10k-images-idx3-ubyte%s", s);
    unsigned char px[2 * SR * SC];
    for (int i = 0; i < 2 * SR * SC; i++) px[i] = (unsigned char)(200 + i);
    write_idx(tpath(p, name), gz, 0x803, 3, (uint32_t[]){2, SR, SC}, px, sizeof px);
    snprintf(name, sizeof name, "t10k-labels-idx1-ubyte%s", s);
    write_idx(tpath(p, name), gz, 0x801, 1, (uint32_t[]){2}, (unsigned char[]){3, 1}, 2);
}

Test(data, mnist_dir_loads_the_four_files) {
    write_mnist_dir(true);
    nb_dataset tr, te;
    cr_assert_eq(nb_load_mnist_dir(tmpdir, &tr, &te), NB_OK, "%s", nb_last_error());
    cr_assert_eq(tr.n, SN);
    cr_assert_eq(te.n, 2);
    cr_assert_eq(te.rows, SR);
    cr_assert_eq(te.cols, SC);
    for (int i = 0; i < 2 * SR * SC; i++) cr_assert_eq(te.x[i], (float)(200 + i));
    cr_assert_eq(te.y[0], 3.0f);
    cr_assert_eq(te.y[1], 1.0f);
    // Test labels reach 3, train labels only 2: both splits get 4 classes.
    cr_assert_eq(tr.n_classes, 4);
    cr_assert_eq(te.n_classes, 4);
    for (int i = 0; i < SN * SR * SC; i++) cr_assert_eq(tr.x[i], (float)small_pixel(i, 0));
    nb_dataset_free(&tr);
    nb_dataset_free(&te);
}

Test(data, mnist_dir_prefers_gz_then_takes_plain) {
    write_mnist_dir(false);
    char p[PATH_MAX];
    // A .gz next to the plain file, with other pixels: the .gz wins.
    write_small_images(tpath(p, "train-images-idx3-ubyte.gz"), true, 9);
    nb_dataset tr, te;
    char dir_slash[PATH_MAX];
    snprintf(dir_slash, sizeof dir_slash, "%s/", tmpdir);  // a trailing slash is fine
    cr_assert_eq(nb_load_mnist_dir(dir_slash, &tr, &te), NB_OK, "%s", nb_last_error());
    check_small(&tr, 9, 4);  // the test split's label 3 counts too
    cr_assert_eq(te.n, 2);
    nb_dataset_free(&tr);
    nb_dataset_free(&te);
}

Test(data, mnist_dir_names_the_folder_and_the_missing_file) {
    write_mnist_dir(true);
    char p[PATH_MAX];
    cr_assert_eq(unlink(tpath(p, "t10k-labels-idx1-ubyte.gz")), 0);
    nb_dataset tr = {.n = 5}, te = {.n = 5};
    cr_assert_eq(nb_load_mnist_dir(tmpdir, &tr, &te), NB_ERROR);
    expect_msg(tmpdir);
    expect_msg("t10k-labels-idx1-ubyte");
    expect_msg("NABLA_DATA");
    expect_msg("--data");
    expect_empty(&tr);
    expect_empty(&te);
}

Test(data, mnist_dir_error_in_the_test_split_frees_the_train_split) {
    write_mnist_dir(false);
    char p[PATH_MAX];
    write_small_labels(tpath(p, "t10k-images-idx3-ubyte"), false);  // wrong magic
    nb_dataset tr, te;
    cr_assert_eq(nb_load_mnist_dir(tmpdir, &tr, &te), NB_ERROR);
    expect_msg(p);
    expect_msg("bad magic");
    expect_empty(&tr);  // LSan reports it if the train split leaked
    expect_empty(&te);
}

Test(data, mnist_dir_rejects_splits_of_different_image_sizes) {
    write_mnist_dir(false);
    char p[PATH_MAX];
    unsigned char px[2 * 4 * 4] = {0};
    write_idx(tpath(p, "t10k-images-idx3-ubyte"), false, 0x803, 3, (uint32_t[]){2, 4, 4}, px,
              sizeof px);
    nb_dataset tr, te;
    cr_assert_eq(nb_load_mnist_dir(tmpdir, &tr, &te), NB_ERROR);
    expect_msg("has 2 x 3 images but");
    expect_empty(&tr);
    expect_empty(&te);
}

Test(data, default_dir_follows_nabla_data) {
    cr_assert_eq(unsetenv("NABLA_DATA"), 0);
    cr_assert_str_eq(nb_default_data_dir(), "/usr/share/datasets/fashion-mnist");
    cr_assert_eq(setenv("NABLA_DATA", "", 1), 0);
    cr_assert_str_eq(nb_default_data_dir(), "/usr/share/datasets/fashion-mnist");
    cr_assert_eq(setenv("NABLA_DATA", tmpdir, 1), 0);
    cr_assert_str_eq(nb_default_data_dir(), tmpdir);
    // And a NULL folder means that one.
    write_mnist_dir(true);
    nb_dataset tr, te;
    cr_assert_eq(nb_load_mnist_dir(NULL, &tr, &te), NB_OK, "%s", nb_last_error());
    check_small(&tr, 0, 4);
    nb_dataset_free(&tr);
    nb_dataset_free(&te);
}

/* The real data, as Debian's dataset-fashion-mnist installs it. */
Test(data, loads_the_real_fashion_mnist) {
    const char *dir = "/usr/share/datasets/fashion-mnist";
    struct stat st;
    cr_assert(stat(dir, &st) == 0, "%s is missing: run scripts/setup.sh", dir);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    nb_dataset tr, te;
    cr_assert_eq(nb_load_mnist_dir(dir, &tr, &te), NB_OK, "%s", nb_last_error());
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_log_info("Fashion-MNIST loaded in %.2f s",
                (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    cr_assert_eq(tr.n, 60000);
    cr_assert_eq(te.n, 10000);
    cr_assert_eq(tr.rows, 28);
    cr_assert_eq(tr.cols, 28);
    cr_assert_eq(tr.dim, 784);
    cr_assert_eq(te.dim, 784);
    cr_assert_eq(tr.n_classes, 10);
    cr_assert_eq(te.n_classes, 10);
    const nb_dataset *sets[2] = {&tr, &te};
    for (int s = 0; s < 2; s++) {
        const nb_dataset *d = sets[s];
        int count[10] = {0};
        for (int i = 0; i < d->n; i++) {
            float v = d->y[i];
            cr_assert(v >= 0 && v <= 9 && v == floorf(v), "label %g", v);
            count[(int)v]++;
        }
        for (int c = 0; c < 10; c++)
            cr_assert_eq(count[c], d->n / 10, "split %d class %d: %d examples", s, c, count[c]);
        float lo = 255, hi = 0;
        size_t total = (size_t)d->n * 784;
        for (size_t i = 0; i < total; i++) {
            float v = d->x[i];
            if (v < lo) lo = v;
            if (v > hi) hi = v;
        }
        cr_assert_eq(lo, 0.0f);
        cr_assert_eq(hi, 255.0f);
    }
    nb_dataset_free(&tr);
    nb_dataset_free(&te);
}

/* ---- CSV ---- */

static const char *write_text(char *buf, const char *name, const char *text) {
    tpath(buf, name);
    write_file(buf, false, text, strlen(text));
    return buf;
}

Test(data, csv_loads_header_crlf_spaces_and_trailing_empty_lines) {
    char p[PATH_MAX];
    write_text(p, "a.csv",
               "\xEF\xBB\xBF" "a, b ,label\r\n"
               " 1.5 , -2,0\r\n"
               "3e2,\t4 ,2 \r\n"
               "+0.25,1e-3,1\r\n"
               "\r\n  \n\n");
    nb_dataset d;
    cr_assert_eq(nb_load_csv(p, -1, true, &d), NB_OK, "%s", nb_last_error());
    cr_assert_eq(d.n, 3);
    cr_assert_eq(d.dim, 2);
    cr_assert_eq(d.rows, 1);
    cr_assert_eq(d.cols, 2);
    cr_assert_eq(d.n_classes, 3);
    const float x[] = {1.5f, -2, 300, 4, 0.25f, 1e-3f}, y[] = {0, 2, 1};
    for (int i = 0; i < 6; i++) cr_assert_eq(d.x[i], x[i], "x[%d] = %g", i, d.x[i]);
    for (int i = 0; i < 3; i++) cr_assert_eq(d.y[i], y[i]);
    nb_dataset_free(&d);
}

Test(data, csv_label_column_counts_from_either_end) {
    char p[PATH_MAX];
    write_text(p, "b.csv", "4,10,20\n7,30,40");  // no final newline
    nb_dataset a, b, c;
    cr_assert_eq(nb_load_csv(p, 0, false, &a), NB_OK, "%s", nb_last_error());
    cr_assert_eq(nb_load_csv(p, -3, false, &b), NB_OK, "%s", nb_last_error());
    cr_assert_eq(nb_load_csv(p, 1, false, &c), NB_OK, "%s", nb_last_error());
    cr_assert_eq(a.n, 2);
    cr_assert_eq(a.n_classes, 8);
    const float ax[] = {10, 20, 30, 40}, cx[] = {4, 20, 7, 40};
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(a.x[i], ax[i]);
        cr_assert_eq(b.x[i], ax[i]);
        cr_assert_eq(c.x[i], cx[i]);
    }
    cr_assert_eq(a.y[1], 7.0f);
    cr_assert_eq(b.y[1], 7.0f);
    cr_assert_eq(c.y[0], 10.0f);
    cr_assert_eq(c.y[1], 30.0f);
    nb_dataset_free(&a);
    nb_dataset_free(&b);
    nb_dataset_free(&c);
}

Test(data, csv_targets_that_are_not_class_indices_give_zero_classes) {
    char p[PATH_MAX];
    nb_dataset d;
    write_text(p, "frac.csv", "1,0\n2,0.5\n");
    cr_assert_eq(nb_load_csv(p, -1, false, &d), NB_OK, "%s", nb_last_error());
    cr_assert_eq(d.n_classes, 0);
    nb_dataset_free(&d);
    write_text(p, "neg.csv", "1,3\n2,-1\n");
    cr_assert_eq(nb_load_csv(p, -1, false, &d), NB_OK, "%s", nb_last_error());
    cr_assert_eq(d.n_classes, 0);
    cr_assert_eq(d.y[1], -1.0f);
    nb_dataset_free(&d);
    write_text(p, "big.csv", "1,3\n2,16777216\n");
    cr_assert_eq(nb_load_csv(p, -1, false, &d), NB_OK, "%s", nb_last_error());
    cr_assert_eq(d.n_classes, 0);
    nb_dataset_free(&d);
}

/* Loads path and checks that it fails with the message part and an empty output. */
static void expect_csv_error(const char *path, int label_col, bool header, const char *part) {
    nb_dataset d = {.n = 3};
    cr_assert_eq(nb_load_csv(path, label_col, header, &d), NB_ERROR);
    expect_msg(part);
    expect_empty(&d);
}

Test(data, csv_rejects_ragged_lines_naming_file_and_line) {
    char p[PATH_MAX], want[PATH_MAX + 64];
    write_text(p, "r.csv", "h1,h2,h3\n1,2,3\n4,5,6\n7,8\n");
    snprintf(want, sizeof want, "%s:4: 2 fields, expected 3 as on line 2", p);
    expect_csv_error(p, -1, true, want);
    write_text(p, "r2.csv", "1,2\n3,4,5\n");
    snprintf(want, sizeof want, "%s:2: 3 fields, expected 2 as on line 1", p);
    expect_csv_error(p, -1, false, want);
}

Test(data, csv_rejects_non_numbers_naming_file_line_and_field) {
    char p[PATH_MAX], want[PATH_MAX + 64];
    write_text(p, "n.csv", "1,2,3\n4, abc ,6\n");
    snprintf(want, sizeof want, "%s:2: field 2 'abc' is not a number", p);
    expect_csv_error(p, -1, false, want);
    write_text(p, "e.csv", "1,2,3\n4,5,\n");  // an empty field
    snprintf(want, sizeof want, "%s:2: field 3 '' is not a number", p);
    expect_csv_error(p, -1, false, want);
    write_text(p, "t.csv", "1,2,3\n4,5x,6\n");  // a number with junk after it
    snprintf(want, sizeof want, "%s:2: field 2 '5x' is not a number", p);
    expect_csv_error(p, -1, false, want);
    write_text(p, "h.csv", "a,b,c\n1,2,3\n");  // a header not skipped
    snprintf(want, sizeof want, "%s:1: field 1 'a' is not a number", p);
    expect_csv_error(p, -1, false, want);
    write_text(p, "i.csv", "1,2,3\n1e999,2,3\n");
    snprintf(want, sizeof want, "%s:2: field 1 '1e999' is not a finite float", p);
    expect_csv_error(p, -1, false, want);
    write_text(p, "nan.csv", "1,nan,3\n");
    expect_csv_error(p, -1, false, "field 2 'nan' is not a finite float");
}

Test(data, csv_rejects_empty_and_header_only_files) {
    char p[PATH_MAX];
    write_text(p, "empty.csv", "");
    expect_csv_error(p, -1, false, "empty.csv: no data lines");
    expect_csv_error(p, -1, true, "empty.csv: no data lines");
    write_text(p, "head.csv", "a,b\n\n");
    expect_csv_error(p, -1, true, "head.csv: no data lines after the header");
    write_text(p, "blank.csv", "\n \n");
    expect_csv_error(p, -1, false, "blank.csv: no data lines");
}

Test(data, csv_rejects_empty_lines_between_examples) {
    char p[PATH_MAX], want[PATH_MAX + 64];
    write_text(p, "gap.csv", "1,2\n\n3,4\n");
    snprintf(want, sizeof want, "%s:2: empty line before more data", p);
    expect_csv_error(p, -1, false, want);
}

Test(data, csv_rejects_bad_label_column_and_single_fields) {
    char p[PATH_MAX];
    write_text(p, "l.csv", "1,2,3\n");
    expect_csv_error(p, 3, false, "label column 3 is outside the 3 fields");
    expect_csv_error(p, -4, false, "label column -4 is outside the 3 fields");
    write_text(p, "one.csv", "1\n2\n");
    expect_csv_error(p, 0, false, "one.csv:1: 1 field; need at least one feature and a label");
}

Test(data, csv_rejects_missing_file_and_null_arguments) {
    char p[PATH_MAX];
    tpath(p, "missing.csv");
    expect_csv_error(p, -1, false, "missing.csv: cannot open: No such file");
    expect_csv_error(NULL, -1, false, "path is NULL");
    cr_assert_eq(nb_load_csv(p, -1, false, NULL), NB_ERROR);
    expect_msg("out is NULL");
}

/* ---- slices and scaling ---- */

/* A dataset of n examples of dim features, x = 10·i + j, y = i % 3. */
static nb_dataset make_set(int n, int dim) {
    nb_dataset d = {.n = n, .dim = dim, .rows = 1, .cols = dim, .n_classes = 3};
    d.x = malloc((size_t)n * dim * sizeof *d.x);
    d.y = malloc((size_t)n * sizeof *d.y);
    cr_assert(d.x && d.y);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < dim; j++) d.x[i * dim + j] = (float)(10 * i + j);
        d.y[i] = (float)(i % 3);
    }
    return d;
}

Test(data, slice_copies_the_range) {
    nb_dataset src = make_set(6, 2), s;
    int ranges[][2] = {{0, 6}, {2, 3}, {5, 1}, {0, 1}};
    for (int r = 0; r < 4; r++) {
        int start = ranges[r][0], count = ranges[r][1];
        cr_assert_eq(nb_dataset_slice(&src, start, count, &s), NB_OK, "%s", nb_last_error());
        cr_assert_eq(s.n, count);
        cr_assert_eq(s.dim, 2);
        cr_assert_eq(s.rows, 1);
        cr_assert_eq(s.cols, 2);
        cr_assert_eq(s.n_classes, 3);
        cr_assert_neq(s.x, src.x);
        for (int i = 0; i < count; i++) {
            for (int j = 0; j < 2; j++) cr_assert_eq(s.x[i * 2 + j], (float)(10 * (start + i) + j));
            cr_assert_eq(s.y[i], (float)((start + i) % 3));
        }
        nb_dataset_free(&s);
    }
    // In place: the source is replaced by its slice.
    cr_assert_eq(nb_dataset_slice(&src, 4, 2, &src), NB_OK);
    cr_assert_eq(src.n, 2);
    cr_assert_eq(src.x[0], 40.0f);
    cr_assert_eq(src.y[1], 2.0f);
    nb_dataset_free(&src);
}

Test(data, slice_rejects_ranges_outside_the_source) {
    nb_dataset src = make_set(6, 2), s;
    int bad[][2] = {{-1, 2}, {5, 2}, {0, 7}, {6, 1}, {2, 0}, {1, -1}, {INT_MAX, 2}, {2, INT_MAX}};
    for (int r = 0; r < 8; r++) {
        s = (nb_dataset){.n = 9};
        cr_assert_eq(nb_dataset_slice(&src, bad[r][0], bad[r][1], &s), NB_ERROR,
                     "[%d, +%d) accepted", bad[r][0], bad[r][1]);
        expect_msg("slice: examples [");
        expect_msg("inside [0, 6)");
        expect_empty(&s);
    }
    // Failing in place keeps the source.
    cr_assert_eq(nb_dataset_slice(&src, 3, 9, &src), NB_ERROR);
    cr_assert_eq(src.n, 6);
    cr_assert_eq(src.x[11], 51.0f);
    nb_dataset empty = {0};
    cr_assert_eq(nb_dataset_slice(&empty, 0, 1, &s), NB_ERROR);
    expect_msg("source dataset is empty");
    cr_assert_eq(nb_dataset_slice(NULL, 0, 1, &s), NB_ERROR);
    expect_msg("source dataset is NULL");
    cr_assert_eq(nb_dataset_slice(&src, 0, 1, NULL), NB_ERROR);
    expect_msg("out is NULL");
    nb_dataset_free(&src);
}

Test(data, scale_multiplies_every_feature_not_labels) {
    nb_dataset d = make_set(4, 3);
    nb_dataset_scale(&d, 1.0f / 255);
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < 3; j++)
            cr_assert_eq(d.x[i * 3 + j], (float)(10 * i + j) * (1.0f / 255));
        cr_assert_eq(d.y[i], (float)(i % 3));
    }
    nb_dataset_free(&d);
    nb_dataset_scale(&d, 2.0f);  // zeroed: nothing to do
    nb_dataset_scale(NULL, 2.0f);
    nb_dataset_free(NULL);
}

/* ---- standardization ---- */

/* n examples of 3 features from stream seed: feature 0 ~ U[lo, lo+2),
 * feature 1 = 1e4 + U[0, 1) (large mean, small spread), feature 2 = 5. */
static nb_dataset make_random_set(int n, uint64_t seed, float lo) {
    nb_dataset d = make_set(n, 3);
    nb_rng r;
    nb_rng_seed(&r, seed, 0);
    for (int i = 0; i < n; i++) {
        d.x[i * 3 + 0] = lo + 2 * nb_rng_uniform(&r);
        d.x[i * 3 + 1] = 1e4f + nb_rng_uniform(&r);
        d.x[i * 3 + 2] = 5.0f;
    }
    return d;
}

Test(data, standardizer_uses_training_statistics_only) {
    enum { NTR = 500, NTE = 40 };
    nb_dataset tr = make_random_set(NTR, 1, -1.0f);
    nb_dataset te = make_random_set(NTE, 2, 3.0f);  // another distribution
    float *te_orig = malloc(sizeof(float) * NTE * 3);
    cr_assert(te_orig);
    memcpy(te_orig, te.x, sizeof(float) * NTE * 3);

    // The statistics, written from the formula in double.
    double mean[3], sd[3];
    for (int j = 0; j < 3; j++) {
        double s = 0, q = 0;
        for (int i = 0; i < NTR; i++) s += tr.x[i * 3 + j];
        mean[j] = s / NTR;
        for (int i = 0; i < NTR; i++) q += (tr.x[i * 3 + j] - mean[j]) * (tr.x[i * 3 + j] - mean[j]);
        sd[j] = sqrt(q / NTR);  // population
        if (sd[j] == 0) sd[j] = 1;
    }
    cr_assert_eq(sd[2], 1.0);

    nb_standardizer s;
    cr_assert_eq(nb_standardizer_fit(&s, &tr), NB_OK, "%s", nb_last_error());
    cr_assert_eq(s.dim, 3);
    for (int j = 0; j < 3; j++) {
        cr_assert(fabs(s.mean[j] - mean[j]) <= 1e-6 * fabs(mean[j]) + 1e-7, "mean %d: %g vs %g", j,
                  s.mean[j], mean[j]);
        cr_assert(fabs(s.std[j] - sd[j]) <= 1e-5 * sd[j], "std %d: %g vs %g", j, s.std[j], sd[j]);
    }
    cr_assert_eq(nb_standardizer_apply(&s, &te), NB_OK, "%s", nb_last_error());
    for (int i = 0; i < NTE; i++)
        for (int j = 0; j < 3; j++) {
            double want = (te_orig[i * 3 + j] - mean[j]) / sd[j];
            double got = te.x[i * 3 + j];
            // Feature 1 is 1e4 + a fraction: float rounding of x itself is
            // ~5e-4, which the small std (~0.29) magnifies.
            double tol = j == 1 ? 5e-3 : 1e-5 * (1 + fabs(want));
            cr_assert(fabs(got - want) <= tol, "test[%d][%d]: %g, want %g", i, j, got, want);
        }
    // The test split, shifted by +4 on feature 0, stays off-centre: its own
    // statistics were not used.
    double m0 = 0;
    for (int i = 0; i < NTE; i++) m0 += te.x[i * 3];
    cr_assert_gt(m0 / NTE, 2.0);
    // The training split comes out centred with unit spread.
    cr_assert_eq(nb_standardizer_apply(&s, &tr), NB_OK);
    for (int j = 0; j < 2; j++) {
        double a = 0, q = 0;
        for (int i = 0; i < NTR; i++) a += tr.x[i * 3 + j];
        a /= NTR;
        for (int i = 0; i < NTR; i++) q += (tr.x[i * 3 + j] - a) * (tr.x[i * 3 + j] - a);
        // Feature 1's mean, stored as a float near 1e4, is off by up to
        // half an ulp (5e-4), which its std of ~0.29 magnifies.
        cr_assert(fabs(a) < (j == 1 ? 3e-3 : 1e-5), "feature %d mean %g", j, a);
        cr_assert(fabs(sqrt(q / NTR) - 1) < 1e-3, "feature %d std %g", j, sqrt(q / NTR));
    }
    for (int i = 0; i < NTR; i++) cr_assert_eq(tr.x[i * 3 + 2], 0.0f);  // constant: centred only
    nb_standardizer_free(&s);
    cr_assert(!s.mean && !s.std && s.dim == 0);
    nb_standardizer_free(&s);
    nb_standardizer_free(NULL);
    free(te_orig);
    nb_dataset_free(&tr);
    nb_dataset_free(&te);
}

Test(data, standardizer_errors) {
    nb_dataset tr = make_set(5, 3), other = make_set(2, 4), empty = {0};
    nb_standardizer s = {0};
    cr_assert_eq(nb_standardizer_apply(&s, &tr), NB_ERROR);
    expect_msg("standardizer: not fitted");
    cr_assert_eq(nb_standardizer_fit(&s, &empty), NB_ERROR);
    expect_msg("training set is empty");
    cr_assert(!s.mean && !s.std);
    cr_assert_eq(nb_standardizer_fit(&s, NULL), NB_ERROR);
    expect_msg("training set is NULL");
    cr_assert_eq(nb_standardizer_fit(NULL, &tr), NB_ERROR);
    expect_msg("s is NULL");
    cr_assert_eq(nb_standardizer_fit(&s, &tr), NB_OK);
    cr_assert_eq(nb_standardizer_apply(&s, &other), NB_ERROR);
    expect_msg("dataset has 4 features, fitted on 3");
    cr_assert_eq(other.x[5], 11.0f);  // untouched
    cr_assert_eq(nb_standardizer_apply(&s, NULL), NB_ERROR);
    expect_msg("dataset is NULL");
    cr_assert_eq(nb_standardizer_apply(NULL, &tr), NB_ERROR);
    expect_msg("s is NULL");
    nb_standardizer_free(&s);
    nb_dataset_free(&tr);
    nb_dataset_free(&other);
}

/* ---- shuffling ---- */

Test(data, shuffle_is_a_permutation_fixed_by_seed_and_stream) {
    enum { N = 1000 };
    int *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b), *c = malloc(N * sizeof *c),
        *e = malloc(N * sizeof *e), *seen = calloc(N, sizeof *seen);
    cr_assert(a && b && c && e && seen);
    nb_shuffle(a, N, 42, 7);
    for (int i = 0; i < N; i++) {
        cr_assert(a[i] >= 0 && a[i] < N);
        cr_assert_eq(seen[a[i]]++, 0, "%d twice", a[i]);
    }
    nb_shuffle(b, N, 42, 7);
    cr_assert_arr_eq(a, b, N * sizeof *a);
    int fixed = 0;
    for (int i = 0; i < N; i++) fixed += a[i] == i;
    cr_assert_lt(fixed, 10, "%d fixed points: not shuffled", fixed);
    nb_shuffle(c, N, 43, 7);
    int same = 0;
    for (int i = 0; i < N; i++) same += a[i] == c[i];
    cr_assert_lt(same, 10, "seeds 42 and 43 agree at %d places", same);
    nb_shuffle(c, N, 42, 8);
    same = 0;
    for (int i = 0; i < N; i++) same += a[i] == c[i];
    cr_assert_lt(same, 10, "streams 7 and 8 agree at %d places", same);

    // The documented algorithm, written out here.
    nb_rng r;
    nb_rng_seed(&r, 42, 7);
    for (int i = 0; i < N; i++) e[i] = i;
    for (int i = N - 1; i > 0; i--) {
        int j = (int)nb_rng_below(&r, (uint32_t)i + 1), t = e[i];
        e[i] = e[j], e[j] = t;
    }
    cr_assert_arr_eq(a, e, N * sizeof *a);

    int one = 9;
    nb_shuffle(&one, 1, 1, 1);
    cr_assert_eq(one, 0);
    nb_shuffle(a, 0, 1, 1);  // nothing to do
    cr_assert_arr_eq(a, b, N * sizeof *a);
    nb_shuffle(NULL, 5, 1, 1);
    free(a), free(b), free(c), free(e), free(seen);
}

Test(data, shuffle_draws_every_order_equally_often) {
    // 3 items, 6000 seeds: each of the 6 orders about 1000 times. Sattolo's
    // variant (j < i) would give only 2 orders, an off-by-one in the range
    // a skewed count.
    enum { T = 6000 };
    int count[3][3][3] = {{{0}}};
    for (int s = 0; s < T; s++) {
        int p[3];
        nb_shuffle(p, 3, (uint64_t)s, 0);
        count[p[0]][p[1]][p[2]]++;
    }
    const int orders[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    double chi2 = 0;
    for (int k = 0; k < 6; k++) {
        double o = count[orders[k][0]][orders[k][1]][orders[k][2]], want = T / 6.0;
        chi2 += (o - want) * (o - want) / want;
    }
    cr_assert_lt(chi2, 20.5, "chi-square %g over 5 degrees of freedom (p < 0.001)", chi2);
}

/* ---- hostile input: what an attack found (issue 10) ---- */

/* Appends bytes to the end of path. */
static void append_file(const char *path, const void *bytes, size_t len) {
    FILE *f = fopen(path, "ab");
    cr_assert(f);
    cr_assert_eq(fwrite(bytes, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
}

static off_t file_size(const char *path) {
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    return st.st_size;
}

/* A deflate stream (RFC 1951) in fixed-Huffman blocks, bit by bit, so a
 * test can write a small file that inflates to a great many zeros: each
 * run of 258 zeros is one length-258/distance-1 pair of 13 bits. */
typedef struct {
    unsigned char *buf;
    size_t len, cap;
    uint32_t acc;
    int bits;
} bitw;

static void bw_bits(bitw *w, uint32_t v, int n) {  // v's n bits, least significant first
    for (int i = 0; i < n; i++) {
        w->acc |= ((v >> i) & 1u) << w->bits;
        if (++w->bits == 8) {
            if (w->len == w->cap) {
                w->cap = w->cap ? 2 * w->cap : 4096;
                w->buf = realloc(w->buf, w->cap);
                cr_assert(w->buf);
            }
            w->buf[w->len++] = (unsigned char)w->acc;
            w->acc = 0, w->bits = 0;
        }
    }
}

static void bw_code(bitw *w, uint32_t code, int n) {  // a Huffman code, most significant first
    for (int i = n - 1; i >= 0; i--) bw_bits(w, (code >> i) & 1u, 1);
}

static void bw_literal(bitw *w, unsigned char b) {
    if (b < 144) bw_code(w, 0x30u + b, 8);
    else bw_code(w, 0x190u + (b - 144u), 9);
}

/* Zeros as literal 0 and then copies of length 258 at distance 1. */
static void bw_zeros(bitw *w, uint64_t count) {
    if (!count) return;
    bw_literal(w, 0);
    count--;
    for (; count >= 258; count -= 258) {
        bw_code(w, 0xc5, 8);  // length code 285 (258), fixed code 11000101
        bw_code(w, 0, 5);     // distance code 0 (distance 1)
    }
    while (count--) bw_literal(w, 0);
}

static void bw_flush(bitw *w) {
    if (w->bits) bw_bits(w, 0, 8 - w->bits);
}

/* A gzip file: header, one fixed-Huffman block holding prefix then zeros,
 * then either a valid end (final block, CRC and length: crc and size as
 * given) or, when corrupt, a block of the reserved type 3, which inflate
 * refuses with "invalid block type" when it reaches it. */
static void write_zero_bomb(const char *path, const unsigned char *prefix, size_t plen,
                            uint64_t zeros, bool corrupt_end) {
    bitw w = {0};
    static const unsigned char head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    for (int i = 0; i < 10; i++) bw_bits(&w, head[i], 8);
    bw_bits(&w, corrupt_end ? 0 : 1, 1);  // BFINAL
    bw_bits(&w, 1, 2);                    // BTYPE 01: fixed Huffman
    for (size_t i = 0; i < plen; i++) bw_literal(&w, prefix[i]);
    bw_zeros(&w, zeros);
    bw_code(&w, 0, 7);  // end of block
    if (corrupt_end) {
        bw_bits(&w, 1, 1);
        bw_bits(&w, 3, 2);  // BTYPE 11: reserved, an error
        bw_bits(&w, 0, 16);
    }
    bw_flush(&w);
    FILE *f = fopen(path, "wb");
    cr_assert(f);
    cr_assert_eq(fwrite(w.buf, 1, w.len, f), w.len);
    if (!corrupt_end) {  // the trailer, with the CRC of prefix + zeros
        uint32_t c = 0xffffffffu;
        for (size_t i = 0; i < plen; i++) {
            c ^= prefix[i];
            for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
        }
        for (uint64_t i = 0; i < zeros; i++)
            for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
        unsigned char tail[8];
        put_le(tail, c ^ 0xffffffffu, 4);
        put_le(tail + 4, (uint32_t)(plen + zeros), 4);
        cr_assert_eq(fwrite(tail, 1, 8, f), 8u);
    }
    cr_assert_eq(fclose(f), 0);
    free(w.buf);
}

Test(data, zero_bomb_writer_makes_gzip_that_loads) {
    // The writer above is checked once on a valid file, so the refusals
    // below are the loader's doing, not a broken stream.
    char pi[PATH_MAX], pl[PATH_MAX];
    unsigned char head[16];
    put_be32(head, 0x803), put_be32(head + 4, 50), put_be32(head + 8, 20), put_be32(head + 12, 30);
    write_zero_bomb(tpath(pi, "img.gz"), head, 16, 50 * 20 * 30, false);
    unsigned char lab[50] = {0};
    lab[7] = 4;
    write_idx(tpath(pl, "lab"), false, 0x801, 1, (uint32_t[]){50}, lab, 50);
    nb_dataset d;
    cr_assert_eq(nb_load_idx(pi, pl, &d), NB_OK, "%s", nb_last_error());
    cr_assert_eq(d.n, 50);
    cr_assert_eq(d.dim, 600);
    cr_assert_eq(d.n_classes, 5);
    for (int i = 0; i < 50 * 600; i++) cr_assert_eq(d.x[i], 0.0f);
    nb_dataset_free(&d);
    cr_assert_lt(file_size(pi), 600, "not a bomb: %lld bytes", (long long)file_size(pi));
}

Test(data, idx_rejects_gzip_missing_its_crc_and_length_trailer) {
    char pi[PATH_MAX], pl[PATH_MAX];
    write_small_images(tpath(pi, "img.gz"), true, 0);
    write_small_labels(tpath(pl, "lab"), false);
    off_t full = file_size(pi);
    cr_assert_eq(truncate(pi, full - 8), 0);  // no trailer at all
    expect_idx_error(pi, pl, pi, "unexpected end of file");
    expect_msg("CRC and length trailer");
    write_small_images(pi, true, 0);
    cr_assert_eq(truncate(pi, full - 3), 0);  // the length cut short
    expect_idx_error(pi, pl, pi, "unexpected end of file");
    // and the labels file likewise
    write_small_images(pi, true, 0);
    write_small_labels(tpath(pl, "lab.gz"), true);
    cr_assert_eq(truncate(pl, file_size(pl) - 8), 0);
    expect_idx_error(pi, pl, pl, "unexpected end of file");
}

Test(data, idx_rejects_garbage_after_the_gzip_stream) {
    char pi[PATH_MAX], pl[PATH_MAX];
    write_small_images(tpath(pi, "img.gz"), true, 0);
    write_small_labels(tpath(pl, "lab.gz"), true);
    append_file(pi, "garbage\n", 8);
    expect_idx_error(pi, pl, pi, "after the end of the gzip stream");
    write_small_images(pi, true, 0);
    append_file(pl, "\0", 1);  // even one zero byte
    expect_idx_error(pi, pl, pl, "after the end of the gzip stream");
    write_small_labels(pl, true);
    append_file(pl, "\x1f\x8b", 2);  // the start of a gzip header, and no more
    expect_idx_error(pi, pl, pl, "unexpected end of file");
}

Test(data, idx_reads_a_gzip_file_of_several_members) {
    // `cat a.gz b.gz` is one valid gzip file (RFC 1952 §2.2): gzip and zlib
    // read it as the concatenation.
    char pi[PATH_MAX], pl[PATH_MAX], pb[PATH_MAX];
    unsigned char whole[16 + SN * SR * SC];
    put_be32(whole, 0x803), put_be32(whole + 4, SN), put_be32(whole + 8, SR), put_be32(whole + 12, SC);
    for (int i = 0; i < SN * SR * SC; i++) whole[16 + i] = small_pixel(i, 0);
    write_file(tpath(pi, "img.gz"), true, whole, 20);
    write_file(tpath(pb, "rest.gz"), true, whole + 20, sizeof whole - 20);
    FILE *f = fopen(pb, "rb");
    cr_assert(f);
    unsigned char rest[256];
    size_t got = fread(rest, 1, sizeof rest, f);
    fclose(f);
    append_file(pi, rest, got);
    write_small_labels(tpath(pl, "lab"), false);
    nb_dataset d;
    cr_assert_eq(nb_load_idx(pi, pl, &d), NB_OK, "%s", nb_last_error());
    check_small(&d, 0, 3);
    nb_dataset_free(&d);
}

Test(data, idx_checks_the_labels_before_inflating_the_images) {
    // The images declare 400 x 100 x 100 (4 MB, in 26 kB of gzip) and end
    // in a corrupt block; the labels file holds only its header. Reading
    // the labels first names them without inflating the images, which
    // would otherwise be reported ("invalid block type") after 4 MB.
    char pi[PATH_MAX], pl[PATH_MAX];
    unsigned char head[16];
    put_be32(head, 0x803), put_be32(head + 4, 400), put_be32(head + 8, 100), put_be32(head + 12, 100);
    write_zero_bomb(tpath(pi, "img.gz"), head, 16, 400 * 100 * 100, true);
    write_idx(tpath(pl, "lab"), false, 0x801, 1, (uint32_t[]){400}, NULL, 0);
    expect_idx_error(pi, pl, pl, "truncated: expected 400 label bytes, got 0");
    const char *m = nb_last_error();
    cr_assert(!strstr(m, "invalid block type"), "the images were inflated first: %s", m);
}

Test(data, idx_never_inflates_past_the_declared_size) {
    // 18 declared pixel bytes, then 40 MB of zeros, then a corrupt block:
    // the loader must stop at the first byte too many and never reach it.
    char pi[PATH_MAX], pl[PATH_MAX];
    unsigned char head[16 + SN * SR * SC];
    put_be32(head, 0x803), put_be32(head + 4, SN), put_be32(head + 8, SR), put_be32(head + 12, SC);
    for (int i = 0; i < SN * SR * SC; i++) head[16 + i] = small_pixel(i, 0);
    write_zero_bomb(tpath(pi, "img.gz"), head, sizeof head, (uint64_t)40 << 20, true);
    write_small_labels(tpath(pl, "lab"), false);
    expect_idx_error(pi, pl, pi, "trailing data: the gzip stream holds more than the 18 declared "
                                 "pixel bytes");
    const char *m = nb_last_error();
    cr_assert(!strstr(m, "invalid block type"), "inflated past the declared size: %s", m);
}

Test(data, idx_refuses_a_fifo_and_a_device_without_hanging) {
    alarm(20);  // a hang ends the test with SIGALRM, a failure
    char pi[PATH_MAX], pl[PATH_MAX], pf[PATH_MAX];
    write_small_images(tpath(pi, "img"), false, 0);
    write_small_labels(tpath(pl, "lab"), false);
    cr_assert_eq(mkfifo(tpath(pf, "fifo"), 0600), 0, "mkfifo: %s", strerror(errno));
    // No writer ever opens the FIFO: a blocking open would wait forever.
    expect_idx_error(pf, pl, pf, "is not a regular file");
    expect_idx_error(pi, pf, pf, "is not a regular file");
    expect_idx_error("/dev/zero", pl, "/dev/zero", "is not a regular file");
    // The folder loader goes through the same check.
    char name[PATH_MAX];
    write_mnist_dir(false);
    tpath(name, "t10k-labels-idx1-ubyte");
    cr_assert_eq(unlink(name), 0);
    cr_assert_eq(mkfifo(name, 0600), 0);
    nb_dataset tr, te;
    cr_assert_eq(nb_load_mnist_dir(tmpdir, &tr, &te), NB_ERROR);
    expect_msg("t10k-labels-idx1-ubyte: is not a regular file");
    expect_empty(&tr);
    expect_empty(&te);
    alarm(0);
}

Test(data, csv_refuses_a_fifo_and_dev_zero_without_hanging) {
    alarm(20);  // a hang ends the test with SIGALRM, a failure
    char pf[PATH_MAX];
    cr_assert_eq(mkfifo(tpath(pf, "fifo.csv"), 0600), 0, "mkfifo: %s", strerror(errno));
    expect_csv_error(pf, -1, false, "fifo.csv: is not a regular file");
    expect_csv_error("/dev/zero", -1, false, "/dev/zero: is not a regular file");
    expect_csv_error(tmpdir, -1, false, ": is a folder");
    alarm(0);
}

/* A comma-decimal locale: an installed one, or de_DE compiled into the
 * test's folder (scripts/setup.sh installs the locales package, whose
 * localedef and sources make it), as test_nn_save.c does. */
static void set_comma_locale(void) {
    const char *names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8"};
    const char *got = NULL;
    for (size_t i = 0; !got && i < 4; i++) got = setlocale(LC_ALL, names[i]);
    if (!got && access("/usr/bin/localedef", X_OK) == 0) {
        char dir[PATH_MAX], cmd[2 * PATH_MAX];
        snprintf(cmd, sizeof cmd, "/usr/bin/localedef -i de_DE -f UTF-8 %s >/dev/null 2>&1",
                 tpath(dir, "de_DE.UTF-8"));
        if (system(cmd) == 0) {
            setenv("LOCPATH", tmpdir, 1);
            got = setlocale(LC_ALL, "de_DE.UTF-8");
        }
    }
    cr_assert_not_null(got, "no comma-decimal locale could be set or compiled (scripts/setup.sh "
                            "installs locales)");
    cr_assert_str_eq(localeconv()->decimal_point, ",");
}

Test(data, csv_reads_numbers_in_the_c_locale_whatever_the_process_locale) {
    char p[PATH_MAX];
    write_text(p, "loc.csv", "0.5,1e-3,2\n-1.25,3.0,0\n");
    set_comma_locale();
    cr_assert_eq(strtof("0,5", NULL), 0.5f, "the locale is not in effect");
    nb_dataset d;
    nb_status st = nb_load_csv(p, -1, false, &d);
    cr_assert_eq(st, NB_OK, "%s", nb_last_error());
    cr_assert_eq(d.x[0], 0.5f);
    cr_assert_eq(d.x[1], 1e-3f);
    cr_assert_eq(d.x[2], -1.25f);
    cr_assert_eq(d.x[3], 3.0f);
    nb_dataset_free(&d);
    // And a comma decimal stays what it is in a CSV: a field separator.
    write_text(p, "comma.csv", "\"0,5\",1\n");
    expect_csv_error(p, -1, false, "field 1 '\"0' is not a number");
    setlocale(LC_ALL, "C");
}

/* Runs csv-oom-child (built beside this test executable) on path with its
 * address space capped a little above what it has mapped, and returns its
 * exit status; its report goes to out (a file). */
static int run_oom_child(const char *path, const char *out) {
    char self[PATH_MAX], child[PATH_MAX + 32];
    ssize_t l = readlink("/proc/self/exe", self, sizeof self - 1);
    cr_assert_gt(l, 0);
    self[l] = '\0';
    char *slash = strrchr(self, '/');
    cr_assert(slash);
    *slash = '\0';
    snprintf(child, sizeof child, "%s/csv-oom-child", self);
    cr_assert_eq(access(child, X_OK), 0, "%s is missing (built by tests/meson.build)", child);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        // Under AddressSanitizer a failed allocation must return NULL, as
        // glibc's does, instead of ending the process.
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
    return WEXITSTATUS(status);
}

Test(data, csv_running_out_of_memory_mid_line_is_an_error_not_the_end_of_the_file) {
    // Two good lines, then 256 MB without a newline (a sparse file of zero
    // bytes): the line cannot be held in 32 MB more than the child has, so
    // reading it fails with ENOMEM. That must not pass for the end of the
    // file, with the two lines before it loaded as the whole data set.
    char p[PATH_MAX], out[PATH_MAX];
    write_text(p, "long.csv", "1,2\n3,4\n");
    cr_assert_eq(truncate(p, 8 + ((off_t)256 << 20)), 0);
    int code = run_oom_child(p, tpath(out, "child.txt"));
    char report[1024] = "";
    FILE *f = fopen(out, "r");
    cr_assert(f);
    size_t got = fread(report, 1, sizeof report - 1, f);
    report[got] = '\0';
    fclose(f);
    cr_assert_eq(code, 0, "csv-oom-child exited %d: %s", code, report);
    cr_assert(strstr(report, "long.csv:3: out of memory"), "report: %s", report);
}

/* Issue 10, hole 14: a label of 16,777,215 made a 16.8-million-class
 * problem, and hexadecimal numbers were read as numbers. */
Test(data, csv_huge_integer_labels_are_targets_and_hex_numbers_are_refused) {
    char p[PATH_MAX];
    nb_dataset d;
    write_text(p, "many.csv", "1,3\n2,16777215\n");
    cr_assert_eq(nb_load_csv(p, -1, false, &d), NB_OK, "%s", nb_last_error());
    cr_assert_eq(d.n_classes, 0, "%d classes", d.n_classes);
    nb_dataset_free(&d);
    write_text(p, "edge.csv", "1,3\n2,65535\n");
    cr_assert_eq(nb_load_csv(p, -1, false, &d), NB_OK, "%s", nb_last_error());
    cr_assert_eq(d.n_classes, 65536);
    nb_dataset_free(&d);
    write_text(p, "hex.csv", "1,0x10\n");
    expect_csv_error(p, -1, false, "hex.csv:1: field 2 '0x10' is not a number");
    write_text(p, "hexf.csv", "0X1p3,1\n");
    expect_csv_error(p, -1, false, "field 1 '0X1p3' is not a number");
}
