#!/usr/bin/python3
"""The models of bench-train (issue 4) in PyTorch, timed the same way.

Run with Debian's interpreter and python3-torch:

    /usr/bin/python3 benchmarks/pytorch_models.py [--models a,b,c,d,e] [--threads 1,2]
        [--quick] [--json] [--repeat N] [--mc-batch N] [--mc-passes N] [--data DIR] [--seed S]
        [--quiet-wait S]

Models, data and protocol follow bench_train.c:
  a  784-300-100-10, ReLU, He normal, SGD lr 0.01                 batch 32, 256, 1024
  b  a with BatchNorm1d after each hidden Linear (no bias there)  batch 32
  c  784 -> 20 x [Linear(100, no bias), BatchNorm1d, ELU] -> 10, He normal,
     NAdam lr 1e-3                                                batch 32, 256
  d  784 -> 20 x Linear(100) + SELU -> 10, LeCun normal, inputs standardized
     with the 55,000 training images' statistics, SGD Nesterov 0.9, lr 1e-3  batch 32
  e  a with Dropout(0.2) before each Linear, one epoch, then MC dropout: 100
     passes over the 10,000 test images with dropout on (model.train() under
     torch.no_grad())                                             batch 32

Keras's settings in PyTorch:
  - He / LeCun normal = Keras's VarianceScaling(scale 2 / 1, fan_in,
    truncated_normal): a normal of stddev sqrt(scale/fan_in)/0.87962566103423978
    truncated at 2 stddev (torch.nn.init.trunc_normal_), for every Linear,
    the output layer included; biases zero.
  - BatchNorm1d(eps=1e-3, momentum=0.01) is Keras's BatchNormalization
    (momentum 0.99, epsilon 1e-3). PyTorch's running variance uses the
    unbiased batch variance, Keras's the biased one (inference only).
  - NAdam(lr=1e-3, eps=1e-7, momentum_decay=1.0): mu_t = 0.9(1 - 0.5*0.96^t),
    the schedule of Keras 3's Nadam and nabla's (PyTorch's default
    momentum_decay 0.004 would be 0.96^(0.004 t)).
  - SGD(momentum=0.9, nesterov=True) is Keras's Nesterov SGD for a constant lr.
  - Standardization: (x - mean) / std per pixel, population std, std 0 -> 1.

Data: the gzip'd IDX files of /usr/share/datasets/fashion-mnist (or --data,
or NABLA_DATA) read with gzip + numpy, pixels / 255, the first 55,000 training
images for training and the last 5,000 for validation. Shuffles are seeded
(torch.Generator seeded 42 + epoch); weights are seeded (torch.manual_seed(42)
before each model); --seed changes the 42, to see how much accuracy after one
epoch varies with it.

Timing: a warm-up fit of 16 batches (8 at batch 1024) on a throwaway copy of
the model, then one epoch (55,000 images; 5,500 with --quick) on a fresh
model, timed over the training steps only (batch gathering included, the
validation pass after it not). PyTorch gets its fastest loop: tensors indexed
directly (no DataLoader), zero_grad(set_to_none=True), no per-step metrics.

Threads: OpenBLAS and OpenMP read their thread counts when torch is
imported, so each thread count runs in its own process with
OPENBLAS_NUM_THREADS=n and OMP_NUM_THREADS=n set and OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE unset (they force slower OpenBLAS kernels), then
torch.set_num_threads(n). If this process's environment is not like that,
the script re-runs itself with it fixed (one process per thread count), so
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=n \\
        OMP_NUM_THREADS=n /usr/bin/python3 pytorch_models.py --threads n
and a plain `pytorch_models.py --threads 1,2` do the same.

Allocations: if a malloc counter is preloaded (compare.sh builds
tests/alloc_count.c as a shared library and sets LD_PRELOAD), the heap
allocations per steady-state step are counted as in bench-train: between the
ends of epochs 1 and 2 of a 2-epoch fit on a subset (epoch 2's steps and its
validation pass), divided by epoch 2's steps. Otherwise allocs_per_step is null.

"others" (others_cpu in JSON) is the share of the machine's CPUs that other
processes used, or the hypervisor stole, during the timed epochs and MC
passes: on the shared 2-core machine a row with more than a few percent is
suspect. --quiet-wait S waits, before each timed epoch and the MC passes, up to
S seconds for the machine to be quiet (others under 10% over 0.3 s).

--json prints one JSON object per row on stdout ("framework":"pytorch"); the
table goes to stderr then. --probe MODEL:BATCH --steps N trains N steps on
synthetic data and nothing else (for strace).
"""
import argparse
import ctypes
import gzip
import json
import math
import os
import struct
import subprocess
import sys
import time

SEED = 42
N_TRAIN, N_QUICK, N_VAL = 55000, 5500, 5000
ROWS = [("a", 32), ("a", 256), ("a", 1024), ("b", 32), ("c", 32), ("c", 256), ("d", 32), ("e", 32)]
DESCRIBE = {
    "a": "784-300-100-10 ReLU, He normal, SGD 0.01",
    "b": "a + batch norm after each hidden Dense",
    "c": "20 x [Dense 100, BN, ELU], He normal, Nadam 1e-3",
    "d": "20 x Dense 100 SELU, LeCun normal, std. inputs, Nesterov 0.9, 1e-3",
    "e": "a + dropout 0.2 before each Dense, then MC dropout",
}
UNSET = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", default="abcde")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", action="store_true")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--mc-batch", type=int, default=10000)
    p.add_argument("--mc-passes", type=int, default=-1)
    p.add_argument("--data", default=os.environ.get("NABLA_DATA") or "/usr/share/datasets/fashion-mnist")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--quiet-wait", type=float, default=0.0)
    p.add_argument("--probe", default=None)
    p.add_argument("--steps", type=int, default=0)
    a = p.parse_args()
    try:
        a.thread_list = [int(t) for t in a.threads.split(",") if t]
    except ValueError:
        p.error("--threads wants a list like 1,2")
    if not a.thread_list or min(a.thread_list) < 1 or a.repeat < 1 or a.mc_batch < 1:
        p.error("bad --threads, --repeat or --mc-batch")
    if set(a.models) - set("abcde,"):
        p.error("--models takes letters among a,b,c,d,e")
    if a.mc_passes < 0:
        a.mc_passes = 10 if a.quick else 100
    return a


def env_for(n):
    e = {k: v for k, v in os.environ.items() if k not in UNSET}
    e["OPENBLAS_NUM_THREADS"] = str(n)
    e["OMP_NUM_THREADS"] = str(n)
    e["MKL_NUM_THREADS"] = str(n)
    return e


def env_is_right(n):
    return (not any(k in os.environ for k in UNSET) and os.environ.get("OPENBLAS_NUM_THREADS") == str(n)
            and os.environ.get("OMP_NUM_THREADS") == str(n))


def rerun_per_thread_count(args):
    """One process per thread count, with the environment set before torch is imported."""
    status = 0
    for n in args.thread_list:
        argv, skip = [], False
        for a in sys.argv[1:]:
            if skip or a.startswith("--threads="):
                skip = False
                continue
            if a == "--threads":
                skip = True
                continue
            argv.append(a)
        argv += ["--threads", str(n)]
        sys.stdout.flush()
        sys.stderr.flush()
        r = subprocess.run([sys.executable, os.path.abspath(__file__)] + argv, env=env_for(n))
        status = status or r.returncode
    return status


# Only now, with the environment right, may torch be imported.
ARGS = parse_args()
if len(ARGS.thread_list) > 1 or not env_is_right(ARGS.thread_list[0]):
    sys.exit(rerun_per_thread_count(ARGS))
THREADS = ARGS.thread_list[0]
SEED = ARGS.seed

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(THREADS)

# A malloc counter preloaded by compare.sh (tests/alloc_count.c as a shared library), if any.
try:
    _alloc_count = ctypes.CDLL(None).alloc_count
    _alloc_count.restype = ctypes.c_ulong
except AttributeError:
    _alloc_count = None


# ---- how busy the machine was with others (as bench-train) ----

def load_mark():
    """(wall, own CPU seconds, busy CPU seconds of the whole machine) or None parts."""
    t = os.times()
    busy = None
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
        busy = (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        pass
    return time.perf_counter(), t.user + t.system, busy


def others_cpu(a, b):
    """The share of the machine's CPUs other processes used (or the hypervisor stole) between a and b; -1 if unknown."""
    cpus = os.cpu_count() or 0
    if a[2] is None or b[2] is None or cpus < 1 or b[0] <= a[0]:
        return -1.0
    return max(0.0, ((b[2] - a[2]) - (b[1] - a[1])) / ((b[0] - a[0]) * cpus))


def wait_quiet():
    """--quiet-wait S: wait, at most S seconds, until others use under 10% of the machine over 0.3 s."""
    end = time.perf_counter() + ARGS.quiet_wait
    while ARGS.quiet_wait > 0 and time.perf_counter() < end:
        a = load_mark()
        time.sleep(0.3)
        if others_cpu(a, load_mark()) < 0.10:
            return


# ---- data ----

def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic = struct.unpack(">I", raw[:4])[0]
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(data_dir):
    def pair(prefix):
        x = read_idx(os.path.join(data_dir, prefix + "-images-idx3-ubyte.gz"))
        y = read_idx(os.path.join(data_dir, prefix + "-labels-idx1-ubyte.gz"))
        return (x.reshape(len(x), -1).astype(np.float32) / 255.0, y.astype(np.int64))
    xa, ya = pair("train")
    xt, yt = pair("t10k")
    return xa, ya, xt, yt


# ---- models ----

def init_linear(layer, scale):
    std = math.sqrt(scale / layer.in_features) / 0.87962566103423978
    nn.init.trunc_normal_(layer.weight, mean=0.0, std=std, a=-2 * std, b=2 * std)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


def bn(n):
    return nn.BatchNorm1d(n, eps=1e-3, momentum=0.01)


def build_model(model):
    torch.manual_seed(SEED)
    he = lambda i, o, bias=True: init_linear(nn.Linear(i, o, bias=bias), 2.0)  # noqa: E731
    lecun = lambda i, o: init_linear(nn.Linear(i, o), 1.0)  # noqa: E731
    if model == "a":
        layers = [he(784, 300), nn.ReLU(), he(300, 100), nn.ReLU(), he(100, 10)]
    elif model == "b":
        layers = [he(784, 300, False), bn(300), nn.ReLU(), he(300, 100, False), bn(100), nn.ReLU(), he(100, 10)]
    elif model == "c":
        layers, n_in = [], 784
        for _ in range(20):
            layers += [he(n_in, 100, False), bn(100), nn.ELU()]
            n_in = 100
        layers.append(he(100, 10))
    elif model == "d":
        layers, n_in = [], 784
        for _ in range(20):
            layers += [lecun(n_in, 100), nn.SELU()]
            n_in = 100
        layers.append(lecun(100, 10))
    elif model == "e":
        layers = [nn.Dropout(0.2), he(784, 300), nn.ReLU(), nn.Dropout(0.2), he(300, 100), nn.ReLU(),
                  nn.Dropout(0.2), he(100, 10)]
    else:
        raise ValueError(model)
    return nn.Sequential(*layers)


def optimizer_for(model, params):
    if model == "c":
        return torch.optim.NAdam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-7, momentum_decay=1.0)
    if model == "d":
        return torch.optim.SGD(params, lr=1e-3, momentum=0.9, nesterov=True)
    return torch.optim.SGD(params, lr=0.01)


# ---- training ----

def train_epoch(net, opt, x, y, batch, epoch):
    """One epoch of training steps; returns (seconds, steps)."""
    net.train()
    g = torch.Generator()
    g.manual_seed(SEED + epoch)
    n = x.shape[0]
    t0 = time.perf_counter()
    perm = torch.randperm(n, generator=g)
    steps = 0
    for start in range(0, n, batch):
        idx = perm[start:start + batch]
        xb, yb = x[idx], y[idx]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(xb), yb)
        loss.backward()
        opt.step()
        steps += 1
    return time.perf_counter() - t0, steps


def accuracy(net, x, y, batch=5000):
    net.eval()
    correct = 0
    with torch.no_grad():
        for s in range(0, x.shape[0], batch):
            correct += (net(x[s:s + batch]).argmax(1) == y[s:s + batch]).sum().item()
    return correct / x.shape[0]


def mc_dropout(net, x, y, batch, passes):
    """Mean and std of the class probabilities over `passes` passes with dropout on; the accuracy of the mean."""
    net.train()  # dropout on; model e has no batch norm
    correct = 0
    with torch.no_grad():
        for s in range(0, x.shape[0], batch):
            xb = x[s:s + batch]
            total = sq = None
            for _ in range(passes):
                p = F.softmax(net(xb), dim=1)
                total = p if total is None else total + p
                sq = p * p if sq is None else sq + p * p
            mean = total / passes
            std = (sq / passes - mean * mean).clamp_(min=0).sqrt_()  # noqa: F841 (computed, as nabla does)
            correct += (mean.argmax(1) == y[s:s + batch]).sum().item()
    return correct / x.shape[0]


def run_row(model, batch, d, n_train, repeats, mc_batch, mc_passes):
    xtr, ytr, xv, yv = d["std"] if model == "d" else d["plain"]
    x, y = xtr[:n_train], ytr[:n_train]
    res = {}

    warm_n = (8 if batch >= 1024 else 16) * batch
    net = build_model(model)
    train_epoch(net, optimizer_for(model, net.parameters()), xtr[:warm_n], ytr[:warm_n], batch, 0)

    times = []
    for k in range(repeats):
        net = build_model(model)
        opt = optimizer_for(model, net.parameters())
        wait_quiet()
        l0 = load_mark()
        sec, steps = train_epoch(net, opt, x, y, batch, 1)
        busy = others_cpu(l0, load_mark())
        res["others_cpu"] = busy if k == 0 else max(busy, res["others_cpu"])
        times.append(1e3 * sec / steps)
        if k == 0:
            res["val_accuracy"] = accuracy(net, xv, yv)
    times.sort()
    r = len(times)
    res["step_ms"] = times[r // 2] if r % 2 else 0.5 * (times[r // 2 - 1] + times[r // 2])
    res["step_ms_min"], res["step_ms_max"] = times[0], times[-1]
    res["steps"], res["repeats"] = steps, repeats
    res["samples_per_second"] = n_train / (res["step_ms"] * 1e-3 * steps)

    if model == "e":
        xt, yt = d["test"]
        mc_dropout(net, xt[:min(mc_batch, 1000)], yt[:min(mc_batch, 1000)], mc_batch, 2)
        wait_quiet()
        l0 = load_mark()
        res["mc_accuracy"] = mc_dropout(net, xt, yt, mc_batch, mc_passes)
        l1 = load_mark()
        res["mc_seconds"] = l1[0] - l0[0]
        res["others_cpu"] = max(res["others_cpu"], others_cpu(l0, l1))
        res["mc_passes"] = mc_passes
        res["mc_images_passes_per_second"] = xt.shape[0] * mc_passes / res["mc_seconds"]

    res["allocs_per_step"] = None
    if _alloc_count is not None:
        n_sub = max(4 * batch, 2000)
        net = build_model(model)
        opt = optimizer_for(model, net.parameters())
        counts = []
        for epoch in (1, 2):
            _, sub_steps = train_epoch(net, opt, xtr[:n_sub], ytr[:n_sub], batch, epoch)
            accuracy(net, xv[:500], yv[:500])
            counts.append(_alloc_count())
        res["allocs_per_step"] = (counts[1] - counts[0]) / sub_steps
    return res


def probe(spec, steps):
    model, batch = spec.split(":")
    batch = int(batch)
    g = torch.Generator()
    g.manual_seed(SEED)
    x = torch.rand(steps * batch, 784, generator=g)
    y = torch.arange(steps * batch) % 10
    net = build_model(model)
    sec, steps = train_epoch(net, optimizer_for(model, net.parameters()), x, y, batch, 1)
    print("probe %s, %d threads, %d steps, %.4f ms/step" % (spec, THREADS, steps, 1e3 * sec / steps))


def main():
    a = ARGS
    if a.probe:
        probe(a.probe, a.steps)
        return 0
    xa, ya, xt, yt = load(a.data)
    if len(xa) < N_TRAIN + N_VAL:
        sys.exit("pytorch_models.py: %d training images, 60,000 expected" % len(xa))
    mean = xa[:N_TRAIN].astype(np.float64).mean(0)
    std = xa[:N_TRAIN].astype(np.float64).std(0)
    std[std == 0] = 1.0
    xs = ((xa - mean) / std).astype(np.float32)
    T = torch.from_numpy
    d = {
        "plain": (T(xa[:N_TRAIN]), T(ya[:N_TRAIN]), T(xa[N_TRAIN:N_TRAIN + N_VAL]), T(ya[N_TRAIN:N_TRAIN + N_VAL])),
        "std": (T(xs[:N_TRAIN]), T(ya[:N_TRAIN]), T(xs[N_TRAIN:N_TRAIN + N_VAL]), T(ya[N_TRAIN:N_TRAIN + N_VAL])),
        "test": (T(xt), T(yt)),
    }
    n_train = N_QUICK if a.quick else N_TRAIN
    out = sys.stderr if a.json else sys.stdout
    print("pytorch_models.py: PyTorch %s, %d threads (torch.set_num_threads; OPENBLAS_NUM_THREADS=%s "
          "OMP_NUM_THREADS=%s%s set and OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE unset before importing torch);\n"
          "one timed epoch of %d images after a warm-up (%s), validation on %d; MC dropout: %d passes in "
          "batches of %d; allocations %s"
          % (torch.__version__, torch.get_num_threads(), os.environ.get("OPENBLAS_NUM_THREADS"),
             os.environ.get("OMP_NUM_THREADS"),
             " OMP_WAIT_POLICY=" + os.environ["OMP_WAIT_POLICY"] if os.environ.get("OMP_WAIT_POLICY") else "", n_train, "median of the repeats" if a.repeat > 1 else "one run",
             N_VAL, a.mc_passes, a.mc_batch, "counted (malloc counter preloaded)" if _alloc_count else
             "not counted (no malloc counter preloaded)"), file=out)
    print("%-5s %5s %3s %6s %11s %10s %9s %8s %9s %6s  %s" % ("model", "batch", "thr", "steps", "step ms", "min-max",
                                                            "samples/s", "val acc", "allocs/st", "others", "MC dropout"),
          file=out)
    last = None
    for model, batch in ROWS:
        if model not in a.models:
            continue
        if model != last:
            print("# %s: %s" % (model, DESCRIBE[model]), file=out)
            last = model
        r = run_row(model, batch, d, n_train, a.repeat, a.mc_batch, a.mc_passes)
        rng = "%.3f-%.3f" % (r["step_ms_min"], r["step_ms_max"]) if a.repeat > 1 else ""
        allocs = "%9.2f" % r["allocs_per_step"] if r["allocs_per_step"] is not None else "%9s" % "-"
        line = "%-5s %5d %3d %6d %11.4f %10s %9.0f %8.4f %s %5.0f%%" % (
            model, batch, THREADS, r["steps"], r["step_ms"], rng, r["samples_per_second"], r["val_accuracy"], allocs,
            100 * r["others_cpu"])
        if model == "e":
            line += "  %.0f images x passes/s (%d passes, %.2f s, accuracy %.4f)" % (
                r["mc_images_passes_per_second"], r["mc_passes"], r["mc_seconds"], r["mc_accuracy"])
        print(line, file=out, flush=True)
        if a.json:
            row = {"framework": "pytorch", "model": model, "batch": batch, "threads": THREADS,
                   "step_ms": r["step_ms"], "samples_per_second": r["samples_per_second"],
                   "val_accuracy": r["val_accuracy"], "allocs_per_step": r["allocs_per_step"],
                   "steps": r["steps"], "repeats": r["repeats"], "step_ms_min": r["step_ms_min"],
                   "step_ms_max": r["step_ms_max"], "others_cpu": r["others_cpu"], "quick": a.quick,
                   "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}
            if model == "e":
                for k in ("mc_images_passes_per_second", "mc_passes", "mc_accuracy"):
                    row[k] = r[k]
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
