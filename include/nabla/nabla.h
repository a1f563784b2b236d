/* nabla.h — reverse-mode automatic differentiation for deep networks on the CPU.
 * The umbrella header: include this one. */
#ifndef NABLA_H
#define NABLA_H

#include "tensor.h"
#include "graph.h"
#include "ops.h"
#include "custom.h"
#include "gradcheck.h"
#include "rng.h"
#include "threads.h"
#include "init.h"
#include "optim.h"
#include "data.h"
#include "nn.h"
#include "train.h"

#endif
