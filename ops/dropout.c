/* ops/dropout.c — being written */
