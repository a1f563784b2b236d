/* tests/test_ops_norm.c — being written */
#include <criterion/criterion.h>
