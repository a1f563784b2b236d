/* tests/test_ops_softmax.c — being written */
#include <criterion/criterion.h>
