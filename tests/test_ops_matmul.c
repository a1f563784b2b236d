/* tests/test_ops_matmul.c — being written */
#include <criterion/criterion.h>
