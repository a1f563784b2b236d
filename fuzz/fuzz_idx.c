/* fuzz/fuzz_idx.c — nb_load_idx on an images file and a labels file, each
 * plain or gzip-compressed, so both files and both read paths get deep.
 *
 * Input: 4 control bytes, then the two files' content back to back.
 *   byte 0: bit 0 gzip the images, bit 1 gzip the labels;
 *           bits 2-3 how to damage each gzip stream: 0 not at all, 1 cut
 *           1..8 bytes off its end (the CRC and length trailer), 2 flip a
 *           bit in its last 8 bytes, 3 append 1..4 bytes of garbage;
 *           bit 4 write each gzip file as two members (as `cat a.gz b.gz`);
 *           bit 5 compression level 1 instead of 0 (stored blocks).
 *   bytes 1-2: little-endian split point: the images are the first
 *           split % (rest + 1) bytes of the rest, the labels the others.
 *   byte 3: the damage's parameter (how many bytes, which bit, what byte).
 * Content the fuzzer writes starting 1f 8b is gzip already and is read as
 * such without wrapping; the wrapping is there because deflate streams are
 * out of a mutator's reach, while the IDX inside them is not.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <nabla/nabla.h>

#include "memfile.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_setup_env();
    return 0;
}

/* Appends the gzip member of src[0..n) to dst at *len (dst has room). */
static void gzip_member(const uint8_t *src, size_t n, int level, uint8_t *dst, size_t *len, size_t cap) {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) abort();
    z.next_in = (Bytef *)src;
    z.avail_in = (uInt)n;
    z.next_out = dst + *len;
    z.avail_out = (uInt)(cap - *len);
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) abort();
    *len = cap - z.avail_out;
    deflateEnd(&z);
}

/* src wrapped in gzip as the control bits say; the caller frees it. */
static uint8_t *gzip_wrap(const uint8_t *src, size_t n, uint8_t flags, uint8_t param, size_t *out_len) {
    const int level = flags & 0x20 ? 1 : 0;
    const size_t cap = 2 * (compressBound((uLong)n) + 64) + 8;
    uint8_t *dst = malloc(cap);
    if (!dst) abort();
    size_t len = 0;
    if (flags & 0x10) {
        gzip_member(src, n / 2, level, dst, &len, cap);
        gzip_member(src + n / 2, n - n / 2, level, dst, &len, cap);
    } else {
        gzip_member(src, n, level, dst, &len, cap);
    }
    switch ((flags >> 2) & 3) {
    case 1: {
        size_t cut = 1 + param % 8u;
        len = len > cut ? len - cut : 0;
        break;
    }
    case 2:
        if (len >= 8) dst[len - 1 - (param >> 3) % 8u] ^= (uint8_t)(1u << (param & 7));
        break;
    case 3:
        for (unsigned i = 0; i <= param % 4u; i++) dst[len++] = param;
        break;
    }
    *out_len = len;
    return dst;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static fuzz_file images, labels;
    if (size < 4) return 0;
    const uint8_t flags = data[0], param = data[3];
    const size_t rest = size - 4;
    const size_t split = ((size_t)data[1] | (size_t)data[2] << 8) % (rest + 1);
    const uint8_t *img = data + 4, *lab = data + 4 + split;
    size_t img_len = split, lab_len = rest - split;
    uint8_t *img_gz = NULL, *lab_gz = NULL;
    if (flags & 1) img = img_gz = gzip_wrap(img, img_len, flags, param, &img_len);
    if (flags & 2) lab = lab_gz = gzip_wrap(lab, lab_len, flags, param, &lab_len);

    nb_dataset d;
    memset(&d, 0xa5, sizeof d); /* the loader must overwrite it, whatever it held */
    const char *ip = fuzz_file_set(&images, img, img_len), *lp = fuzz_file_set(&labels, lab, lab_len);
    const nb_status st = nb_load_idx(ip, lp, &d);
    fuzz_report("nb_load_idx", st == NB_OK);
    if (st == NB_OK) {
        /* what the header promised must be what came back */
        if (d.n < 1 || d.dim != d.rows * d.cols || d.n_classes < 1 || d.n_classes > 255) abort();
        for (int i = 0; i < d.n; i++)
            if (!(d.y[i] >= 0 && d.y[i] < (float)d.n_classes)) abort();
        const size_t last = (size_t)d.n * (size_t)d.dim - 1; /* ASan checks the size */
        if (!(d.x[0] >= 0 && d.x[last] <= 255)) abort();
        nb_dataset_free(&d);
    } else if (d.x || d.y || d.n) {
        abort(); /* data.h: on error *out is left zeroed */
    }
    free(img_gz);
    free(lab_gz);
    return 0;
}
