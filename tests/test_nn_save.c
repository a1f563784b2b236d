/* Saving and loading models (safetensors): bit-exact round trips of every
 * layer kind with names, specs, trainable flags and the seed; the file's
 * layout read back by hand here (and by Python when there is one); atomic
 * saves that leave the old file and no temporary behind when they fail;
 * every kind of broken file refused with its message; truncations and
 * single-bit flips anywhere in a file all refused; headers that are not
 * strict JSON refused (jansson reads them); floats written with the fewest
 * digits; load_weights. */
#define _GNU_SOURCE /* nftw */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <locale.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "nabla/nn.h"

/* ---- files and folders ---- */

typedef struct tdir {
    char path[64];
} tdir;

static tdir tdir_new(void) {
    tdir d;
    snprintf(d.path, sizeof d.path, "/tmp/nabla-save-XXXXXX");
    cr_assert_not_null(mkdtemp(d.path), "mkdtemp: %s", strerror(errno));
    return d;
}

static char *in_dir(const tdir *d, const char *name) {
    static _Thread_local char buf[4][256];
    static _Thread_local int next;
    char *b = buf[next++ % 4];
    snprintf(b, sizeof buf[0], "%s/%s", d->path, name);
    return b;
}

/* Entries of the folder whose name contains part ("" for all). */
static int count_entries(const char *dir, const char *part) {
    DIR *dp = opendir(dir);
    cr_assert_not_null(dp, "opendir %s: %s", dir, strerror(errno));
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dp)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strstr(e->d_name, part)) n++;
    closedir(dp);
    return n;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* Removes the folder and everything in it. */
static void tdir_free(tdir *d) { nftw(d->path, remove_one, 8, FTW_DEPTH | FTW_PHYS); }

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "open %s: %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    cr_assert(fread(b, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void spill(const char *path, const void *b, size_t len) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "create %s: %s", path, strerror(errno));
    cr_assert(fwrite(b, 1, len, f) == len);
    cr_assert(fclose(f) == 0);
}

static uint64_t le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* A saved file taken apart: its header (NUL-terminated, padding included)
 * and its data. */
typedef struct parts {
    char *header;
    size_t header_len;
    unsigned char *data;
    size_t data_len;
} parts;

static parts split(const char *path) {
    size_t len;
    unsigned char *b = slurp(path, &len);
    cr_assert_geq(len, 8);
    uint64_t n = le64(b);
    cr_assert_leq(n, len - 8);
    parts p = {.header = malloc(n + 1), .header_len = n, .data = malloc(len - 8 - n + 1), .data_len = len - 8 - n};
    memcpy(p.header, b + 8, n);
    p.header[n] = '\0';
    memcpy(p.data, b + 8 + n, p.data_len);
    free(b);
    return p;
}

static void parts_free(parts *p) {
    free(p->header);
    free(p->data);
}

/* Writes a file from a header (padded here with spaces to a multiple of 8
 * as the format wants) and data. */
static void assemble(const char *path, const char *header, const void *data, size_t data_len) {
    size_t n = strlen(header), padded = (n + 7) / 8 * 8;
    unsigned char *b = malloc(8 + padded + data_len + 1);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    memcpy(b + 8, header, n);
    memset(b + 8 + n, ' ', padded - n);
    if (data_len) memcpy(b + 8 + padded, data, data_len);
    spill(path, b, 8 + padded + data_len);
    free(b);
}

/* The header of src with its first `from` replaced by `to`, written to dst
 * with src's data followed by extra_len zero bytes (negative: that many
 * bytes cut from the end). */
static void edit(const char *src, const char *dst, const char *from, const char *to, long extra) {
    parts p = split(src);
    while (p.header_len && p.header[p.header_len - 1] == ' ') p.header[--p.header_len] = '\0';
    char *at = strstr(p.header, from);
    cr_assert_not_null(at, "'%s' is not in the header: %s", from, p.header);
    size_t pre = (size_t)(at - p.header), nf = strlen(from), nt = strlen(to);
    char *h = malloc(p.header_len - nf + nt + 1);
    memcpy(h, p.header, pre);
    memcpy(h + pre, to, nt);
    strcpy(h + pre + nt, at + nf);
    size_t dl = extra < 0 ? p.data_len - (size_t)-extra : p.data_len + (size_t)extra;
    unsigned char *d = calloc(dl + 1, 1);
    memcpy(d, p.data, dl < p.data_len ? dl : p.data_len);
    assemble(dst, h, d, dl);
    free(d);
    free(h);
    parts_free(&p);
}

/* The header of src without the text from `from` up to (not including)
 * `upto`. */
static void cut(const char *src, const char *dst, const char *from, const char *upto) {
    parts p = split(src);
    while (p.header_len && p.header[p.header_len - 1] == ' ') p.header[--p.header_len] = '\0';
    char *a = strstr(p.header, from);
    cr_assert_not_null(a);
    char *b = strstr(a, upto);
    cr_assert_not_null(b);
    memmove(a, b, strlen(b) + 1);
    assemble(dst, p.header, p.data, p.data_len);
    parts_free(&p);
}

/* ---- models ---- */

/* Every layer kind, with every spec field set to something other than its
 * default somewhere, odd characters in a name, a frozen layer, and all
 * tensors (moving statistics too) filled with random values. */
/* full_model's layers: the frozen Dense with the odd name, the first batch norm */
enum { FROZEN = 4, BATCH_NORM = 3 };

static nb_model *full_model(uint64_t seed) {
    nb_model *m = nb_model_new(3, (int[]){2, 3, 2}, seed);
    cr_assert_not_null(m, "%s", nb_last_error());
    nb_layer_spec norm = {.kind = NB_LAYER_NORMALIZATION}, flat = {.kind = NB_LAYER_FLATTEN};
    nb_layer_spec d1 = nb_dense_spec(8, "prelu", "he_normal");
    d1.kernel_reg = (nb_regularizer){1e-4f, 1e-3f};
    d1.max_norm = 3;
    d1.max_norm_axis = 1;
    nb_layer_spec bn = nb_batch_norm_spec();
    bn.momentum = 0.9f;
    bn.epsilon = 1e-5f;
    nb_layer_spec d2 = nb_dense_spec(6, "elu", "variance_scaling(1.5,fan_avg,truncated_normal)");
    d2.no_bias = true;
    d2.alpha = 0.5f;
    snprintf(d2.name, sizeof d2.name, "hid\"den\\\xc3\xa4\t/x"); /* quote, backslash, ä, tab, slash */
    nb_layer_spec ln = {.kind = NB_LAYER_LAYER_NORM, .no_center = true, .epsilon = 1e-6f};
    nb_layer_spec dr = nb_dropout_spec(0.25f), adr = nb_alpha_dropout_spec(0.1f);
    nb_layer_spec act = nb_activation_spec("leaky_relu");
    act.alpha = 0.3f;
    nb_layer_spec bn2 = nb_batch_norm_spec();
    bn2.no_scale = true;
    nb_layer_spec d3 = nb_dense_spec(3, "softmax", NULL);
    const nb_layer_spec *specs[] = {&norm, &flat, &d1, &bn, &d2, &ln, &dr, &adr, &act, &bn2, &d3};
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
        cr_assert_not_null(nb_model_add(m, specs[i]), "layer %zu: %s", i, nb_last_error());
    nb_layer_set_trainable(nb_model_layer(m, FROZEN), false);
    nb_tensor *const *t;
    int n = nb_model_tensors(m, &t);
    nb_rng r;
    nb_rng_seed(&r, seed, 5);
    for (int i = 0; i < n; i++) {
        bool variance = strstr(t[i]->name, "variance") != NULL; /* must stay positive */
        for (size_t k = 0; k < t[i]->size; k++)
            t[i]->data[k] = variance ? 0.5f + nb_rng_uniform(&r) : nb_rng_normal(&r);
    }
    return m;
}

/* input [4] -> Dense(3) -> BatchNormalization: tensors dense/kernel [4,3]
 * at [0,48], dense/bias [3] at [48,60], then gamma, beta, moving_mean and
 * moving_variance, 12 bytes each, to 108. */
static nb_model *small_model(uint64_t seed) {
    nb_model *m = nb_model_new(1, (int[]){4}, seed);
    nb_layer_spec d = nb_dense_spec(3, "relu", NULL), bn = nb_batch_norm_spec();
    cr_assert_not_null(nb_model_add(m, &d));
    cr_assert_not_null(nb_model_add(m, &bn));
    nb_tensor *const *t;
    int n = nb_model_tensors(m, &t);
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < t[i]->size; k++) t[i]->data[k] = (float)(i * 10 + (int)k) + 0.25f * (float)seed;
    return m;
}

static bool same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

static void assert_same_model(const nb_model *a, const nb_model *b) {
    int da[4], db[4];
    int ra = nb_model_input_dims(a, da), rb = nb_model_input_dims(b, db);
    cr_assert_eq(ra, rb);
    cr_assert_arr_eq(da, db, (size_t)ra * sizeof(int));
    cr_assert_eq(nb_model_layer_count(a), nb_model_layer_count(b));
    for (int i = 0; i < nb_model_layer_count(a); i++) {
        const nb_layer *la = nb_model_layer(a, i), *lb = nb_model_layer(b, i);
        const nb_layer_spec *x = nb_layer_spec_of(la), *y = nb_layer_spec_of(lb);
        cr_assert_eq(x->kind, y->kind, "layer %d", i);
        cr_assert_str_eq(x->name, y->name);
        cr_assert_str_eq(nb_layer_name(la), nb_layer_name(lb));
        cr_assert_eq(x->units, y->units);
        cr_assert_str_eq(x->kernel_init, y->kernel_init);
        cr_assert_eq(x->no_bias, y->no_bias);
        cr_assert(same_bits(x->kernel_reg.l1, y->kernel_reg.l1) && same_bits(x->kernel_reg.l2, y->kernel_reg.l2));
        cr_assert(same_bits(x->max_norm, y->max_norm));
        cr_assert_eq(x->max_norm_axis, y->max_norm_axis);
        cr_assert_str_eq(x->activation, y->activation);
        cr_assert(same_bits(x->alpha, y->alpha), "layer %d alpha %g vs %g", i, x->alpha, y->alpha);
        cr_assert(same_bits(x->rate, y->rate));
        cr_assert(same_bits(x->momentum, y->momentum));
        cr_assert(same_bits(x->epsilon, y->epsilon), "layer %d epsilon %g vs %g", i, x->epsilon, y->epsilon);
        cr_assert_eq(x->no_center, y->no_center);
        cr_assert_eq(x->no_scale, y->no_scale);
        cr_assert_eq(nb_layer_trainable(la), nb_layer_trainable(lb), "layer %d", i);
        ra = nb_layer_output_dims(la, da);
        rb = nb_layer_output_dims(lb, db);
        cr_assert_eq(ra, rb);
        cr_assert_arr_eq(da, db, (size_t)ra * sizeof(int));
    }
    nb_tensor *const *ta, *const *tb;
    int na = nb_model_tensors(a, &ta), nbt = nb_model_tensors(b, &tb);
    cr_assert_eq(na, nbt);
    for (int i = 0; i < na; i++) {
        cr_assert_str_eq(ta[i]->name, tb[i]->name);
        cr_assert_eq(ta[i]->shape.rank, tb[i]->shape.rank);
        cr_assert_arr_eq(ta[i]->shape.dim, tb[i]->shape.dim, (size_t)ta[i]->shape.rank * sizeof(int));
        cr_assert_eq(ta[i]->trainable, tb[i]->trainable, "%s", ta[i]->name);
        cr_assert_arr_eq(ta[i]->data, tb[i]->data, ta[i]->size * sizeof(float), "%s differs", ta[i]->name);
    }
}

static nb_model *save_and_load(const nb_model *m, const char *path) {
    cr_assert_eq(nb_model_save(m, path), NB_OK, "%s", nb_last_error());
    nb_model *back = nb_model_load(path);
    cr_assert_not_null(back, "%s", nb_last_error());
    return back;
}

/* nb_model_load fails, saying what and naming the file. */
static void refused(const char *path, const char *what) {
    nb_model *m = nb_model_load(path);
    cr_assert_null(m, "loaded a file that should fail with '%s'", what);
    cr_assert(strstr(nb_last_error(), what), "message '%s' lacks '%s'", nb_last_error(), what);
    cr_assert(strstr(nb_last_error(), path), "message '%s' does not name the file", nb_last_error());
}

/* ---- round trips ---- */

Test(nn_save, round_trip_keeps_every_layer_spec_name_flag_and_bit) {
    tdir d = tdir_new();
    nb_model *m = full_model(11);
    nb_model *back = save_and_load(m, in_dir(&d, "m.safetensors"));
    assert_same_model(m, back);
    /* the frozen layer and the odd name came back as such */
    cr_assert_not(nb_layer_trainable(nb_model_layer(back, FROZEN)));
    cr_assert_str_eq(nb_layer_name(nb_model_layer(back, FROZEN)), "hid\"den\\\xc3\xa4\t/x");
    cr_assert_str_eq(nb_layer_tensor(nb_model_layer(back, FROZEN), 0)->name, "hid\"den\\\xc3\xa4\t/x/kernel");
    cr_assert_not(nb_layer_tensor(nb_model_layer(back, BATCH_NORM), 2)->trainable); /* moving_mean */
    cr_assert_str_eq(nb_layer_tensor(nb_model_layer(back, 0), 1)->name, "normalization/variance");
    nb_model_free(m);
    nb_model_free(back);
    tdir_free(&d);
}

Test(nn_save, a_loaded_model_infers_exactly_like_the_saved_one) {
    tdir d = tdir_new();
    nb_model *m = full_model(12);
    nb_model *back = save_and_load(m, in_dir(&d, "m.safetensors"));
    float out[2][5 * 3];
    float x[5 * 12];
    nb_rng r;
    nb_rng_seed(&r, 3, 0);
    for (int i = 0; i < 60; i++) x[i] = nb_rng_normal(&r);
    nb_model *models[2] = {m, back};
    for (int k = 0; k < 2; k++) {
        nb_graph *g = nb_graph_new();
        nb_node *in = nb_input(g, "x", 4, (int[]){5, 2, 3, 2});
        nb_node *y = nb_model_apply(models[k], g, in, false);
        nb_feed(g, in, x, 5);
        nb_forward(g, NB_INFERENCE);
        t_ok(g);
        memcpy(out[k], nb_node_value(y), sizeof out[k]);
        nb_graph_free(g);
    }
    for (int i = 0; i < 15; i++) cr_assert(isfinite(out[0][i]), "output %d is %g", i, out[0][i]);
    cr_assert_arr_eq(out[0], out[1], sizeof out[0]);
    nb_model_free(m);
    nb_model_free(back);
    tdir_free(&d);
}

Test(nn_save, the_seed_comes_back_so_a_layer_added_after_loading_is_the_same) {
    tdir d = tdir_new();
    nb_model *m = full_model(0xFEDCBA9876543210ull); /* above 2^53: must stay exact */
    nb_model *back = save_and_load(m, in_dir(&d, "m.safetensors"));
    nb_layer_spec more = nb_dense_spec(4, NULL, "glorot_normal");
    nb_layer *a = nb_model_add(m, &more), *b = nb_model_add(back, &more);
    cr_assert(a && b);
    cr_assert_arr_eq(nb_layer_tensor(a, 0)->data, nb_layer_tensor(b, 0)->data, 3 * 4 * sizeof(float));
    nb_model_free(m);
    nb_model_free(back);
    tdir_free(&d);
}

Test(nn_save, an_empty_model_round_trips) {
    tdir d = tdir_new();
    nb_model *m = nb_model_new(2, (int[]){5, 7}, 3);
    nb_model *back = save_and_load(m, in_dir(&d, "e.safetensors"));
    assert_same_model(m, back);
    nb_model_free(m);
    nb_model_free(back);
    tdir_free(&d);
}

Test(nn_save, non_finite_values_and_signed_zeros_round_trip) {
    tdir d = tdir_new();
    nb_model *m = nb_model_new(1, (int[]){3}, 1);
    nb_layer_spec s = nb_dense_spec(2, NULL, NULL);
    s.rate = NAN;           /* fields a Dense lacks may hold anything: they are not kept */
    s.momentum = INFINITY;
    s.epsilon = -INFINITY;
    s.alpha = -0.0f;
    s.kernel_reg.l2 = 1e-45f; /* the smallest subnormal */
    nb_layer *l = nb_model_add(m, &s);
    cr_assert_not_null(l, "%s", nb_last_error());
    float *w = nb_layer_tensor(l, 0)->data;
    w[0] = NAN;
    w[1] = -INFINITY;
    w[2] = -0.0f;
    w[3] = 1e-45f;
    w[4] = 3.4028235e38f;
    nb_model *back = save_and_load(m, in_dir(&d, "n.safetensors"));
    assert_same_model(m, back);
    cr_assert(nb_layer_spec_of(nb_model_layer(back, 0))->rate == 0);
    cr_assert(nb_layer_spec_of(nb_model_layer(m, 0))->momentum == 0);
    cr_assert(signbit(nb_layer_spec_of(nb_model_layer(back, 0))->alpha));
    cr_assert(nb_layer_spec_of(nb_model_layer(back, 0))->kernel_reg.l2 == 1e-45f);
    nb_model_free(m);
    nb_model_free(back);
    tdir_free(&d);
}

Test(nn_save, numbers_are_written_in_the_c_locale) {
    /* a comma-decimal locale must not turn 0.25 into "0,25": use an installed
     * one, or compile de_DE into the test's folder */
    tdir d = tdir_new();
    const char *names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8"};
    const char *got = NULL;
    for (size_t i = 0; !got && i < 4; i++) got = setlocale(LC_NUMERIC, names[i]);
    if (!got && access("/usr/bin/localedef", X_OK) == 0) {
        char cmd[256];
        snprintf(cmd, sizeof cmd, "/usr/bin/localedef -i de_DE -f UTF-8 %s >/dev/null 2>&1", in_dir(&d, "de_DE.UTF-8"));
        if (system(cmd) == 0) {
            setenv("LOCPATH", d.path, 1);
            got = setlocale(LC_NUMERIC, "de_DE.UTF-8");
        }
    }
    cr_assert_not_null(got, "no comma-decimal locale could be set or compiled (scripts/setup.sh installs locales)");
    cr_assert_str_eq(localeconv()->decimal_point, ",");
    nb_model *m = full_model(4);
    nb_model *back = save_and_load(m, in_dir(&d, "l.safetensors"));
    setlocale(LC_NUMERIC, "C");
    assert_same_model(m, back);
    parts p = split(in_dir(&d, "l.safetensors"));
    cr_assert(strstr(p.header, "\\\"rate\\\":0.25"), "%s", p.header);
    parts_free(&p);
    nb_model_free(m);
    nb_model_free(back);
    tdir_free(&d);
}

/* ---- the file itself ---- */

/* Bitwise CRC-32 (reflected 0xEDB88320, zlib's), written from the definition. */
static uint32_t crc32_ref(uint32_t crc, const unsigned char *p, size_t n) {
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = crc & 1 ? crc >> 1 ^ 0xEDB88320u : crc >> 1;
    }
    return ~crc;
}

Test(nn_save, the_file_follows_the_safetensors_layout) {
    tdir d = tdir_new();
    nb_model *m = small_model(1);
    const char *path = in_dir(&d, "s.safetensors");
    cr_assert_eq(nb_model_save(m, path), NB_OK, "%s", nb_last_error());
    size_t len;
    unsigned char *b = slurp(path, &len);
    uint64_t n = le64(b);
    cr_assert_eq((8 + n) % 8, 0, "the data must start 8-aligned");
    cr_assert_eq(b[8], '{');
    size_t end = 8 + n;
    while (b[end - 1] == ' ') end--;
    cr_assert_eq(b[end - 1], '}', "only spaces may pad the header");
    cr_assert_lt(n - (end - 8), 8);
    char *h = strndup((const char *)b + 8, n);
    cr_assert(strstr(h, "\"__metadata__\":{\"format\":\"nabla\",\"nabla_version\":\"1\",\"architecture\":\""), "%s", h);
    /* dense/kernel and dense/bias: their entries, then their bytes */
    const char *names[] = {"dense/kernel", "dense/bias"};
    const char *shapes[] = {"[4,3]", "[3]"};
    size_t total = 0;
    for (int t = 0; t < 2; t++) {
        char key[64], shape[16];
        unsigned long long b0, b1;
        snprintf(key, sizeof key, "\"%s\":{\"dtype\":\"F32\",\"shape\":", names[t]);
        char *at = strstr(h, key);
        cr_assert_not_null(at, "%s", h);
        cr_assert_eq(sscanf(at + strlen(key), "%15[^]]],\"data_offsets\":[%llu,%llu]}", shape, &b0, &b1), 3, "%s", at);
        strcat(shape, "]");
        cr_assert_str_eq(shape, shapes[t]);
        const nb_tensor *tensor = nb_layer_tensor(nb_model_layer(m, 0), t);
        cr_assert_eq(b1 - b0, 4 * tensor->size);
        cr_assert_eq(b0, total, "tensors are stored in model order");
        total = b1;
        for (size_t k = 0; k < tensor->size; k++) {
            uint32_t u;
            memcpy(&u, &tensor->data[k], 4);
            const unsigned char *p = b + 8 + n + b0 + 4 * k;
            cr_assert(p[0] == (u & 0xFF) && p[1] == (u >> 8 & 0xFF) && p[2] == (u >> 16 & 0xFF) && p[3] == u >> 24,
                      "%s[%zu] is not little-endian float32", names[t], k);
        }
    }
    cr_assert_eq(len, 8 + n + 108, "six tensors of 12 floats, 3 and 4×3, and nothing more");
    /* the checksum: CRC-32 of the architecture (unescaped: it has no escapes
     * here) and then the data, in model order = file order here */
    char *arch = strstr(h, "\"architecture\":\"") + strlen("\"architecture\":\"");
    char *arch_end = strstr(arch, "\",\"weights_crc32\":\"");
    cr_assert_not_null(arch_end);
    size_t alen = (size_t)(arch_end - arch);
    char *unesc = malloc(alen + 1);
    size_t u = 0;
    for (size_t i = 0; i < alen; i++) {
        cr_assert(arch[i] != '\\' || arch[i + 1] == '"', "only \\\" escapes expected");
        if (arch[i] == '\\') i++;
        unesc[u++] = arch[i];
    }
    uint32_t crc = crc32_ref(0, (const unsigned char *)unesc, u);
    crc = crc32_ref(crc, b + 8 + n, 108);
    char want[16];
    snprintf(want, sizeof want, "%08x", crc);
    cr_assert_eq(strncmp(arch_end + strlen("\",\"weights_crc32\":\""), want, 8), 0, "crc %s in %s", want, h);
    free(unesc);
    free(h);
    free(b);
    nb_model_free(m);
    tdir_free(&d);
}

/* A reader in Python that knows nothing of nabla: checks the layout as the
 * format describes it and prints dense/bias; with the safetensors package
 * (and numpy) installed, reads the file with it too. */
static const char *py_reader =
    "import json, struct, sys\n"
    "b = open(sys.argv[1], 'rb').read()\n"
    "n = struct.unpack('<Q', b[:8])[0]\n"
    "assert (8 + n) % 8 == 0\n"
    "h = json.loads(b[8:8 + n].decode('utf-8'))\n"
    "meta = h.pop('__metadata__')\n"
    "assert meta['format'] == 'nabla' and all(isinstance(v, str) for v in meta.values())\n"
    "arch = json.loads(meta['architecture'])\n"
    "assert [l['class_name'] for l in arch['layers']] == ['Dense', 'BatchNormalization']\n"
    "spans = sorted(tuple(v['data_offsets']) for v in h.values())\n"
    "assert spans[0][0] == 0 and all(a[1] == c[0] for a, c in zip(spans, spans[1:]))\n"
    "assert 8 + n + spans[-1][1] == len(b)\n"
    "o = h['dense/bias']['data_offsets']\n"
    "bias = struct.unpack('<3f', b[8 + n + o[0]:8 + n + o[1]])\n"
    "try:\n"
    "    import numpy, safetensors.numpy\n"
    "    t = safetensors.numpy.load_file(sys.argv[1])\n"
    "    assert t['dense/bias'].tolist() == list(bias) and t['dense/kernel'].shape == (4, 3)\n"
    "    print('safetensors', end=' ')\n"
    "except ImportError:\n"
    "    pass\n"
    "print(' '.join(repr(x) for x in bias))\n";

Test(nn_save, python_reads_the_file) {
    cr_assert_eq(access("/usr/bin/python3", X_OK), 0, "no /usr/bin/python3 (scripts/setup.sh installs it)");
    tdir d = tdir_new();
    nb_model *m = small_model(3);
    cr_assert_eq(nb_model_save(m, in_dir(&d, "p.safetensors")), NB_OK, "%s", nb_last_error());
    spill(in_dir(&d, "read.py"), py_reader, strlen(py_reader));
    char cmd[512];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s 2>&1", in_dir(&d, "read.py"), in_dir(&d, "p.safetensors"));
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char out[512] = {0};
    size_t got = fread(out, 1, sizeof out - 1, p);
    out[got] = '\0';
    cr_assert_eq(pclose(p), 0, "python: %s", out);
    const char *vals = strncmp(out, "safetensors ", 12) == 0 ? out + 12 : out;
    const float *bias = nb_layer_tensor(nb_model_layer(m, 0), 1)->data;
    char *e = (char *)vals;
    for (int i = 0; i < 3; i++) cr_assert_eq((float)strtod(e, &e), bias[i], "python read %s", out);
    nb_model_free(m);
    tdir_free(&d);
}

/* ---- atomic saves ---- */

Test(nn_save, a_save_replaces_the_old_file_whole_with_the_usual_permissions) {
    tdir d = tdir_new();
    const char *path = in_dir(&d, "m.safetensors");
    spill(path, "old contents", 12);
    mode_t old = umask(022);
    nb_model *m = small_model(1);
    cr_assert_eq(nb_model_save(m, path), NB_OK, "%s", nb_last_error());
    umask(old);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0644, "mode %o: 0666 less the umask, like any new file", st.st_mode & 0777);
    nb_model *back = nb_model_load(path);
    cr_assert_not_null(back, "%s", nb_last_error());
    assert_same_model(m, back);
    cr_assert_eq(count_entries(d.path, ""), 1, "no temporary file left");
    nb_model_free(m);
    nb_model_free(back);
    tdir_free(&d);
}

Test(nn_save, a_save_into_a_missing_folder_fails) {
    tdir d = tdir_new();
    nb_model *m = small_model(1);
    const char *path = in_dir(&d, "nope/m.safetensors");
    cr_assert_eq(nb_model_save(m, path), NB_ERROR);
    cr_assert(strstr(nb_last_error(), path) && strstr(nb_last_error(), "No such file"), "%s", nb_last_error());
    cr_assert_eq(count_entries(d.path, ""), 0);
    nb_model_free(m);
    tdir_free(&d);
}

/* The rename fails after the whole temporary file is written: it must go. */
Test(nn_save, a_failed_rename_leaves_the_target_and_no_temporary_file) {
    tdir d = tdir_new();
    const char *dir = in_dir(&d, "taken");
    cr_assert_eq(mkdir(dir, 0755), 0);
    spill(in_dir(&d, "taken/inside"), "x", 1);
    nb_model *m = small_model(1);
    cr_assert_eq(nb_model_save(m, dir), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "renaming"), "%s", nb_last_error());
    struct stat st;
    cr_assert(stat(dir, &st) == 0 && S_ISDIR(st.st_mode));
    cr_assert_eq(count_entries(dir, ""), 1);
    cr_assert_eq(count_entries(d.path, ".tmp."), 0, "the temporary file was left behind");
    nb_model_free(m);
    tdir_free(&d);
}

/* A write that fails half way (the file size limit stands in for a full
 * disk, and works as root too) leaves the previous file byte for byte. */
Test(nn_save, a_failed_write_leaves_the_previous_file_untouched) {
    tdir d = tdir_new();
    const char *path = in_dir(&d, "m.safetensors");
    nb_model *small = small_model(1);
    cr_assert_eq(nb_model_save(small, path), NB_OK);
    size_t len0;
    unsigned char *before = slurp(path, &len0);
    nb_model *big = nb_model_new(1, (int[]){200}, 1);
    nb_layer_spec s = nb_dense_spec(100, NULL, NULL);
    cr_assert_not_null(nb_model_add(big, &s));
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old, lim;
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 4096;
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    nb_status st = nb_model_save(big, path);
    setrlimit(RLIMIT_FSIZE, &old);
    cr_assert_eq(st, NB_ERROR);
    cr_assert(strstr(nb_last_error(), "File too large") && strstr(nb_last_error(), "untouched"), "%s",
              nb_last_error());
    size_t len1;
    unsigned char *after = slurp(path, &len1);
    cr_assert_eq(len0, len1);
    cr_assert_arr_eq(before, after, len0);
    cr_assert_eq(count_entries(d.path, ""), 1, "the temporary file was left behind");
    free(before);
    free(after);
    nb_model_free(small);
    nb_model_free(big);
    tdir_free(&d);
}

Test(nn_save, a_save_into_a_read_only_folder_fails_and_keeps_the_old_file) {
    if (geteuid() == 0) cr_skip_test("root writes anywhere");
    tdir d = tdir_new();
    const char *path = in_dir(&d, "m.safetensors");
    spill(path, "old", 3);
    chmod(d.path, 0555);
    nb_model *m = small_model(1);
    nb_status st = nb_model_save(m, path);
    chmod(d.path, 0755);
    cr_assert_eq(st, NB_ERROR);
    cr_assert(strstr(nb_last_error(), "Permission denied"), "%s", nb_last_error());
    size_t len;
    unsigned char *b = slurp(path, &len);
    cr_assert(len == 3 && memcmp(b, "old", 3) == 0);
    cr_assert_eq(count_entries(d.path, ""), 1);
    free(b);
    nb_model_free(m);
    tdir_free(&d);
}

/* ---- what a save refuses ---- */

Test(nn_save, names_that_are_not_utf8_are_refused) {
    tdir d = tdir_new();
    nb_model *m = nb_model_new(1, (int[]){2}, 1);
    nb_layer_spec s = nb_dense_spec(2, NULL, NULL);
    snprintf(s.name, sizeof s.name, "bad\xff");
    cr_assert_not_null(nb_model_add(m, &s));
    const char *path = in_dir(&d, "u.safetensors");
    cr_assert_eq(nb_model_save(m, path), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "UTF-8") && strstr(nb_last_error(), path), "%s", nb_last_error());
    cr_assert_eq(count_entries(d.path, ""), 0);
    nb_model_free(m);
    tdir_free(&d);
}

/* Layer names must key the tensors uniquely. nb_model_add may let a
 * generated name repeat a caller's ("dense_1" twice); if it does, the save
 * must refuse rather than write two entries with one key. */
Test(nn_save, two_tensors_with_one_name_are_refused) {
    tdir d = tdir_new();
    nb_model *m = nb_model_new(1, (int[]){2}, 1);
    nb_layer_spec named = nb_dense_spec(2, NULL, NULL), anon = nb_dense_spec(2, NULL, NULL);
    snprintf(named.name, sizeof named.name, "dense_1");
    cr_assert_not_null(nb_model_add(m, &named));
    nb_layer *l = nb_model_add(m, &anon); /* the second Dense: "dense_1" again, unless the model prevents it */
    nb_status st = nb_model_save(m, in_dir(&d, "dup.safetensors"));
    if (l && strcmp(nb_layer_name(l), "dense_1") == 0) {
        cr_assert_eq(st, NB_ERROR);
        cr_assert(strstr(nb_last_error(), "two tensors are named \"dense_1/kernel\""), "%s", nb_last_error());
    } else {
        cr_assert_eq(st, NB_OK, "%s", nb_last_error());
    }
    nb_model_free(m);
    tdir_free(&d);
}

Test(nn_save, null_arguments_are_errors) {
    nb_model *m = small_model(1);
    cr_assert_eq(nb_model_save(NULL, "/tmp/x"), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "model is NULL"));
    cr_assert_eq(nb_model_save(m, NULL), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "no path"));
    cr_assert_eq(nb_model_save(m, ""), NB_ERROR);
    cr_assert_null(nb_model_load(NULL));
    cr_assert(strstr(nb_last_error(), "no path"));
    cr_assert_eq(nb_model_load_weights(NULL, "/tmp/x"), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "model is NULL"));
    cr_assert_eq(nb_model_load_weights(m, NULL), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "no path"));
    nb_model_free(m);
}

/* ---- broken files ---- */

/* A good file of small_model in a fresh folder. */
static const char *good_file(tdir *d) {
    nb_model *m = small_model(1);
    const char *path = in_dir(d, "good.safetensors");
    cr_assert_eq(nb_model_save(m, path), NB_OK, "%s", nb_last_error());
    nb_model_free(m);
    return path;
}

Test(nn_save, files_that_are_not_safetensors_are_refused) {
    tdir d = tdir_new();
    refused(in_dir(&d, "missing.safetensors"), "No such file");
    refused(d.path, "not a regular file");
    cr_assert_eq(mkfifo(in_dir(&d, "fifo"), 0600), 0);
    refused(in_dir(&d, "fifo"), "not a regular file"); /* without waiting for a writer */
    const char *p = in_dir(&d, "x");
    spill(p, "short", 5);
    refused(p, "5 bytes, too short");
    unsigned char absurd[16] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, '{', '}'};
    spill(p, absurd, sizeof absurd);
    refused(p, "absurd (over 100 MB)");
    unsigned char past[16] = {0xE8, 0x03, 0, 0, 0, 0, 0, 0, '{', '}'}; /* 1000 bytes of header in 16 */
    spill(p, past, sizeof past);
    refused(p, "header length 1000 runs past the end of the file (16 bytes)");
    assemble(p, "[1,2,3]", NULL, 0);
    refused(p, "not a JSON object");
    assemble(p, "{\"a\":1,}", NULL, 0);
    refused(p, "not valid JSON (byte 8: string or '}' expected");
    assemble(p, "{\"a\":1,\"a\":2}", NULL, 0);
    refused(p, "duplicate object key near '\"a\"'");
    assemble(p, "{\"a\":\"\xc3\x28\"}", NULL, 0);
    refused(p, "unable to decode byte 0xc3");
    assemble(p, "{\"a\":\"\\u0000\"}", NULL, 0);
    refused(p, "\\u0000 is not allowed");
    assemble(p, "{\"__metadata__\":{\"format\":1}}", NULL, 0);
    refused(p, "__metadata__ must map strings to strings");
    tdir_free(&d);
}

Test(nn_save, headers_missing_what_a_model_needs_are_refused) {
    tdir d = tdir_new();
    const char *good = good_file(&d), *p = in_dir(&d, "bad.safetensors");
    cut(good, p, "\"__metadata__\"", "\"dense/kernel\"");
    refused(p, "no __metadata__");
    edit(good, p, "\"format\"", "\"formax\"", 0);
    refused(p, "no format in __metadata__");
    edit(good, p, "\"format\":\"nabla\"", "\"format\":\"keras\"", 0);
    refused(p, "format is \"keras\", not \"nabla\"");
    edit(good, p, "\"nabla_version\":\"1\"", "\"nabla_version\":\"9\"", 0);
    refused(p, "nabla_version is \"9\"");
    edit(good, p, "\"architecture\"", "\"architectura\"", 0);
    refused(p, "no architecture in __metadata__");
    edit(good, p, "\"weights_crc32\"", "\"weights_crc33\"", 0);
    refused(p, "no weights_crc32");
    edit(good, p, "\\\"layers\\\":[", "\\\"layers\\\":[[", 0);
    refused(p, "the architecture is not valid JSON");
    edit(good, p, "\\\"class_name\\\":\\\"Dense\\\"", "\\\"class_name\\\":\\\"Conv2D\\\"", 0);
    refused(p, "layer 0 has unknown kind \"Conv2D\"");
    edit(good, p, "\\\"units\\\":3", "\\\"units\\\":0", 0);
    refused(p, "layer 0 (\"dense\"): Dense: units is 0");
    edit(good, p, "\\\"units\\\":3", "\\\"units\\\":\\\"3\\\"", 0);
    refused(p, "layer 0: units is not an integer");
    edit(good, p, "\\\"units\\\":3", "\\\"units\\\":3.5", 0);
    refused(p, "layer 0: units is not an integer");
    edit(good, p, "\\\"units\\\":3", "\\\"units\\\":1e300", 0);
    refused(p, "layer 0: units is not an integer");
    /* refused before its 32 GB kernel is allocated */
    edit(good, p, "\\\"units\\\":3", "\\\"units\\\":2000000000", 0);
    refused(p, "layer 0 (\"dense\") needs more weights than the file's 108 bytes of data");
    edit(good, p, "\\\"input_shape\\\":[4]", "\\\"input_shape\\\":[1000000000]", 0);
    refused(p, "needs more weights");
    edit(good, p, "\\\"input_shape\\\":[4]", "\\\"input_shape\\\":[4,0]", 0);
    refused(p, "input_shape has a bad size");
    /* 10001 more layers: refused before any is made */
    char *many = malloc(10001 * 3 + 32), *e = many;
    e += sprintf(e, "\\\"layers\\\":[");
    for (int i = 0; i < 10001; i++) e += sprintf(e, "{},");
    edit(good, p, "\\\"layers\\\":[", many, 0);
    refused(p, "the architecture lists 10003 layers; nabla loads at most 10000");
    free(many);
    tdir_free(&d);
}

Test(nn_save, tensors_that_do_not_fit_the_format_or_the_model_are_refused) {
    tdir d = tdir_new();
    const char *good = good_file(&d), *p = in_dir(&d, "bad.safetensors");
    edit(good, p, "\"F32\"", "\"F16\"", 0);
    refused(p, "tensor \"dense/kernel\" has dtype F16; nabla reads F32 only");
    edit(good, p, "\"shape\":[4,3]", "\"shape\":[3,4]", 0);
    refused(p, "tensor \"dense/kernel\" has shape [3,4] in the file, the model's is [4,3]");
    edit(good, p, "\"data_offsets\":[0,48]", "\"data_offsets\":[0,44]", 0);
    refused(p, "data_offsets [0,44] hold 44 bytes, shape [4,3] needs 48");
    edit(good, p, "\"data_offsets\":[48,60]", "\"data_offsets\":[44,56]", 0);
    refused(p, "tensors \"dense/kernel\" and \"dense/bias\" overlap");
    edit(good, p, "\"data_offsets\":[96,108]", "\"data_offsets\":[100,112]", 4);
    refused(p, "data bytes 96 to 100 belong to no tensor");
    edit(good, p, "\"data_offsets\":[96,108]", "\"data_offsets\":[108,120]", 0);
    refused(p, "ends at byte 120 of the data, which has 108");
    edit(good, p, "\"data_offsets\":[0,48]", "\"data_offsets\":[48,0]", 0);
    refused(p, "end before they begin");
    const char *extra = ",\"extra\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[108,112]},\"dense/kernel\":";
    edit(good, p, ",\"dense/kernel\":", extra, 0);
    refused(p, "ends at byte 112");
    edit(good, p, ",\"dense/kernel\":", extra, 4);
    refused(p, "unexpected tensor \"extra\"");
    edit(good, p, "\"dense/bias\":", "\"dense/bjas\":", 0);
    refused(p, "tensor \"dense/bias\" is missing");
    edit(good, p, "\"dense/bias\":", "\"dense/bias\":", 4);
    refused(p, "the file is 4 bytes longer than its header says");
    edit(good, p, "\"dense/bias\":", "\"dense/bias\":", -4);
    refused(p, "(truncated?)");
    edit(good, p, "\"shape\":[4,3]", "\"shape\":[4,3,1,1,1]", 0);
    refused(p, "rank 5");
    edit(good, p, "\"shape\":[4,3]", "\"shape\":[2147483647,2147483647,2147483647,4]", 0);
    refused(p, "too large to address");
    edit(good, p, "\"shape\":[4,3]", "\"shape\":[65536,65536,65536,65536]", 0); /* 4·2^64 wraps to 0 */
    refused(p, "too large to address");
    tdir_free(&d);
}

Test(nn_save, a_changed_weight_fails_the_checksum) {
    tdir d = tdir_new();
    const char *good = good_file(&d), *p = in_dir(&d, "bad.safetensors");
    size_t len;
    unsigned char *b = slurp(good, &len);
    b[len - 50] ^= 0x01; /* one bit of a weight */
    spill(p, b, len);
    refused(p, "checksum mismatch");
    nb_model *m = small_model(9);
    cr_assert_eq(nb_model_load_weights(m, p), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "checksum mismatch"), "%s", nb_last_error());
    free(b);
    nb_model_free(m);
    tdir_free(&d);
}

/* Every truncation and every single-bit flip (one per byte, all eight in the
 * length prefix) must be refused with a message; load_weights must either
 * refuse and leave the model alone or, if only metadata it ignores was hit,
 * load the right weights. */
Test(nn_save, every_truncation_and_bit_flip_is_refused, .timeout = 300) {
    tdir d = tdir_new();
    const char *good = good_file(&d), *p = in_dir(&d, "fuzz.safetensors");
    nb_model *orig = small_model(1), *target = small_model(7), *pristine = small_model(7);
    size_t len;
    unsigned char *b = slurp(good, &len);
    for (size_t cut_at = 0; cut_at < len; cut_at++) {
        spill(p, b, cut_at);
        nb_model *m = nb_model_load(p);
        cr_assert_null(m, "a file cut to %zu of %zu bytes loaded", cut_at, len);
        cr_assert(strstr(nb_last_error(), p), "%s", nb_last_error());
    }
    for (size_t i = 0; i < len; i++)
        for (int bit = 0; bit < 8; bit++) {
            if (i >= 8 && bit != (int)(i % 8)) continue;
            b[i] ^= (unsigned char)(1u << bit);
            spill(p, b, len);
            b[i] ^= (unsigned char)(1u << bit);
            nb_model *m = nb_model_load(p);
            cr_assert_null(m, "flipping bit %d of byte %zu went unnoticed", bit, i);
            cr_assert(strstr(nb_last_error(), p), "%s", nb_last_error());
            if (nb_model_load_weights(target, p) == NB_OK) {
                assert_same_model(orig, target); /* only the weights: the architectures match */
                nb_model_free(target);
                target = small_model(7);
            } else {
                cr_assert(strstr(nb_last_error(), p), "%s", nb_last_error());
                assert_same_model(pristine, target);
            }
        }
    free(b);
    nb_model_free(orig);
    nb_model_free(target);
    nb_model_free(pristine);
    tdir_free(&d);
}

/* ---- load_weights ---- */

Test(nn_save, load_weights_copies_the_data_and_nothing_else) {
    tdir d = tdir_new();
    nb_model *src = full_model(21), *dst = full_model(22);
    const char *path = in_dir(&d, "w.safetensors");
    cr_assert_eq(nb_model_save(src, path), NB_OK, "%s", nb_last_error());
    nb_layer_set_trainable(nb_model_layer(dst, FROZEN), true);
    nb_layer_set_trainable(nb_model_layer(dst, 2), false);
    cr_assert_eq(nb_model_load_weights(dst, path), NB_OK, "%s", nb_last_error());
    nb_tensor *const *ts, *const *td;
    int n = nb_model_tensors(src, &ts);
    cr_assert_eq(nb_model_tensors(dst, &td), n);
    for (int i = 0; i < n; i++) cr_assert_arr_eq(ts[i]->data, td[i]->data, ts[i]->size * sizeof(float));
    /* the flags are the model's own */
    cr_assert(nb_layer_trainable(nb_model_layer(dst, FROZEN)));
    cr_assert_not(nb_layer_trainable(nb_model_layer(dst, 2)));
    nb_model_free(src);
    nb_model_free(dst);
    tdir_free(&d);
}

Test(nn_save, load_weights_reads_a_file_without_nabla_metadata) {
    tdir d = tdir_new();
    const char *good = good_file(&d), *p = in_dir(&d, "plain.safetensors");
    cut(good, p, "\"__metadata__\"", "\"dense/kernel\"");
    nb_model *m = small_model(5), *want = small_model(1);
    cr_assert_eq(nb_model_load_weights(m, p), NB_OK, "%s", nb_last_error());
    assert_same_model(want, m);
    /* JSON may begin with whitespace, and the reference reads a null __metadata__ as none */
    const char *q = in_dir(&d, "null.safetensors");
    edit(p, q, "{\"dense/kernel\"", " {\"__metadata__\":null,\"dense/kernel\"", 0);
    nb_model_free(m);
    m = small_model(5);
    cr_assert_eq(nb_model_load_weights(m, q), NB_OK, "%s", nb_last_error());
    assert_same_model(want, m);
    refused(q, "no __metadata__");
    nb_model_free(m);
    nb_model_free(want);
    tdir_free(&d);
}

Test(nn_save, load_weights_refuses_another_architecture_and_leaves_the_model) {
    tdir d = tdir_new();
    const char *good = good_file(&d);
    nb_model *pristine = small_model(5);

    nb_model *wider = nb_model_new(1, (int[]){4}, 5);
    nb_layer_spec s = nb_dense_spec(5, "relu", NULL), bn = nb_batch_norm_spec();
    nb_model_add(wider, &s);
    nb_model_add(wider, &bn);
    cr_assert_eq(nb_model_load_weights(wider, good), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "tensor \"dense/kernel\" has shape [4,3] in the file, the model's is [4,5]"),
              "%s", nb_last_error());
    cr_assert(strstr(nb_last_error(), "model load weights"), "%s", nb_last_error());

    nb_model *longer = small_model(5);
    nb_layer_spec extra = nb_dense_spec(2, NULL, NULL);
    nb_model_add(longer, &extra);
    cr_assert_eq(nb_model_load_weights(longer, good), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "tensor \"dense_1/kernel\" is missing"), "%s", nb_last_error());

    nb_model *shorter = nb_model_new(1, (int[]){4}, 5);
    nb_model_add(shorter, &(nb_layer_spec){.kind = NB_LAYER_DENSE, .units = 3, .activation = "relu"});
    cr_assert_eq(nb_model_load_weights(shorter, good), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "unexpected tensor \"batch_normalization/"), "%s", nb_last_error());

    /* the last tensor is the wrong shape: the earlier ones must not have been copied */
    nb_model *late = small_model(5);
    const char *p = in_dir(&d, "late.safetensors");
    edit(good, p, "\"batch_normalization/moving_variance\":{\"dtype\":\"F32\",\"shape\":[3]",
         "\"batch_normalization/moving_variance\":{\"dtype\":\"F32\",\"shape\":[3,1]", 0);
    cr_assert_eq(nb_model_load_weights(late, p), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "moving_variance\" has shape [3,1]"), "%s", nb_last_error());
    assert_same_model(pristine, late);

    nb_model_free(pristine);
    nb_model_free(wider);
    nb_model_free(longer);
    nb_model_free(shorter);
    nb_model_free(late);
    tdir_free(&d);
}

/* Headers cut short at every byte (the length prefix made to match) and
 * headers with a few random bytes overwritten: the JSON reader meets every
 * kind of unexpected end and garbage; nothing may load but the intact file. */
Test(nn_save, cut_and_scrambled_headers_never_load, .timeout = 300) {
    tdir d = tdir_new();
    const char *good = good_file(&d), *p = in_dir(&d, "fuzz.safetensors");
    parts g = split(good);
    while (g.header_len && g.header[g.header_len - 1] == ' ') g.header[--g.header_len] = '\0';
    for (size_t k = 0; k < g.header_len; k++) {
        char *h = strndup(g.header, k);
        assemble(p, h, g.data, g.data_len);
        free(h);
        cr_assert_null(nb_model_load(p), "a header cut to %zu bytes loaded", k);
        cr_assert(nb_last_error()[0]);
    }
    static const char junk[] = "{}[]\",:0123456789.eE-+ \\utfnl\x01\x80\xc3\xff";
    nb_rng r;
    nb_rng_seed(&r, 99, 0);
    nb_model *orig = small_model(1);
    for (int it = 0; it < 3000; it++) {
        char *h = strdup(g.header);
        int changes = 1 + (int)nb_rng_below(&r, 4);
        for (int c = 0; c < changes; c++) {
            size_t at = nb_rng_below(&r, (uint32_t)g.header_len);
            h[at] = nb_rng_below(&r, 2) ? junk[nb_rng_below(&r, sizeof junk - 1)] : (char)(1 + nb_rng_below(&r, 255));
        }
        assemble(p, h, g.data, g.data_len);
        bool same = strcmp(h, g.header) == 0;
        free(h);
        nb_model *m = nb_model_load(p);
        if (m) {
            cr_assert(same, "a scrambled header loaded (iteration %d)", it);
            nb_model_free(m);
        } else {
            cr_assert(strstr(nb_last_error(), p), "%s", nb_last_error());
        }
    }
    nb_model_free(orig);
    parts_free(&g);
    tdir_free(&d);
}

/* ---- transfer learning and state dicts ---- */

/* input [4] -> Dense(5, relu) -> Dense(head) */
static nb_model *two_dense(int head, uint64_t seed) {
    nb_model *m = nb_model_new(1, (int[]){4}, seed);
    nb_layer_spec a = nb_dense_spec(5, "relu", NULL), b = nb_dense_spec(head, NULL, NULL);
    cr_assert(nb_model_add(m, &a) && nb_model_add(m, &b), "%s", nb_last_error());
    return m;
}

Test(nn_save, load_weights_with_options_skips_another_head_and_reports_it) {
    tdir d = tdir_new();
    const char *p = in_dir(&d, "a.safetensors");
    nb_model *a = two_dense(8, 1), *b = two_dense(1, 2), *b0 = two_dense(1, 2);
    cr_assert_eq(nb_model_save(a, p), NB_OK, "%s", nb_last_error());
    cr_assert_eq(nb_model_load_weights(b, p), NB_ERROR, "strict by default");
    cr_assert(strstr(nb_last_error(), "tensor \"dense_1/kernel\" has shape [5,8] in the file, the model's is [5,1]"),
              "%s", nb_last_error());
    nb_load_result res[4];
    nb_load_report rep = {.result = res};
    nb_load_options o = {.skip_mismatched = true};
    cr_assert_eq(nb_model_load_weights_with(b, p, &o, &rep), NB_OK, "%s", nb_last_error());
    cr_assert(rep.loaded == 2 && rep.mismatched == 2 && rep.missing == 0 && rep.unexpected == 0);
    cr_assert(res[0] == NB_LOADED && res[1] == NB_LOADED && res[2] == NB_LOAD_MISMATCHED && res[3] == NB_LOAD_MISMATCHED);
    nb_tensor *const *ta, *const *tb, *const *t0;
    nb_model_tensors(a, &ta), nb_model_tensors(b, &tb), nb_model_tensors(b0, &t0);
    for (int i = 0; i < 2; i++) cr_assert_arr_eq(ta[i]->data, tb[i]->data, ta[i]->size * sizeof(float));
    for (int i = 2; i < 4; i++) cr_assert_arr_eq(t0[i]->data, tb[i]->data, t0[i]->size * sizeof(float), "the head moved");

    /* a longer model: its extra layer is missing from the file */
    nb_model *longer = two_dense(8, 3);
    nb_layer_spec c = nb_dense_spec(2, NULL, NULL);
    nb_model_add(longer, &c);
    o = (nb_load_options){.skip_missing = true};
    rep = (nb_load_report){0};
    cr_assert_eq(nb_model_load_weights_with(longer, p, &o, &rep), NB_OK, "%s", nb_last_error());
    cr_assert(rep.loaded == 4 && rep.missing == 2, "%d %d", rep.loaded, rep.missing);
    /* a shorter one: the file's second layer is unexpected */
    nb_model *shorter = nb_model_new(1, (int[]){4}, 4);
    nb_layer_spec only = nb_dense_spec(5, "relu", NULL);
    nb_model_add(shorter, &only);
    cr_assert_eq(nb_model_load_weights_with(shorter, p, &o, &rep), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "unexpected tensor \"dense_1/"), "%s", nb_last_error());
    o.skip_unexpected = true;
    cr_assert_eq(nb_model_load_weights_with(shorter, p, &o, &rep), NB_OK, "%s", nb_last_error());
    cr_assert(rep.loaded == 2 && rep.unexpected == 2);

    /* a partial load still checks the checksum, through the file's own model */
    size_t len;
    unsigned char *bytes = slurp(p, &len);
    bytes[len - 1] ^= 0x10; /* the head's last bias */
    const char *q = in_dir(&d, "bad.safetensors");
    spill(q, bytes, len);
    free(bytes);
    nb_model *b2 = two_dense(1, 2);
    o = (nb_load_options){.skip_mismatched = true};
    cr_assert_eq(nb_model_load_weights_with(b2, q, &o, NULL), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "checksum mismatch") && strstr(nb_last_error(), q), "%s", nb_last_error());
    assert_same_model(b0, b2);
    nb_model_free(a), nb_model_free(b), nb_model_free(b0), nb_model_free(b2);
    nb_model_free(longer), nb_model_free(shorter);
    tdir_free(&d);
}

Test(nn_save, a_clone_is_the_same_model_with_weights_of_its_own) {
    nb_model *m = full_model(31);
    nb_model *c = nb_model_clone(m);
    cr_assert_not_null(c, "%s", nb_last_error());
    assert_same_model(m, c);
    cr_assert_not(nb_layer_trainable(nb_model_layer(c, FROZEN)));
    /* independent: changing the clone's weights leaves m's bits */
    nb_model *m0 = full_model(31);
    nb_tensor *const *t;
    int n = nb_model_tensors(c, &t);
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < t[i]->size; k++) t[i]->data[k] += 1.0f;
    assert_same_model(m0, m);
    /* the same initializer stream: a layer added to each gets the same weights */
    nb_layer_spec more = nb_dense_spec(4, NULL, "glorot_normal");
    nb_layer *a = nb_model_add(m, &more), *b = nb_model_add(c, &more);
    cr_assert(a && b);
    cr_assert_arr_eq(nb_layer_tensor(a, 0)->data, nb_layer_tensor(b, 0)->data, 3 * 4 * sizeof(float));
    cr_assert_null(nb_model_clone(NULL));
    cr_assert_str_eq(nb_last_error(), "model clone: model is NULL");
    nb_model_free(m), nb_model_free(m0), nb_model_free(c);
}

/* The chapter's transfer learning in small: B reuses A's first layer
 * (shared) and a copy of its second, with a new head. */
Test(nn_save, a_model_built_from_another_s_layers_shares_or_copies_them_as_asked) {
    tdir d = tdir_new();
    nb_model *a = two_dense(6, 41);
    nb_layer_spec head = nb_dense_spec(3, NULL, NULL);
    nb_model_add(a, &head);
    nb_model *b = nb_model_new(1, (int[]){4}, 42);
    nb_layer *s = nb_model_add_from(b, nb_model_layer(a, 0), true);
    nb_layer *c = nb_model_add_from(b, nb_model_layer(a, 1), false);
    cr_assert(s && c, "%s", nb_last_error());
    nb_layer_spec out = nb_dense_spec(1, "sigmoid", NULL);
    nb_layer *o = nb_model_add(b, &out);
    cr_assert_not_null(o, "%s", nb_last_error());
    cr_assert_str_eq(nb_layer_name(o), "dense_2", "named after the layers B holds");
    cr_assert_eq(s, nb_model_layer(a, 0), "shared: the same layer");
    cr_assert_neq(c, nb_model_layer(a, 1), "copied: a layer of its own");
    nb_tensor *ck = nb_layer_tensor(c, 0), *ak = nb_layer_tensor(nb_model_layer(a, 1), 0);
    cr_assert_arr_eq(ck->data, ak->data, ck->size * sizeof(float));
    ck->data[0] += 1;
    cr_assert_neq(ck->data[0], ak->data[0], "the copy's weights are its own");
    /* refused: a shape that does not fit, the same shared layer twice */
    cr_assert_null(nb_model_add_from(b, nb_model_layer(a, 2), true));
    cr_assert_str_eq(nb_last_error(), "model add: Dense 'dense_2' takes [6], the model's output is [1]");
    nb_model *b2 = nb_model_new(1, (int[]){4}, 1);
    cr_assert_not_null(nb_model_add_from(b2, s, true));
    cr_assert_null(nb_model_add_from(b2, s, true));
    cr_assert(strstr(nb_last_error(), "is in the model already"), "%s", nb_last_error());
    nb_model_free(b2);
    /* the shared layer outlives A; B saves and loads as any model */
    nb_layer_set_trainable(s, false);
    nb_model_free(a);
    cr_assert_not(nb_layer_trainable(s));
    nb_model *back = save_and_load(b, in_dir(&d, "b.safetensors"));
    assert_same_model(b, back);
    nb_model_free(back);
    nb_model_free(b);
    /* a layer made alone and shared: the caller's free and the model's each let go */
    nb_rng r;
    nb_rng_seed(&r, 1, 0);
    nb_layer *alone = nb_layer_new(&out, 1, (int[]){4}, &r);
    nb_model *m = nb_model_new(1, (int[]){4}, 1);
    cr_assert_not_null(nb_model_add_from(m, alone, true));
    nb_layer_free(alone);
    cr_assert_eq(nb_layer_tensor_count(nb_model_layer(m, 0)), 2, "the model's hold keeps it");
    nb_model_free(m);
    tdir_free(&d);
}

Test(nn_save, any_named_tensors_save_and_load_as_a_state_dict) {
    tdir d = tdir_new();
    const char *p = in_dir(&d, "state.safetensors");
    nb_tensor *a = nb_tensor_new(2, (int[]){2, 3}), *b = nb_tensor_new(1, (int[]){4});
    nb_tensor_set_name(a, "encoder/w");
    nb_tensor_set_name(b, "step");
    for (int i = 0; i < 6; i++) a->data[i] = (float)i - 2.5f;
    for (int i = 0; i < 4; i++) b->data[i] = (float)(i * i);
    cr_assert_eq(nb_tensors_save(p, 2, (nb_tensor *[]){a, b}), NB_OK, "%s", nb_last_error());
    refused(p, "no __metadata__");
    nb_tensor *a2 = nb_tensor_new(2, (int[]){2, 3}), *b2 = nb_tensor_new(1, (int[]){4});
    nb_tensor_set_name(a2, "encoder/w");
    nb_tensor_set_name(b2, "step");
    nb_load_report rep = {0};
    cr_assert_eq(nb_tensors_load(p, 2, (nb_tensor *[]){b2, a2}, NULL, &rep), NB_OK, "%s", nb_last_error());
    cr_assert_eq(rep.loaded, 2);
    cr_assert_arr_eq(a->data, a2->data, 6 * sizeof(float));
    cr_assert_arr_eq(b->data, b2->data, 4 * sizeof(float));
    /* a model's file is a state dict too, checksum included, in any order */
    nb_model *m = small_model(3);
    const char *q = in_dir(&d, "m.safetensors");
    cr_assert_eq(nb_model_save(m, q), NB_OK, "%s", nb_last_error());
    nb_tensor *const *t;
    nb_model_tensors(m, &t);
    nb_tensor *kernel = nb_tensor_new(2, (int[]){4, 3}), *bias = nb_tensor_new(1, (int[]){3});
    nb_tensor_set_name(kernel, "dense/kernel");
    nb_tensor_set_name(bias, "dense/bias");
    nb_load_options o = {.skip_unexpected = true};
    cr_assert_eq(nb_tensors_load(q, 2, (nb_tensor *[]){bias, kernel}, &o, &rep), NB_OK, "%s", nb_last_error());
    cr_assert(rep.loaded == 2 && rep.unexpected == 4);
    cr_assert_arr_eq(kernel->data, t[0]->data, 12 * sizeof(float));
    cr_assert_arr_eq(bias->data, t[1]->data, 3 * sizeof(float));
    /* all of them in reverse order: the checksum, made in model order, still holds */
    nb_model *m2 = small_model(9);
    nb_tensor *const *t2;
    int n2 = nb_model_tensors(m2, &t2);
    nb_tensor *rev[6];
    for (int i = 0; i < n2; i++) rev[i] = t2[n2 - 1 - i];
    cr_assert_eq(nb_tensors_load(q, n2, rev, NULL, &rep), NB_OK, "%s", nb_last_error());
    assert_same_model(m, m2);
    nb_model_free(m2);
    /* what a save refuses */
    nb_tensor_set_name(b, "encoder/w");
    cr_assert_eq(nb_tensors_save(p, 2, (nb_tensor *[]){a, b}), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "two tensors are named \"encoder/w\"") && strstr(nb_last_error(), p), "%s",
              nb_last_error());
    nb_tensor_set_name(b, "");
    cr_assert_eq(nb_tensors_save(p, 2, (nb_tensor *[]){a, b}), NB_ERROR);
    cr_assert(strstr(nb_last_error(), "cannot key a safetensors entry"), "%s", nb_last_error());
    cr_assert_eq(nb_tensors_save(NULL, 1, &a), NB_ERROR);
    cr_assert_eq(nb_tensors_load(p, 1, (nb_tensor *[]){NULL}, NULL, NULL), NB_ERROR);
    nb_tensor_free(a), nb_tensor_free(b), nb_tensor_free(a2), nb_tensor_free(b2);
    nb_tensor_free(kernel), nb_tensor_free(bias);
    nb_model_free(m);
    tdir_free(&d);
}

/* ---- files written before layer classes ---- */

/* The architecture small_model(1) had when every layer's config held every
 * nb_layer_spec field (nabla before layer classes), floats written as "0". */
#define OLD_SPEC(name, units, act)                                                                                \
    "{\"name\":\"" name "\",\"units\":" #units ",\"kernel_init\":\"\",\"no_bias\":false,\"kernel_reg\":{\"l1\":0," \
    "\"l2\":0},\"max_norm\":0,\"max_norm_axis\":0,\"activation\":\"" act "\",\"alpha\":0,\"rate\":0,\"momentum\":0," \
    "\"epsilon\":0,\"no_center\":false,\"no_scale\":false}"
static const char old_arch[] =
    "{\"class_name\":\"Sequential\",\"seed\":1,\"input_shape\":[4],\"layers\":[{\"class_name\":\"Dense\",\"trainable\":"
    "true,\"config\":" OLD_SPEC("dense", 3, "relu") "},{\"class_name\":\"BatchNormalization\",\"trainable\":true,"
    "\"config\":" OLD_SPEC("batch_normalization", 0, "") "}]}";

/* A file as the old nb_model_save wrote it: header by hand, checksum by the
 * reference CRC. */
static void write_old_file(const char *path, const char *arch) {
    nb_model *m = small_model(1);
    nb_tensor *const *t;
    int n = nb_model_tensors(m, &t);
    unsigned char data[108];
    size_t at = 0;
    for (int i = 0; i < n; i++, at += 4 * t[i - 1]->size) memcpy(data + at, t[i]->data, 4 * t[i]->size);
    cr_assert_eq(at, sizeof data);
    uint32_t crc = crc32_ref(crc32_ref(0, (const unsigned char *)arch, strlen(arch)), data, sizeof data);
    char *h = malloc(4096), *e = h;
    e += sprintf(e, "{\"__metadata__\":{\"format\":\"nabla\",\"nabla_version\":\"1\",\"architecture\":\"");
    for (const char *c = arch; *c; c++) {
        if (*c == '"') *e++ = '\\';
        *e++ = *c;
    }
    e += sprintf(e, "\",\"weights_crc32\":\"%08x\"}", crc);
    for (int i = 0, off = 0; i < n; off += 4 * (int)t[i]->size, i++)
        e += sprintf(e, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%d%s],\"data_offsets\":[%d,%d]}", t[i]->name,
                     t[i]->shape.dim[0], t[i]->shape.rank == 2 ? ",3" : "", off, off + 4 * (int)t[i]->size);
    strcpy(e, "}");
    assemble(path, h, data, sizeof data);
    free(h);
    nb_model_free(m);
}

Test(nn_save, a_file_written_before_layer_classes_loads_the_same_model) {
    tdir d = tdir_new();
    const char *p = in_dir(&d, "old.safetensors");
    write_old_file(p, old_arch);
    nb_model *back = nb_model_load(p), *want = small_model(1);
    cr_assert_not_null(back, "%s", nb_last_error());
    assert_same_model(want, back);
    /* keys no nabla ever wrote are still refused */
    static char odd[sizeof old_arch + 16];
    strcpy(odd, old_arch);
    char *at = strstr(odd, "\"no_scale\":false}}]");
    cr_assert_not_null(at);
    memmove(at + 11, at, strlen(at) + 1);
    memcpy(at, "\"units2\":1,", 11);
    write_old_file(p, odd);
    refused(p, "layer 1: BatchNormalization has no field \"units2\"");
    nb_model_free(back);
    nb_model_free(want);
    tdir_free(&d);
}

Test(nn_save, a_seed_above_2_63_as_a_json_integer_is_refused_saying_why) {
    tdir d = tdir_new();
    const char *good = good_file(&d), *p = in_dir(&d, "seed.safetensors");
    edit(good, p, "\\\"seed\\\":1,", "\\\"seed\\\":18446744073709551615,", 0);
    refused(p, "too big integer");
    refused(p, "is written as a string");
    tdir_free(&d);
}

/* Every scalar value of full_model's architecture (input shape, seed,
 * flags, every config field) replaced in turn by each of a set of wrong or
 * edge values: the file loads or is refused with a message naming it, and
 * never crashes or leaks (under ASan). */
Test(nn_save, every_architecture_value_replaced_by_an_odd_one_loads_or_is_refused, .timeout = 300) {
    tdir d = tdir_new();
    const char *good = in_dir(&d, "full.safetensors"), *p = in_dir(&d, "odd.safetensors");
    nb_model *m = full_model(5);
    cr_assert_eq(nb_model_save(m, good), NB_OK, "%s", nb_last_error());
    nb_model_free(m);
    static const char *const odd[] = {
        "-1", "0", "2147483648", "-2147483649", "9223372036854775807", "1e308", "-0.0", "0.5", "null", "true",
        "[]", "{}", "[1,2,3,4,5]", "\\\"\\\"", "\\\"NaN\\\"", "\\\"-Infinity\\\"", "\\\"relu\\\"",
        "\\\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\\\""};
    parts g = split(good);
    char *arch = strstr(g.header, "\"architecture\":\"");
    char *arch_end = strstr(arch, "\",\"weights_crc32\"");
    int tried = 0, loaded = 0;
    for (char *at = arch + 16; at < arch_end; at++) {
        if (strncmp(at, "\\\":", 3) != 0) continue; /* the end of a key: \": */
        char *v = at + 3, *end = v;
        if ((*v == '{' || *v == '[') && strncmp(at - 11, "input_shape", 11) != 0) continue; /* kernel_reg, layers */
        while (end < arch_end && *end != ',' && *end != '}') end++;
        if (*v == '[') end = strchr(v, ']') + 1;
        for (size_t k = 0; k < sizeof odd / sizeof odd[0]; k++) {
            size_t pre = (size_t)(v - g.header), n = strlen(odd[k]);
            if (n == (size_t)(end - v) && strncmp(v, odd[k], n) == 0) continue; /* the same value */
            char *h = malloc(strlen(g.header) + n + 1);
            memcpy(h, g.header, pre);
            memcpy(h + pre, odd[k], n);
            strcpy(h + pre + n, end);
            assemble(p, h, g.data, g.data_len);
            free(h);
            nb_model *back = nb_model_load(p);
            tried++;
            if (back) loaded++, nb_model_free(back);
            else cr_assert(strstr(nb_last_error(), p), "%s", nb_last_error());
        }
    }
    cr_assert_gt(tried, 500, "only %d variants", tried);
    cr_assert_eq(loaded, 0, "the checksum covers the architecture: nothing changed may load");
    parts_free(&g);
    tdir_free(&d);
}

/* ---- the JSON: strict on reading, shortest floats on writing ---- */

/* What RFC 8259 does not allow, as the value of a key of the header: the
 * header is refused, never guessed at. */
Test(nn_save, headers_that_are_not_strict_json_are_refused) {
    tdir d = tdir_new();
    const char *p = in_dir(&d, "j.safetensors");
    static const char *const values[] = {
        "01", "1.", "1e", "-", "1e999", "NaN", "tru", "\"a", "\"\\x\"", "\"\\u12g4\"", "\"\\ud800\"",
        "\"\\udc00\"", "\"\t\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "[1,]", "{\"k\":1,\"k\":2}", "1} {",
    };
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char h[64];
        snprintf(h, sizeof h, "{\"a\":%s}", values[i]);
        assemble(p, h, NULL, 0);
        nb_model *m = nb_model_load(p);
        cr_assert_null(m, "header %s loaded", h);
        cr_assert(strstr(nb_last_error(), "not valid JSON") && strstr(nb_last_error(), p), "%s: %s", h, nb_last_error());
    }
    /* nesting deep enough to exhaust a recursive reader's stack */
    char *deep = malloc(200012);
    strcpy(deep, "{\"a\":");
    memset(deep + 5, '[', 200000);
    strcpy(deep + 200005, "}");
    assemble(p, deep, NULL, 0);
    refused(p, "not valid JSON");
    free(deep);
    tdir_free(&d);
}

Test(nn_save, floats_are_written_with_the_fewest_digits_that_read_back) {
    static const struct {
        float v;
        const char *text;
    } cases[] = {{0.001f, "0.001"}, {0.1f, "0.1"},   {1.0f, "1.0"},      {-0.0f, "-0.0"},
                 {1e-45f, "1e-45"}, {3.4028235e38f, "3.4028235e38"},      {16777217.0f, "16777216.0"},
                 {0.3f, "0.3"},     {1.0f / 3, "0.33333334"}};
    tdir d = tdir_new();
    const char *p = in_dir(&d, "f.safetensors");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nb_model *m = nb_model_new(1, (int[]){2}, 1);
        nb_layer_spec s = nb_activation_spec("elu");
        s.alpha = cases[i].v;
        cr_assert_not_null(nb_model_add(m, &s), "%s", nb_last_error());
        cr_assert_eq(nb_model_save(m, p), NB_OK, "%s", nb_last_error());
        parts f = split(p);
        char want[64];
        snprintf(want, sizeof want, "\\\"alpha\\\":%s}", cases[i].text);
        cr_assert(strstr(f.header, want), "%g: %s lacks %s", (double)cases[i].v, f.header, want);
        nb_model *back = nb_model_load(p);
        cr_assert_not_null(back, "%s", nb_last_error());
        cr_assert(same_bits(nb_layer_spec_of(nb_model_layer(back, 0))->alpha, cases[i].v));
        parts_free(&f);
        nb_model_free(m);
        nb_model_free(back);
    }
    tdir_free(&d);
}

/* Issue 10, hole 2: a 288-byte file declaring input [2147483647] and one
 * PReLU activation (a slope per feature) made the loader allocate and zero
 * 8 GB before it looked at the tensors. The tensors an architecture implies
 * are now counted against what the file holds before any is made. */
Test(nn_save, an_architecture_implying_more_weights_than_the_file_holds_allocates_nothing) {
    tdir d = tdir_new();
    nb_model *m = nb_model_new(1, (int[]){4}, 1);
    nb_layer_spec s = nb_activation_spec("prelu");
    cr_assert_not_null(nb_model_add(m, &s), "%s", nb_last_error());
    const char *good = in_dir(&d, "p.safetensors"), *bad = in_dir(&d, "huge.safetensors");
    cr_assert_eq(nb_model_save(m, good), NB_OK, "%s", nb_last_error());
    edit(good, bad, "\\\"input_shape\\\":[4]", "\\\"input_shape\\\":[2147483647]", 0);
    struct rlimit old;
    cr_assert_eq(getrlimit(RLIMIT_AS, &old), 0);
#if !defined(__SANITIZE_ADDRESS__) /* ASan reserves terabytes of address space */
    struct rlimit cap = {.rlim_cur = (rlim_t)1 << 32, .rlim_max = old.rlim_max};
    cr_assert_eq(setrlimit(RLIMIT_AS, &cap), 0); /* 4 GB of address space: the old loader would fail to get 8 */
#endif
    refused(bad, "needs more weights than the file's 16 bytes of data");
#if !defined(__SANITIZE_ADDRESS__)
    setrlimit(RLIMIT_AS, &old);
#endif
    nb_model_free(m);
    tdir_free(&d);
}

/* Issue 10, hole 6: 64 bytes per JSON value were allocated before any
 * check, so a 40 MB header cost 1.3 GB. A header, or an architecture
 * inside one, with over a million values is refused before it is parsed. */
Test(nn_save, headers_and_architectures_with_millions_of_values_are_refused_before_parsing) {
    tdir d = tdir_new();
    const size_t n = 1100000;
    char *h = malloc(2 * n + 200), *p = h;
    p += sprintf(p, "{\"__metadata__\":{\"format\":\"nabla\"},\"x\":{\"dtype\":\"F32\",\"shape\":[");
    for (size_t i = 0; i < n; i++) *p++ = '0', *p++ = ',';
    p += sprintf(p, "1],\"data_offsets\":[0,0]}}");
    const char *big = in_dir(&d, "values.safetensors");
    assemble(big, h, NULL, 0);
    refused(big, "the header holds over 1000000 JSON values");
    /* the same numbers inside the architecture string: one value to the header */
    p = h;
    p += sprintf(p, "{\"__metadata__\":{\"format\":\"nabla\",\"nabla_version\":\"1\",\"weights_crc32\":\"0\","
                    "\"architecture\":\"{\\\"class_name\\\":\\\"Sequential\\\",\\\"seed\\\":1,\\\"input_shape\\\":[");
    for (size_t i = 0; i < n; i++) *p++ = '1', *p++ = ',';
    p += sprintf(p, "1],\\\"layers\\\":[]}\"}}");
    const char *arch = in_dir(&d, "arch.safetensors");
    assemble(arch, h, NULL, 0);
    refused(arch, "the architecture holds over 1000000 JSON values");
    free(h);
    tdir_free(&d);
}
