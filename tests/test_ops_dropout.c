/* tests/test_ops_dropout.c — being written */
#include <criterion/criterion.h>
