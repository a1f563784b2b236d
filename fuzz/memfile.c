/* fuzz/memfile.c — see memfile.h. */
#define _GNU_SOURCE
#include "memfile.h"

#include <nabla/nabla.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

const char *fuzz_file_set(fuzz_file *f, const uint8_t *data, size_t len) {
    if (f->fd <= 0) {
        f->fd = memfd_create("nabla-fuzz", MFD_CLOEXEC);
        if (f->fd < 0) {
            perror("memfd_create");
            abort();
        }
        snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
    }
    if (ftruncate(f->fd, 0) != 0) {
        perror("ftruncate");
        abort();
    }
    for (size_t at = 0; at < len;) {
        ssize_t w = pwrite(f->fd, data + at, len - at, (off_t)at);
        if (w <= 0) {
            perror("pwrite");
            abort();
        }
        at += (size_t)w;
    }
    return f->path;
}

void fuzz_setup_env(void) {
    setenv("NABLA_NUM_THREADS", "1", 1);
    setenv("OMP_NUM_THREADS", "1", 1);
    setenv("BLIS_NUM_THREADS", "1", 1);
    setenv("NABLA_ADAPT_THREADS", "0", 1);
}

void fuzz_report(const char *what, int ok) {
    static int verbose = -1;
    if (verbose < 0) verbose = getenv("NABLA_FUZZ_VERBOSE") != NULL;
    if (verbose) fprintf(stderr, "%s: %s\n", what, ok ? "ok" : nb_last_error());
}
