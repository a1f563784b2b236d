/* tests/test_optim_schedule.c — being written */
#include <criterion/criterion.h>
