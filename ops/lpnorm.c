/* ops/lpnorm.c — being written */
