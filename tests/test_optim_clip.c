/* tests/test_optim_clip.c — being written */
#include <criterion/criterion.h>
