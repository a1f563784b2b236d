/* fuzz/fuzz_csv.c — nb_load_csv.
 *
 * Input: 1 control byte, then the file.
 *   byte 0: bits 0-2 the label column, -4..3 (negative counts from the end),
 *           bit 3 skip_header.
 * A data set that loads is checked against data.h's promises: at least one
 * feature, finite numbers, n_classes consistent with the labels.
 */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nabla/nabla.h>

#include "memfile.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_setup_env();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static fuzz_file file;
    if (size < 1) return 0;
    const int label_col = (int)(data[0] & 7) - 4;
    const bool skip_header = data[0] & 8;
    nb_dataset d;
    memset(&d, 0xa5, sizeof d);
    const nb_status st = nb_load_csv(fuzz_file_set(&file, data + 1, size - 1), label_col, skip_header, &d);
    fuzz_report("nb_load_csv", st == NB_OK);
    if (st == NB_OK) {
        if (d.n < 1 || d.dim < 1 || d.rows != 1 || d.cols != d.dim || d.n_classes < 0) abort();
        for (size_t i = 0; i < (size_t)d.n * (size_t)d.dim; i++)
            if (!isfinite(d.x[i])) abort();
        for (int i = 0; i < d.n; i++) {
            if (!isfinite(d.y[i])) abort();
            if (d.n_classes > 0 && !(d.y[i] >= 0 && d.y[i] < (float)d.n_classes && d.y[i] == floorf(d.y[i])))
                abort();
        }
        nb_dataset_free(&d);
    } else if (d.x || d.y || d.n) {
        abort(); /* data.h: on error *out is left zeroed */
    }
    return 0;
}
