/* ops/optable.c — the op table: every built-in op, by name.
 * Each op's file defines its nb_op (name, shape inference, forward,
 * backward); adding an op adds one line here. */
#include <string.h>

#include "graph/internal.h"

#define OPS(X)                                                                            \
    X(matmul) X(add) X(sub) X(mul) X(div) X(scale) X(sum) X(mean)                         \
    X(reshape) X(concat) X(slice)                                                         \
    X(sigmoid) X(tanh) X(relu) X(leaky_relu) X(prelu) X(rrelu) X(elu) X(selu) X(gelu)     \
    X(gelu_tanh) X(swish) X(softplus) X(softmax) X(log_softmax)                           \
    X(softmax_cross_entropy) X(bce_with_logits) X(mse) X(huber)                           \
    X(batchnorm) X(layernorm) X(dropout) X(alpha_dropout)                                 \
    X(l1_norm) X(l2_norm) X(sum_squares) X(custom) X(elementwise)

#define DECLARE(name) extern const nb_op nb_op_##name;
OPS(DECLARE)

#define ENTRY(name) &nb_op_##name,
const nb_op *const nb__op_table[] = {OPS(ENTRY)};
const int nb__op_table_len = (int)(sizeof nb__op_table / sizeof nb__op_table[0]);

const nb_op *nb__op_by_name(const char *name) {
    for (int i = 0; i < nb__op_table_len; i++)
        if (nb__op_table[i] && strcmp(nb__op_table[i]->name, name) == 0) return nb__op_table[i];
    return NULL;
}
