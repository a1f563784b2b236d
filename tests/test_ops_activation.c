/* tests/test_ops_activation.c — being written */
#include <criterion/criterion.h>
