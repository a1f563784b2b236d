/* nabla/data.h — datasets: IDX (MNIST, Fashion-MNIST) and CSV files, splits,
 * scaling and standardization.
 *
 * A dataset is n examples of dim floats (row-major) with one label each,
 * stored as a float class index (what nb_softmax_cross_entropy takes) or a
 * float target. Loaders refuse malformed, truncated or mismatched files with
 * a message naming the file and what is wrong (through nb_last_error), and
 * never leave a half-filled dataset behind.
 */
#ifndef NABLA_DATA_H
#define NABLA_DATA_H

#include <stdbool.h>
#include <stdint.h>

#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nb_dataset {
    float *x;        /* [n, dim] */
    float *y;        /* [n] labels */
    int n, dim;
    int rows, cols;  /* image height and width for IDX images (rows·cols = dim), else 1 and dim */
    int n_classes;   /* 1 + the largest label for classification data, 0 if unknown */
} nb_dataset;

/* Loads an IDX image file (magic 0x00000803: n x rows x cols unsigned bytes)
 * and its label file (0x00000801: n unsigned bytes), each gzip-compressed
 * or plain (told apart by content, not name). Pixels are stored as 0..255
 * floats (scale them with nb_dataset_scale); n_classes is 1 + the largest
 * label. *out is overwritten (free a previous dataset first) and owned by
 * the caller (nb_dataset_free). Errors: unreadable file, bad magic, a
 * dimension of 0, sizes too large, truncated data (including a cut gzip
 * stream), trailing data, counts that differ between the two files, a label
 * above 254. On error *out is left zeroed. */
nb_status nb_load_idx(const char *images_path, const char *labels_path, nb_dataset *out);

/* The default data folder: $NABLA_DATA if set and not empty, else
 * /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist). The
 * string belongs to the environment or is static: do not free it. */
const char *nb_default_data_dir(void);

/* Loads the four files of (Fashion-)MNIST from dir (NULL or "": the
 * default folder), train-images-idx3-ubyte, train-labels-idx1-ubyte,
 * t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each NAME.gz if that
 * exists, else NAME, into train (60,000 for the real sets) and test
 * (10,000); other counts are accepted. Both get the same n_classes, 1 + the
 * largest label of either split. Errors: a missing file (the message names
 * the folder and the file and suggests NABLA_DATA / --data), anything
 * nb_load_idx refuses, image sizes that differ between the splits. On
 * error both are left zeroed. */
nb_status nb_load_mnist_dir(const char *dir, nb_dataset *train, nb_dataset *test);

/* Loads a CSV of numbers: one example per line, fields separated by commas
 * (no quoting), the label in column label_col (0-based; negative counts
 * from the end: -1 is the last), an optional header line (skip_header).
 * Fields may have spaces or tabs around them; lines may end in \r\n.
 * Numbers are read by strtof (C locale) and must be finite. Every line must
 * have the same number of fields, at least 2; empty lines at the end are
 * ignored, elsewhere they are an error. rows = 1, cols = dim = fields - 1;
 * n_classes = 1 + the largest label if every label is a non-negative
 * integer below 2^24, else 0. Errors name the file, the line (1-based,
 * header included) and the field (1-based) ("data.csv:12: field 3 'abc' is
 * not a number"). *out is owned by the caller; on error it is left zeroed. */
nb_status nb_load_csv(const char *path, int label_col, bool skip_header, nb_dataset *out);

/* Frees the arrays and zeroes *d; a zeroed dataset is fine. */
void nb_dataset_free(nb_dataset *d);

/* Copies examples [start, start+count) of src into *out (allocated, the
 * caller frees it; out == src replaces src). rows, cols and n_classes carry
 * over. Errors: an empty range or one outside src; *out is then zeroed
 * (unless it is src, which is kept). */
nb_status nb_dataset_slice(const nb_dataset *src, int start, int count, nb_dataset *out);

/* Multiplies every feature by factor (1/255 scales pixels to [0,1]).
 * NULL or an empty dataset is fine. */
void nb_dataset_scale(nb_dataset *d, float factor);

/* Per-feature mean and standard deviation, fitted on training data only
 * and then applied to any split: x = (x - mean) / std (std 0 counts as 1).
 * Both are computed in double over the whole training set; std is the
 * population one (divides by n), as in Keras' Normalization layer. fit
 * overwrites *s (free a previous fit first); nb_standardizer_free releases
 * it. Errors (fit): a NULL or empty training set; *s is then zeroed. */
typedef struct nb_standardizer {
    float *mean, *std;
    int dim;
} nb_standardizer;
nb_status nb_standardizer_fit(nb_standardizer *s, const nb_dataset *train);
/* Errors: s not fitted, d NULL, d's dim differs from the fitted one. */
nb_status nb_standardizer_apply(const nb_standardizer *s, nb_dataset *d);
void nb_standardizer_free(nb_standardizer *s);

/* Fills perm with a permutation of 0..n-1 (Fisher-Yates over an nb_rng
 * stream of seed and stream): perm = identity, then for i = n-1 down to 1,
 * swap perm[i] and perm[nb_rng_below(r, i + 1)]. The same (seed, stream)
 * gives the same order. n < 1 or perm NULL does nothing. */
void nb_shuffle(int *perm, int n, uint64_t seed, uint64_t stream);

#ifdef __cplusplus
}
#endif
#endif
