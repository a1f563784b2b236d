/* tests/test_ops_lpnorm.c — being written */
#include <criterion/criterion.h>
