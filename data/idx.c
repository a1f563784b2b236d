/* data/idx.c — IDX files (MNIST, Fashion-MNIST), gzip-compressed or plain.
 *
 * An IDX file is a 4-byte magic (0, 0, type 0x08 = unsigned byte, rank), one
 * big-endian uint32 per dimension, then the bytes in row-major order. The
 * content, not the name, tells gzip from plain: gzip's magic 1f 8b, or the
 * two zero bytes an IDX header starts with.
 *
 * Files may be hostile: a FIFO or a device is refused before it is read, a
 * gzip stream is inflated no further than its header declares (plus one
 * byte, to see that it ends there), the cheap labels file is read and
 * checked before the pixels, and a gzip file must end with its last
 * member's CRC and length, nothing after them.
 *
 * Every error names the file: a dataset is usually four files in a folder
 * the user did not fill by hand, and "truncated" alone does not say which
 * download to redo.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "data/internal.h"
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

/* Compressed bytes read from the file at a time. */
#define IDX_IN_BYTES ((size_t)1 << 17)

static uint32_t be32(const unsigned char *b) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

int nb__data_open(const char *path, const char *what) {
    // O_NONBLOCK: opening a FIFO for reading otherwise waits for a writer.
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        nb__set_error(NB_ERR_IO, "data: %s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        nb__set_error(NB_ERR_IO, "data: %s: cannot stat: %s", path, strerror(errno));
        goto fail;
    }
    if (S_ISDIR(st.st_mode)) {
        nb__set_error(NB_ERR_IO, "data: %s: is a folder, not %s", path, what);
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        nb__set_error(NB_ERR_IO,
                      "data: %s: is not a regular file (a FIFO, device or socket), not %s", path,
                      what);
        goto fail;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags == -1 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == -1) {
        nb__set_error(NB_ERR_IO, "data: %s: cannot set blocking reads: %s", path, strerror(errno));
        goto fail;
    }
    return fd;
fail:
    close(fd);
    return -1;
}

/* An IDX file being read: plain, or gzip (RFC 1952) inflated here rather
 * than through gzread, which ignores whatever follows the last gzip member
 * and cannot be told to stop at a size. Every member must be complete
 * (inflate checks each one's CRC-32 and length), and after the last one the
 * file must end. */
typedef struct idx_file {
    const char *path;
    int fd;
    bool gz;
    bool member_done;  // the current gzip member ended (trailer checked)
    bool raw_eof;      // read() returned 0
    bool cut;          // the file ended inside a gzip member
    z_stream z;
    bool z_live;       // inflateInit2 succeeded
    unsigned char *in;
} idx_file;

static void idx_close(idx_file *f) {
    if (f->z_live) inflateEnd(&f->z);
    free(f->in);
    if (f->fd >= 0) close(f->fd);
    memset(f, 0, sizeof *f);
    f->fd = -1;
}

/* read() of up to len bytes, retried on EINTR; -1 with the error set. */
static ssize_t read_some(idx_file *f, unsigned char *buf, size_t len) {
    for (;;) {
        ssize_t r = read(f->fd, buf, len);
        if (r >= 0) return r;
        if (errno != EINTR) {
            nb__set_error(NB_ERR_IO, "data: %s: read error: %s", f->path, strerror(errno));
            return -1;
        }
    }
}

/* Tops up the compressed input (keeping what is left at the front) until
 * it holds at least want bytes or the file ends; -1 on a read error. */
static int fill(idx_file *f, size_t want) {
    if (f->z.avail_in && f->z.next_in != f->in) memmove(f->in, f->z.next_in, f->z.avail_in);
    f->z.next_in = f->in;
    while (f->z.avail_in < want && !f->raw_eof) {
        ssize_t r = read_some(f, f->in + f->z.avail_in, IDX_IN_BYTES - f->z.avail_in);
        if (r < 0) return -1;
        if (r == 0) f->raw_eof = true;
        f->z.avail_in += (uInt)r;
    }
    return 0;
}

/* Reads up to len bytes of content (inflated, for gzip). Returns how many:
 * fewer than len only at the end of the content, or when the file ends
 * inside a gzip member (then f->cut is set). -1 with the error set on a
 * read error or corrupt data. Never inflates more than len bytes. */
static long long idx_read(idx_file *f, unsigned char *buf, size_t len) {
    if (!f->gz) {
        size_t got = 0;
        while (got < len) {
            ssize_t r = read_some(f, buf + got, len - got);
            if (r < 0) return -1;
            if (r == 0) break;
            got += (size_t)r;
        }
        return (long long)got;
    }
    size_t got = 0;
    while (got < len && !f->cut) {
        if (f->member_done) {
            // Another member, the end of the file, or something that is not
            // gzip at all, which gzread would drop without a word.
            if (fill(f, 2) != 0) return -1;
            if (f->z.avail_in == 0) break;  // the end
            if (f->z.avail_in < 2 || f->in[0] != 0x1f || f->in[1] != 0x8b) {
                nb__set_error(NB_ERR_CORRUPT,
                              "data: %s: %s after the end of the gzip stream (trailing "
                              "data that is not another gzip member)", f->path,
                              f->z.avail_in < 2 ? "1 byte" : "bytes");
                return -1;
            }
            if (inflateReset(&f->z) != Z_OK) {
                nb__set_error(NB_ERR_CORRUPT, "data: %s: inflate: cannot restart", f->path);
                return -1;
            }
            f->member_done = false;
        }
        if (f->z.avail_in == 0) {
            if (fill(f, 1) != 0) return -1;
            if (f->z.avail_in == 0) {
                f->cut = true;
                break;
            }
        }
        size_t want = len - got;
        if (want > UINT32_MAX) want = UINT32_MAX;
        f->z.next_out = buf + got;
        f->z.avail_out = (uInt)want;
        int r = inflate(&f->z, Z_NO_FLUSH);
        got += want - f->z.avail_out;
        if (r == Z_STREAM_END) {
            f->member_done = true;
        } else if (r == Z_BUF_ERROR && want == f->z.avail_out && f->z.avail_in > 0) {
            // no progress with input and room for output: cannot happen
            // in zlib, but a loop that could spin forever is not kept
            nb__set_error(NB_ERR_CORRUPT, "data: %s: inflate made no progress", f->path);
            return -1;
        } else if (r == Z_MEM_ERROR) {
            nb__set_error(NB_ERR_OUT_OF_MEMORY, "data: %s: out of memory for inflate", f->path);
            return -1;
        } else if (r != Z_OK && r != Z_BUF_ERROR) {
            nb__set_error(NB_ERR_CORRUPT, "data: %s: %s", f->path,
                          f->z.msg ? f->z.msg : "corrupt gzip data");
            return -1;
        }
    }
    return (long long)got;
}

/* " (unexpected end of file)" when the file ended inside a gzip member. */
static const char *cut_note(const idx_file *f) {
    return f->cut ? " (unexpected end of file)" : "";
}

/* Opens path and checks its header: magic want_magic, rank dimensions, each
 * in [1, INT_MAX]. Returns 0 (dims filled, f open) or -1 (f closed). */
static int idx_open(idx_file *f, const char *path, uint32_t want_magic, int rank,
                    uint32_t *dims, const char *kind) {
    memset(f, 0, sizeof *f);
    f->path = path;
    char what[32];
    snprintf(what, sizeof what, "an IDX %s file", kind);
    f->fd = nb__data_open(path, what);
    if (f->fd < 0) goto fail;
    unsigned char head[4 + 4 * 3];
    ssize_t first = read_some(f, head, 2);
    if (first < 0) goto fail;
    if (first == 1) {
        ssize_t more = read_some(f, head + 1, 1);
        if (more < 0) goto fail;
        first += more;
    }
    // The content decides, not the name: gzip's magic, or an IDX header
    // (which starts with two zero bytes).
    f->gz = first == 2 && head[0] == 0x1f && head[1] == 0x8b;
    size_t head_len = 4 + 4 * (size_t)rank;
    long long got;
    if (f->gz) {
        f->in = malloc(IDX_IN_BYTES);
        if (!f->in) {
            nb__set_error(NB_ERR_OUT_OF_MEMORY, "data: %s: out of memory", path);
            goto fail;
        }
        f->in[0] = head[0], f->in[1] = head[1];
        f->z.next_in = f->in;
        f->z.avail_in = 2;
        // 15 + 16: a gzip wrapper only, its CRC-32 and length checked
        if (inflateInit2(&f->z, 15 + 16) != Z_OK) {
            nb__set_error(NB_ERR_OUT_OF_MEMORY, "data: %s: out of memory for inflate", path);
            goto fail;
        }
        f->z_live = true;
        got = idx_read(f, head, head_len);
    } else {
        got = idx_read(f, head + first, head_len - (size_t)first);
        if (got >= 0) got += first;
    }
    if (got < 0) goto fail;
    if (got < 4) {
        nb__set_error(NB_ERR_CORRUPT,
                      "data: %s: truncated: %lld bytes, too short for an IDX header%s", path, got,
                      cut_note(f));
        goto fail;
    }
    uint32_t magic = be32(head);
    if (magic != want_magic) {
        nb__set_error(NB_ERR_CORRUPT,
                      "data: %s: bad magic 0x%08x, expected 0x%08x (IDX %s: unsigned bytes, "
                      "%d dimension%s)", path, magic, want_magic, kind, rank, rank == 1 ? "" : "s");
        goto fail;
    }
    if ((size_t)got < head_len) {
        nb__set_error(NB_ERR_CORRUPT, "data: %s: truncated: header has %lld of its %zu bytes%s",
                      path, got, head_len, cut_note(f));
        goto fail;
    }
    for (int i = 0; i < rank; i++) {
        dims[i] = be32(head + 4 + 4 * i);
        if (dims[i] == 0 || dims[i] > INT_MAX) {
            nb__set_error(NB_ERR_CORRUPT, "data: %s: dimension %d is %u, must be in [1, %d]", path,
                          i, dims[i], INT_MAX);
            goto fail;
        }
    }
    return 0;
fail:
    idx_close(f);
    return -1;
}

/* Reads exactly want bytes of body (what: "pixel", "label") and checks that
 * the file ends there. Returns a malloc'd buffer or NULL. */
static unsigned char *idx_read_body(idx_file *f, size_t want, const char *what) {
    const char *path = f->path;
    size_t cap = want < IDX_FIRST_CHUNK ? want : IDX_FIRST_CHUNK;
    unsigned char *buf = malloc(cap);
    if (!buf) {
        nb__set_error(NB_ERR_OUT_OF_MEMORY, "data: %s: out of memory for %zu %s bytes", path, cap,
                      what);
        return NULL;
    }
    size_t got = 0;
    for (;;) {
        long long r = idx_read(f, buf + got, cap - got);
        if (r < 0) goto fail;
        got += (size_t)r;
        if (got < cap || cap == want) break;
        size_t next = cap > want / 2 ? want : 2 * cap;
        unsigned char *grown = realloc(buf, next);
        if (!grown) {
            nb__set_error(NB_ERR_OUT_OF_MEMORY, "data: %s: out of memory for %zu %s bytes", path,
                          next, what);
            goto fail;
        }
        buf = grown;
        cap = next;
    }
    if (got < want) {
        nb__set_error(NB_ERR_CORRUPT, "data: %s: truncated: expected %zu %s bytes, got %zu%s", path,
                      want, what, got, cut_note(f));
        goto fail;
    }
    // Trailing bytes mean the header and the data disagree: the file is not
    // what it claims, and silently dropping the rest would hide that. One
    // byte more is asked for, never the rest: a gzip stream may inflate to
    // far more than it declares. Reaching the end also checks each gzip
    // member's trailer and that nothing follows the last one.
    unsigned char probe;
    long long r = idx_read(f, &probe, 1);
    if (r < 0) goto fail;
    if (r > 0) {
        struct stat st;
        if (!f->gz && fstat(f->fd, &st) == 0)
            nb__set_error(NB_ERR_CORRUPT,
                          "data: %s: trailing data: %lld bytes after the %zu declared %s bytes",
                          path, (long long)st.st_size - (long long)lseek(f->fd, 0, SEEK_CUR) + 1,
                          want, what);
        else
            nb__set_error(NB_ERR_CORRUPT,
                          "data: %s: trailing data: the gzip stream holds more than the %zu "
                          "declared %s bytes", path, want, what);
        goto fail;
    }
    if (f->cut) {
        nb__set_error(NB_ERR_CORRUPT,
                      "data: %s: truncated gzip stream after the %zu %s bytes: unexpected "
                      "end of file (its CRC and length trailer is missing or cut)", path, want,
                      what);
        goto fail;
    }
    return buf;
fail:
    free(buf);
    return NULL;
}

nb_status nb_load_idx(const char *images_path, const char *labels_path, nb_dataset *out) {
    if (!out) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "data: nb_load_idx: out is NULL");
        return NB_ERROR;
    }
    memset(out, 0, sizeof *out);
    if (!images_path || !labels_path) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "data: nb_load_idx: %s path is NULL",
                      images_path ? "labels" : "images");
        return NB_ERROR;
    }

    idx_file fi = {.fd = -1}, fl = {.fd = -1};
    unsigned char *pix = NULL, *lab = NULL;
    float *x = NULL, *y = NULL;
    uint32_t idim[3], ldim[1];

    if (idx_open(&fi, images_path, IDX_MAGIC_IMAGES, 3, idim, "images") != 0) goto fail;
    uint64_t n = idim[0], rows = idim[1], cols = idim[2];
    uint64_t per = rows * cols;  // both < 2^31: no overflow in 64 bits
    if (per > INT_MAX || n > IDX_MAX_BYTES / per) {
        nb__set_error(NB_ERR_CORRUPT, "data: %s: %u images of %u x %u pixels is too large",
                      images_path, idim[0], idim[1], idim[2]);
        goto fail;
    }
    if (idx_open(&fl, labels_path, IDX_MAGIC_LABELS, 1, ldim, "labels") != 0) goto fail;
    // The headers and the labels (one byte an image, the cheap file) are
    // checked before a pixel is inflated: a mismatched pair, or a small
    // gzip file that claims gigabytes of pixels beside a labels file that
    // cannot back the claim, is refused without decompressing them.
    if (ldim[0] != idim[0]) {
        nb__set_error(NB_ERR_CORRUPT, "data: %s has %u images but %s has %u labels", images_path,
                      idim[0], labels_path, ldim[0]);
        goto fail;
    }
    lab = idx_read_body(&fl, (size_t)n, "label");
    if (!lab) goto fail;
    idx_close(&fl);
    int max_label = 0;
    for (size_t i = 0; i < n; i++) {
        if (lab[i] > 254) {
            nb__set_error(NB_ERR_CORRUPT, "data: %s: label %u of example %zu is above 254",
                          labels_path, lab[i], i);
            goto fail;
        }
        if (lab[i] > max_label) max_label = lab[i];
    }

    size_t total = (size_t)(n * per);
    pix = idx_read_body(&fi, total, "pixel");
    if (!pix) goto fail;
    idx_close(&fi);

    x = nb__aligned_alloc(total * sizeof *x);
    y = nb__aligned_alloc((size_t)n * sizeof *y);
    if (!x || !y) {
        nb__set_error(NB_ERR_OUT_OF_MEMORY, "data: %s: out of memory for %zu floats", images_path,
                      total);
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
    idx_close(&fi);
    idx_close(&fl);
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
        nb__set_error(NB_ERR_OUT_OF_MEMORY, "data: out of memory");
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
    nb__set_error(NB_ERR_IO, "data: no %s[.gz] in %s; set NABLA_DATA or pass --data to the folder "
                  "that holds the (Fashion-)MNIST files", name, dir);
    return NULL;
}

nb_status nb_load_mnist_dir(const char *dir, nb_dataset *train, nb_dataset *test) {
    if (!train || !test) {
        nb__set_error(NB_ERR_INVALID_ARGUMENT, "data: nb_load_mnist_dir: %s is NULL",
                      train ? "test" : "train");
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
        nb__set_error(NB_ERR_CORRUPT, "data: %s has %d x %d images but %s has %d x %d", paths[0],
                      train->rows, train->cols, paths[2], test->rows, test->cols);
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
