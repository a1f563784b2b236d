/* ops/softmax.c — being written */
