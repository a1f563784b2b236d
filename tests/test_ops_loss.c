/* tests/test_ops_loss.c — being written */
#include <criterion/criterion.h>
