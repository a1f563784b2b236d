/* ops/shape.c — being written */
