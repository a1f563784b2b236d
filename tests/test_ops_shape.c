/* tests/test_ops_shape.c — being written */
#include <criterion/criterion.h>
