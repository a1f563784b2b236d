/* fuzz/fuzz_json.c — the JSON that nb_model_load reads, through the public
 * loader only (the JSON reader itself is an internal that is being
 * replaced). The first input byte picks what the rest is:
 *
 *   even: a whole safetensors header. The file is the 8-byte little-endian
 *         length, the header and no data, so every byte the fuzzer changes
 *         is JSON: the header's syntax, its entries, __metadata__, and, for
 *         a header without tensors, the architecture string inside it.
 *   odd:  an architecture document (the JSON that __metadata__ holds as a
 *         string). The harness escapes it into a header with nabla's
 *         metadata and one "pad" tensor of PAD_FLOATS zeros, so the loader
 *         gets past the container's checks and builds the layers the
 *         document describes (a Dense of up to PAD_FLOATS weights fits);
 *         it then refuses the file for its tensors, as it should.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nabla/nabla.h>

#include "memfile.h"

#define PAD_FLOATS 4096

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_setup_env();
    return 0;
}

typedef struct buf {
    uint8_t *p;
    size_t len, cap;
} buf;

static void put(buf *b, const void *src, size_t n) {
    if (!n) return;
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void puts_(buf *b, const char *s) { put(b, s, strlen(s)); }

/* JSON string escaping of raw bytes; bytes >= 0x80 go through as they are
 * (invalid UTF-8 is the loader's to refuse). */
static void put_escaped(buf *b, const uint8_t *s, size_t n) {
    puts_(b, "\"");
    for (size_t i = 0; i < n; i++) {
        char e[8];
        if (s[i] == '"' || s[i] == '\\') {
            e[0] = '\\', e[1] = (char)s[i];
            put(b, e, 2);
        } else if (s[i] < 0x20) {
            snprintf(e, sizeof e, "\\u%04x", s[i]);
            put(b, e, 6);
        } else {
            put(b, &s[i], 1);
        }
    }
    puts_(b, "\"");
}

static void put_prefix(buf *b, uint64_t n) {
    uint8_t le[8];
    for (int i = 0; i < 8; i++) le[i] = (uint8_t)(n >> (8 * i));
    put(b, le, 8);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static fuzz_file file;
    if (size < 1) return 0;
    const uint8_t mode = data[0];
    data++, size--;
    buf header = {0}, out = {0};
    if (!(mode & 1)) {
        put(&header, data, size);
    } else {
        char pad[160];
        puts_(&header, "{\"__metadata__\":{\"format\":\"nabla\",\"nabla_version\":\"1\",\"architecture\":");
        put_escaped(&header, data, size);
        puts_(&header, ",\"weights_crc32\":\"00000000\"},");
        snprintf(pad, sizeof pad, "\"pad\":{\"dtype\":\"F32\",\"shape\":[%d],\"data_offsets\":[0,%d]}}",
                 PAD_FLOATS, 4 * PAD_FLOATS);
        puts_(&header, pad);
    }
    put_prefix(&out, header.len);
    put(&out, header.p, header.len);
    if (mode & 1) {
        uint8_t *zeros = calloc(PAD_FLOATS, 4);
        if (!zeros) abort();
        put(&out, zeros, 4 * PAD_FLOATS);
        free(zeros);
    }
    nb_model *m = nb_model_load(fuzz_file_set(&file, out.p, out.len));
    fuzz_report("nb_model_load", m != NULL);
    nb_model_free(m);
    free(header.p);
    free(out.p);
    return 0;
}
