/* ops/loss.c — being written */
