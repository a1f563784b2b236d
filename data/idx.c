/* data/idx.c — IDX files (MNIST, Fashion-MNIST), gzip-compressed or plain.
 *
 * An IDX file is a 4-byte magic (0, 0, type 0x08 = unsigned byte, rank), one
 * big-endian uint32 per dimension, then the bytes in row-major order. zlib
 * reads both forms: gzread passes a file without a gzip header through
 * unchanged, so the content, not the name, decides.
 *
 * Every error names the file: a dataset is usually four files in a folder
 * the user did not fill by hand, and "truncated" alone does not say which
 * download to redo.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "graph/internal.h"
#include "nabla/data.h"

#define IDX_MAGIC_IMAGES 0x00000803u
#define IDX_MAGIC_LABELS 0x00000801u

/* Beyond this many bytes a header is far more likely corrupt than real; it
 * also keeps n·dim·sizeof(float) well inside size_t. */
#define IDX_MAX_BYTES ((uint64_t)1 << 40)

/* The first buffer is at most this big, so a corrupt header that declares
 * terabytes costs a truncation error, not a terabyte allocation. */
#define IDX_FIRST_CHUNK ((size_t)1 << 26)

static uint32_t be32(const unsigned char *b) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

/* zlib's own description of a stream error, or NULL when there is none.
 * Z_ERRNO means a read() failed: errno says why. */
static const char *gz_problem(gzFile f) {
    int err = Z_OK;
    const char *msg = gzerror(f, &err);
    if (err == Z_OK || err == Z_STREAM_END) return NULL;
    if (err == Z_ERRNO) return strerror(errno);
    return msg && *msg ? msg : "stream error";
}

/* Reads up to len bytes; returns how many, or -1 with the error set. */
static long long gz_read_full(gzFile f, const char *path, unsigned char *buf, size_t len) {
    size_t got = 0;
    while (got < len) {
        size_t want = len - got;
        if (want > ((size_t)1 << 30)) want = (size_t)1 << 30;  // gzread takes an unsigned
        int r = gzread(f, buf + got, (unsigned)want);
        if (r < 0) {
            const char *why = gz_problem(f);
            nb__set_last_error("data: %s: read error: %s", path, why ? why : "unknown");
            return -1;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    return (long long)got;
}

/* Opens path and checks its header: magic want_magic, rank dimensions, each
 * in [1, INT_MAX]. Returns the open file (dims filled) or NULL. */
static gzFile idx_open(const char *path, uint32_t want_magic, int rank, uint32_t *dims,
                       const char *kind) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        nb__set_last_error("data: %s: is a folder, not an IDX %s file", path, kind);
        return NULL;
    }
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f) {
        nb__set_last_error("data: %s: cannot open: %s", path,
                           errno ? strerror(errno) : "out of memory");
        return NULL;
    }
    gzbuffer(f, 1u << 17);  // zlib's 8 KiB default makes decompression call read() too often

    unsigned char head[4 + 4 * 3];
    size_t head_len = 4 + 4 * (size_t)rank;
    long long got = gz_read_full(f, path, head, head_len);
    if (got < 0) goto fail;
    if (got < 4) {
        const char *why = gz_problem(f);
        nb__set_last_error("data: %s: truncated: %lld bytes, too short for an IDX header%s%s",
                           path, got, why ? ": " : "", why ? why : "");
        goto fail;
    }
    uint32_t magic = be32(head);
    if (magic != want_magic) {
        nb__set_last_error("data: %s: bad magic 0x%08x, expected 0x%08x (IDX %s: unsigned bytes, "
                           "%d dimension%s)", path, magic, want_magic, kind, rank,
                           rank == 1 ? "" : "s");
        goto fail;
    }
    if ((size_t)got < head_len) {
        nb__set_last_error("data: %s: truncated: header has %lld of its %zu bytes", path, got,
                           head_len);
        goto fail;
    }
    for (int i = 0; i < rank; i++) {
        dims[i] = be32(head + 4 + 4 * i);
        if (dims[i] == 0 || dims[i] > INT_MAX) {
            nb__set_last_error("data: %s: dimension %d is %u, must be in [1, %d]", path, i,
                               dims[i], INT_MAX);
            goto fail;
        }
    }
    return f;
fail:
    gzclose(f);
    return NULL;
}

/* Reads exactly want bytes of body (what: "pixel", "label") and checks that
 * nothing follows. Returns a malloc'd buffer or NULL. */
static unsigned char *idx_read_body(gzFile f, const char *path, size_t want, const char *what) {
    size_t cap = want < IDX_FIRST_CHUNK ? want : IDX_FIRST_CHUNK;
    unsigned char *buf = malloc(cap);
    if (!buf) {
        nb__set_last_error("data: %s: out of memory for %zu %s bytes", path, cap, what);
        return NULL;
    }
    size_t got = 0;
    for (;;) {
        long long r = gz_read_full(f, path, buf + got, cap - got);
        if (r < 0) goto fail;
        got += (size_t)r;
        if (got < cap || cap == want) break;
        size_t next = cap > want / 2 ? want : 2 * cap;
        unsigned char *grown = realloc(buf, next);
        if (!grown) {
            nb__set_last_error("data: %s: out of memory for %zu %s bytes", path, next, what);
            goto fail;
        }
        buf = grown;
        cap = next;
    }
    if (got < want) {
        const char *why = gz_problem(f);
        nb__set_last_error("data: %s: truncated: expected %zu %s bytes, got %zu%s%s%s", path,
                           want, what, got, why ? " (" : "", why ? why : "", why ? ")" : "");
        goto fail;
    }
    // Trailing bytes mean the header and the data disagree: the file is not
    // what it claims, and silently dropping the rest would hide that. Reading
    // on also makes zlib check the gzip trailer (CRC and length).
    unsigned char tail[4096];
    unsigned long long extra = 0;
    for (;;) {
        int r = gzread(f, tail, sizeof tail);
        if (r < 0) {
            const char *why = gz_problem(f);
            nb__set_last_error("data: %s: read error after the data: %s", path,
                               why ? why : "unknown");
            goto fail;
        }
        if (r == 0) break;
        extra += (unsigned)r;
    }
    if (extra) {
        nb__set_last_error("data: %s: trailing data: %llu bytes after the %zu declared %s bytes",
                           path, extra, want, what);
        goto fail;
    }
    const char *why = gz_problem(f);
    if (why) {
        nb__set_last_error("data: %s: %s", path, why);
        goto fail;
    }
    return buf;
fail:
    free(buf);
    return NULL;
}

nb_status nb_load_idx(const char *images_path, const char *labels_path, nb_dataset *out) {
    if (!out) {
        nb__set_last_error("data: nb_load_idx: out is NULL");
        return NB_ERROR;
    }
    memset(out, 0, sizeof *out);
    if (!images_path || !labels_path) {
        nb__set_last_error("data: nb_load_idx: %s path is NULL", images_path ? "labels" : "images");
        return NB_ERROR;
    }

    gzFile fi = NULL, fl = NULL;
    unsigned char *pix = NULL, *lab = NULL;
    float *x = NULL, *y = NULL;
    uint32_t idim[3], ldim[1];

    fi = idx_open(images_path, IDX_MAGIC_IMAGES, 3, idim, "images");
    if (!fi) goto fail;
    uint64_t n = idim[0], rows = idim[1], cols = idim[2];
    uint64_t per = rows * cols;  // both < 2^31: no overflow in 64 bits
    if (per > INT_MAX || n > IDX_MAX_BYTES / per) {
        nb__set_last_error("data: %s: %u images of %u x %u pixels is too large", images_path,
                           idim[0], idim[1], idim[2]);
        goto fail;
    }
    fl = idx_open(labels_path, IDX_MAGIC_LABELS, 1, ldim, "labels");
    if (!fl) goto fail;
    // Checked before reading the pixels: a mismatched pair is a mistake the
    // user should hear about without waiting for 47 MB to decompress.
    if (ldim[0] != idim[0]) {
        nb__set_last_error("data: %s has %u images but %s has %u labels", images_path, idim[0],
                           labels_path, ldim[0]);
        goto fail;
    }

    size_t total = (size_t)(n * per);
    pix = idx_read_body(fi, images_path, total, "pixel");
    if (!pix) goto fail;
    gzclose(fi);
    fi = NULL;
    lab = idx_read_body(fl, labels_path, (size_t)n, "label");
    if (!lab) goto fail;
    gzclose(fl);
    fl = NULL;

    int max_label = 0;
    for (size_t i = 0; i < n; i++) {
        if (lab[i] > 254) {
            nb__set_last_error("data: %s: label %u of example %zu is above 254", labels_path,
                               lab[i], i);
            goto fail;
        }
        if (lab[i] > max_label) max_label = lab[i];
    }

    x = nb__aligned_alloc(total * sizeof *x);
    y = nb__aligned_alloc((size_t)n * sizeof *y);
    if (!x || !y) {
        nb__set_last_error("data: %s: out of memory for %zu floats", images_path, total);
        goto fail;
    }
    for (size_t i = 0; i < total; i++) x[i] = (float)pix[i];
    for (size_t i = 0; i < n; i++) y[i] = (float)lab[i];
    free(pix);
    free(lab);

    out->x = x;
    out->y = y;
    out->n = (int)n;
    out->dim = (int)per;
    out->rows = (int)rows;
    out->cols = (int)cols;
    out->n_classes = max_label + 1;
    return NB_OK;

fail:
    if (fi) gzclose(fi);
    if (fl) gzclose(fl);
    free(pix);
    free(lab);
    free(x);
    free(y);
    memset(out, 0, sizeof *out);
    return NB_ERROR;
}

#define DEFAULT_DATA_DIR "/usr/share/datasets/fashion-mnist"

const char *nb_default_data_dir(void) {
    const char *env = getenv("NABLA_DATA");
    return env && *env ? env : DEFAULT_DATA_DIR;
}

/* dir/name.gz if it exists, else dir/name if it exists, else NULL with an
 * error that says where to point nabla instead. Returns a malloc'd path. */
static char *find_idx_file(const char *dir, const char *name) {
    size_t dl = strlen(dir), nl = strlen(name);
    int slash = dl > 0 && dir[dl - 1] != '/';
    char *p = malloc(dl + (size_t)slash + nl + 4);
    if (!p) {
        nb__set_last_error("data: out of memory");
        return NULL;
    }
    memcpy(p, dir, dl);
    if (slash) p[dl++] = '/';
    memcpy(p + dl, name, nl);
    memcpy(p + dl + nl, ".gz", 4);
    struct stat st;
    if (stat(p, &st) == 0) return p;
    p[dl + nl] = '\0';
    if (stat(p, &st) == 0) return p;
    free(p);
    nb__set_last_error("data: no %s[.gz] in %s; set NABLA_DATA or pass --data to the folder "
                       "that holds the (Fashion-)MNIST files", name, dir);
    return NULL;
}

nb_status nb_load_mnist_dir(const char *dir, nb_dataset *train, nb_dataset *test) {
    if (!train || !test) {
        nb__set_last_error("data: nb_load_mnist_dir: %s is NULL", train ? "test" : "train");
        return NB_ERROR;
    }
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    if (!dir || !*dir) dir = nb_default_data_dir();

    static const char *const names[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    char *paths[4] = {0};
    nb_status st = NB_ERROR;
    // Look for all four before reading any: a missing file should be
    // reported at once, not after the training set has been decompressed.
    for (int i = 0; i < 4; i++)
        if (!(paths[i] = find_idx_file(dir, names[i]))) goto done;
    if (nb_load_idx(paths[0], paths[1], train) != NB_OK) goto done;
    if (nb_load_idx(paths[2], paths[3], test) != NB_OK) goto done;
    if (train->dim != test->dim || train->rows != test->rows) {
        nb__set_last_error("data: %s has %d x %d images but %s has %d x %d", paths[0], train->rows,
                           train->cols, paths[2], test->rows, test->cols);
        goto done;
    }
    // One class count for both splits, so a test set that happens to lack
    // the last class still builds the same model as the training set.
    int k = train->n_classes > test->n_classes ? train->n_classes : test->n_classes;
    train->n_classes = test->n_classes = k;
    st = NB_OK;
done:
    for (int i = 0; i < 4; i++) free(paths[i]);
    if (st != NB_OK) {
        nb_dataset_free(train);
        nb_dataset_free(test);
    }
    return st;
}
