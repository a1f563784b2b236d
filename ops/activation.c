/* ops/activation.c — being written */
