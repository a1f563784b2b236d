/* fuzz/fuzz_model.c — nb_model_load on whole files.
 *
 * The input is the file, byte for byte: the safetensors prefix, header
 * JSON, architecture, tensor data and checksum all come from the fuzzer.
 * The seeds are small models saved by nabla (fuzz/gen_seeds.c), so
 * mutations start from files that load. A model that loads is also
 * summarized (names and shapes from the file end up in that table), then
 * freed: LeakSanitizer reports anything either path keeps. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <nabla/nabla.h>

#include "memfile.h"

static FILE *sink;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_setup_env();
    sink = fopen("/dev/null", "w");
    if (!sink) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static fuzz_file file;
    nb_model *m = nb_model_load(fuzz_file_set(&file, data, size));
    fuzz_report("nb_model_load", m != NULL);
    if (m) nb_model_summary(m, sink);
    nb_model_free(m);
    return 0;
}
