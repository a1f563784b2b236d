/* nn/init.c — being written */
