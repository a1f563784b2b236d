/* tests/test_ops_reduce.c — being written */
#include <criterion/criterion.h>
