/* tests/test_optim_optimizer.c — being written */
#include <criterion/criterion.h>
