/* ops/layernorm.c — being written */
