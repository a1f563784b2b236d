/* ops/batchnorm.c — being written */
