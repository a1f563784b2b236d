/* csv-oom-child PATH MARGIN_MB — loads the CSV file PATH with the address
 * space capped MARGIN_MB above what the process has mapped when it starts,
 * for test_data.c: running out of memory in the middle of a line must be an
 * error, not the end of the file. A program of its own, because the cap and
 * (under AddressSanitizer) allocator_may_return_null must not touch the
 * test runner. Prints the outcome (on failure the message and its kind,
 * for test_error_kinds.c); exits 0 if the load failed, 1 if it
 * succeeded, 2 if the cap could not be set. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "nabla/nabla.h"

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

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: csv-oom-child PATH MARGIN_MB\n");
        return 2;
    }
    unsigned long long now = mapped_bytes(), margin = strtoull(argv[2], NULL, 10) << 20;
    struct rlimit old, cap;
    if (!now || getrlimit(RLIMIT_AS, &old) != 0) {
        fprintf(stderr, "csv-oom-child: cannot read the address space size\n");
        return 2;
    }
    cap = old;
    cap.rlim_cur = now + margin;
    if (old.rlim_max != RLIM_INFINITY && cap.rlim_cur > old.rlim_max) cap.rlim_cur = old.rlim_max;
    if (setrlimit(RLIMIT_AS, &cap) != 0) {
        fprintf(stderr, "csv-oom-child: cannot cap the address space\n");
        return 2;
    }
    nb_dataset d;
    nb_status st = nb_load_csv(argv[1], -1, false, &d);
    setrlimit(RLIMIT_AS, &old);  // the sanitizers' reports at exit need memory
    if (st != NB_OK) {
        printf("error: %s\nkind: %s\n", nb_last_error(), nb_error_kind_name(nb_last_error_kind()));
        return 0;
    }
    printf("loaded %d examples of %d features\n", d.n, d.dim);
    nb_dataset_free(&d);
    return 1;
}
