/* tests/test_ops_arith.c — being written */
#include <criterion/criterion.h>
