/* nabla/data.h — datasets: IDX (MNIST, Fashion-MNIST) and CSV files, splits,
 * selection by class, samples, concatenation, batches, scaling and
 * standardization.
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
 * the caller (nb_dataset_free). Both headers and then the whole labels file
 * are checked before any pixel is read, and a gzip stream is never
 * inflated beyond what its header declares (plus one byte), so a small
 * gzip file claiming gigabytes costs no more than its labels can back.
 * Errors: unreadable file, a path that is not a regular file (a FIFO or a
 * device is refused at once, never waited on), bad magic, a dimension of 0,
 * sizes too large, truncated data (including a cut gzip stream or one
 * without its CRC and length trailer), a bad gzip CRC or length, trailing
 * data (inside the gzip stream, or after it), counts that differ between
 * the two files, a label above 254. A gzip file of several members (as
 * `cat a.gz b.gz` makes) is read as their concatenation. On error *out is
 * left zeroed. Kinds (nb_last_error_kind): NB_ERR_IO for a file that cannot
 * be opened or read or is not a regular file, NB_ERR_CORRUPT for any fault
 * of the content, NB_ERR_OUT_OF_MEMORY, NB_ERR_INVALID_ARGUMENT for NULL. */
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
 * the folder and the file and suggests NABLA_DATA / --data; NB_ERR_IO),
 * anything nb_load_idx refuses, image sizes that differ between the splits
 * (NB_ERR_CORRUPT). On error both are left zeroed. */
nb_status nb_load_mnist_dir(const char *dir, nb_dataset *train, nb_dataset *test);

/* Loads a CSV of numbers: one example per line, fields separated by commas
 * (no quoting), the label in column label_col (0-based; negative counts
 * from the end: -1 is the last), an optional header line (skip_header).
 * Fields may have spaces or tabs around them; lines may end in \r\n.
 * Numbers are read as strtof reads them in the C locale, whatever locale
 * the process has set (so "0.5", never "0,5"), and must be finite. Every
 * line must have the same number of fields, at least 2; empty lines at the
 * end are ignored, elsewhere they are an error. rows = 1, cols = dim = fields - 1;
 * n_classes = 1 + the largest label if every label is a non-negative
 * integer below 65,536, else 0 (the labels are then regression targets).
 * Hexadecimal numbers ("0x10") are refused. Errors name the file, the line
 * (1-based, header included) and the field (1-based) ("data.csv:12: field 3 'abc' is
 * not a number"), or the file alone: a path that is not a regular file (a
 * FIFO, /dev/zero: refused at once, never waited on or read), a read error,
 * memory running out in the middle of a line ("data.csv:12: out of
 * memory": never taken for the end of the file). *out is owned by the
 * caller; on error it is left zeroed. Kinds (nb_last_error_kind): NB_ERR_IO
 * (cannot open or read), NB_ERR_CORRUPT (a field that is not a number,
 * ragged lines, a NUL byte, no data), NB_ERR_NONFINITE (a NaN, an infinity
 * or a number beyond float), NB_ERR_OUT_OF_MEMORY, NB_ERR_UNSUPPORTED (2^31
 * examples or more), NB_ERR_INVALID_ARGUMENT (NULL, a label column outside
 * the fields). */
nb_status nb_load_csv(const char *path, int label_col, bool skip_header, nb_dataset *out);

/* Frees the arrays and zeroes *d; a zeroed dataset is fine. */
void nb_dataset_free(nb_dataset *d);

/* Copies examples [start, start+count) of src into *out (allocated, the
 * caller frees it; out == src replaces src). rows, cols and n_classes carry
 * over. Errors: an empty range or one outside src; *out is then zeroed
 * (unless it is src, which is kept). */
nb_status nb_dataset_slice(const nb_dataset *src, int start, int count, nb_dataset *out);

/* The operations below make new datasets from existing ones. Each result
 * is allocated anew and owned by the caller (nb_dataset_free); its x and y
 * never alias an input's. An output may be one of the inputs: the result
 * then replaces it (its old arrays are freed) and on error it is kept as it
 * was. Any other output is overwritten without being freed (free a previous
 * dataset first) and left zeroed on error. rows and cols carry over. Errors
 * go to nb_last_error with a message naming the function ("data:
 * nb_dataset_select: class 12 (entry 3) is outside the source's [0, 10)");
 * every function reports a NULL or empty input, a NULL output and running
 * out of memory, besides the errors listed with it. */

/* Keeps the examples of src whose label is one of classes[0..n_kept), in
 * their order in src, and relabels them: an example of class classes[k]
 * gets the label new_labels[k], or k when new_labels is NULL. Two classes
 * may share a new label (merging them). out->n_classes is 1 + the largest
 * new label. Géron's transfer-learning split of Fashion-MNIST:
 *     model A, 8 classes without sandal (5) and shirt (6), relabelled 0..7:
 *         nb_dataset_select(&train, (int[]){0, 1, 2, 3, 4, 7, 8, 9}, 8, NULL, &a);
 *     model B, shirt = 1 and sandal = 0:
 *         nb_dataset_select(&train, (int[]){5, 6}, 2, (int[]){0, 1}, &b);
 * Errors: src's labels are not class indices (n_classes < 1, or a label
 * that is not an integer in [0, n_classes)); classes NULL; n_kept outside
 * [1, src->n_classes]; a class outside [0, src->n_classes) or chosen twice;
 * a new label outside [0, 2^24); no example of any chosen class. */
nb_status nb_dataset_select(const nb_dataset *src, const int *classes, int n_kept,
                            const int *new_labels, nb_dataset *out);

/* A uniform random subset of count examples of src, without replacement,
 * kept in their order in src: the examples perm[0..count) of
 * nb_shuffle(perm, n, seed, stream "sample"), a fixed stream of its own. The
 * same src, count and seed give the same subset; count = n copies src.
 * Errors: count outside [1, src->n]. */
nb_status nb_dataset_sample(const nb_dataset *src, int count, uint64_t seed, nb_dataset *out);

/* Splits src in two: first gets count examples and second the other
 * n - count. Without shuffle, first is examples [0, count) and second
 * [count, n), in order (two slices). With shuffle, the examples are first
 * put in the order of nb_shuffle(perm, n, seed, stream "split"), a fixed
 * stream of its own, and first takes perm[0..count) in that order, second
 * the rest. From a fraction f (the share of first), pass
 * count = (int)(f * n + 0.5). first and second must differ; either may be
 * src. Errors: first or second NULL, or the same; count outside [1, n-1]
 * (neither part may be empty); both outputs are zeroed (or kept, if src). */
nb_status nb_dataset_split(const nb_dataset *src, int count, bool shuffle, uint64_t seed,
                           nb_dataset *first, nb_dataset *second);

/* The examples of a followed by those of b. n_classes is the larger of the
 * two when both are above 0, else 0. out may be a or b. Errors: a and b
 * differ in rows, cols or dim (the message gives both shapes); more than
 * 2^31 - 1 examples in all. */
nb_status nb_dataset_concat(const nb_dataset *a, const nb_dataset *b, nb_dataset *out);

/* Batches for a custom training loop:
 *     nb_batches *it = nb_batches_new(&train, 32, true, seed);
 *     for (int epoch = 0; epoch < 10; epoch++) {
 *         const float *x, *y;
 *         int count;
 *         while ((count = nb_batches_next(it, &x, &y)) > 0) {
 *             nb_feed(g, xin, x, count);  // x: [count, dim], y: [count]
 *             ...
 *         }
 *     }
 *     nb_batches_free(it);
 * Each epoch visits every example once, in batches of batch_size; the last
 * batch of an epoch holds the rest (n mod batch_size) when that is not 0.
 * nb_batches_next returns the batch's example count, 0 once at the end of
 * an epoch (x and y set to NULL; the next call starts the next epoch), or
 * -1 (error set) when an argument is NULL. Epoch e (1, 2, ...) takes the
 * examples in the order of nb_shuffle(perm, n, seed, e) with shuffle (the
 * order nb_fit uses for its seed), in the dataset's order without.
 * Ownership: the iterator borrows d, which must stay alive and unchanged in
 * size until nb_batches_free. x and y point into buffers that the iterator
 * allocated once at creation (with shuffle) or into d itself (without);
 * they are read-only and valid until the next nb_batches_next or
 * nb_batches_free. No call after nb_batches_new allocates memory.
 * nb_batches_new returns NULL (error set) on a NULL or empty d, a
 * batch_size below 1 or no memory; a batch_size above n gives batches of n. */
typedef struct nb_batches nb_batches;
nb_batches *nb_batches_new(const nb_dataset *d, int batch_size, bool shuffle, uint64_t seed);
int nb_batches_next(nb_batches *b, const float **x, const float **y);
/* The epoch the last batch came from (1, 2, ...), 0 before the first
 * batch or for NULL. */
int nb_batches_epoch(const nb_batches *b);
/* Batches in an epoch, ceil(n / batch_size); 0 for NULL. */
int nb_batches_per_epoch(const nb_batches *b);
/* Frees the iterator (not the dataset); NULL is fine. */
void nb_batches_free(nb_batches *b);

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
