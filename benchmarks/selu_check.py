#!/usr/bin/python3
"""SELU cross-check: does nabla compute what PyTorch computes for the chapter's
100-layer SELU net, and does PyTorch train it?

  # nabla's side: initial weights, the batches, stats at init, 300 steps
  build/benchmarks/selu-check /tmp/selu 300 42
  # the same in PyTorch from the same weights and batches, side by side
  /usr/bin/python3 benchmarks/selu_check.py compare /tmp/selu
  # PyTorch with its own draw of Keras's LeCun normal, the chapter's recipe
  /usr/bin/python3 benchmarks/selu_check.py train --seed 0 --epochs 2
  # the same with the per-pixel std floored at 0.1 (inputs within +-10)
  /usr/bin/python3 benchmarks/selu_check.py train --seed 0 --epochs 2 --min-std 0.1

The net: 784 -> 100 x [Dense(100), SELU] -> Dense(10), kernels [in, out]
as nabla and Keras store them, softmax cross-entropy averaged over the
batch, SGD with Nesterov momentum 0.9 at lr 1e-3 (PyTorch's nesterov SGD
equals Keras's for a constant rate), batch 32; inputs standardized per pixel
with the training set's mean and population std (std 0 counts as 1), as
nb_standardizer does. Run with /usr/bin/python3 (Debian's python3-torch).
"""
import argparse
import csv
import gzip
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch

DEPTH, WIDTH, BATCH = 100, 100, 32
DATA = os.environ.get("NABLA_DATA", "/usr/share/datasets/fashion-mnist")


def read_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        body = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F32", t
        lo, hi = t["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(body[lo:hi], dtype="<f4").reshape(t["shape"]).copy())
    return out


def net_params(weights):
    """[(kernel [in,out], bias [out])] in layer order from nabla's tensors."""
    kernels = sorted((k for k in weights if k.endswith("/kernel")), key=lambda k: list(weights).index(k))
    return [(weights[k].clone().requires_grad_(), weights[k[: -len("kernel")] + "bias"].clone().requires_grad_())
            for k in kernels]


def forward(params, x, keep=False):
    outs = []
    h = x
    for i, (w, b) in enumerate(params):
        h = h @ w + b
        if i < len(params) - 1:
            h = torch.selu(h)
            if keep:
                h.retain_grad()
                outs.append(h)
    return h, outs


def load_idx(name):
    with gzip.open(os.path.join(DATA, name), "rb") as f:
        raw = f.read()
    magic = struct.unpack(">I", raw[:4])[0]
    if magic == 0x803:
        n, r, c = struct.unpack(">III", raw[4:16])
        return np.frombuffer(raw[16:], dtype=np.uint8).reshape(n, r * c)
    return np.frombuffer(raw[8:], dtype=np.uint8)


def compare(d):
    w = read_safetensors(os.path.join(d, "init.safetensors"))
    params = net_params(w)
    assert len(params) == DEPTH + 1, len(params)
    x_all = torch.from_numpy(np.fromfile(os.path.join(d, "x.f32"), dtype="<f4")).reshape(-1, 784)
    y_all = torch.from_numpy(np.fromfile(os.path.join(d, "y.f32"), dtype="<f4")).long()
    with open(os.path.join(d, "probe.csv")) as f:
        nb = list(csv.DictReader(f))
    with open(os.path.join(d, "steps.csv")) as f:
        nb_steps = [float(r["loss"]) for r in csv.DictReader(f)]

    x, y = x_all[:BATCH], y_all[:BATCH]
    ref = net_params({k: v.double() for k, v in w.items()})
    lr_, outs_r = forward(ref, x.double(), keep=True)
    torch.nn.functional.cross_entropy(lr_, y).backward()
    print(f"inputs: |x| max {x_all.abs().max():.1f}, batch 0 |x| max {x.abs().max():.1f}")
    logits, outs = forward(params, x, keep=True)
    loss = torch.nn.functional.cross_entropy(logits, y)
    loss.backward()
    print(f"loss at init: nabla {float(nb[0]['mean']):.7f}  pytorch {loss.item():.7f}")
    worst = {"mean": 0.0, "std": 0.0, "grad_out": 0.0, "grad_kernel": 0.0}
    worst_nb = dict(worst)
    worst_t = dict(worst)
    print("layer | mean nabla / torch | std nabla / torch | |dL/dh| nabla / torch | |dL/dW| nabla / torch")
    for i in range(DEPTH):
        h = outs[i].detach().double()
        t = {"mean": h.mean().item(), "std": h.std(unbiased=False).item(),
             "grad_out": outs[i].grad.double().norm().item(), "grad_kernel": params[i][0].grad.double().norm().item()}
        r = nb[i + 1]
        hr = outs_r[i].detach()
        f64 = {"mean": hr.mean().item(), "std": hr.std(unbiased=False).item(),
               "grad_out": outs_r[i].grad.norm().item(), "grad_kernel": ref[i][0].grad.norm().item()}
        for k in worst:
            scale = f64["std"] if k == "mean" else abs(f64[k])
            worst_nb[k] = max(worst_nb[k], abs(float(r[k]) - f64[k]) / scale)
            worst_t[k] = max(worst_t[k], abs(t[k] - f64[k]) / scale)
        for k in worst:
            a = float(r[k])
            # the mean is near 0: compare it on the scale of the std
            scale = t["std"] if k == "mean" else abs(t[k])
            worst[k] = max(worst[k], abs(a - t[k]) / scale)
        if i in (0, 1, 9, 49, 98, 99):
            print(f"{i + 1:5d} | {float(r['mean']):+.5f} / {t['mean']:+.5f} | {float(r['std']):.5f} / {t['std']:.5f} | "
                  f"{float(r['grad_out']):.4e} / {t['grad_out']:.4e} | {float(r['grad_kernel']):.4e} / {t['grad_kernel']:.4e}")
    print("largest relative difference over the 100 layers (mean: over the std):",
          ", ".join(f"{k} {v:.2e}" for k, v in worst.items()))
    for name, wd in [("nabla vs float64", worst_nb), ("pytorch float32 vs float64", worst_t)]:
        print(f"  {name}:", ", ".join(f"{k} {v:.2e}" for k, v in wd.items()))
    g1, g100 = outs[0].grad.norm().item(), outs[-1].grad.norm().item()
    print(f"|dL/dh1| / |dL/dh100| = {g1 / g100:.1f}")

    def run(dtype, perturb=0.0):
        ps = net_params({k: v.to(dtype) for k, v in w.items()})
        if perturb:  # one part in 1/perturb on every weight: what one rounding does
            g = torch.Generator().manual_seed(1)
            with torch.no_grad():
                for k, _ in ps:
                    k.mul_(1 + perturb * torch.randn(k.shape, generator=g, dtype=dtype))
        opt = torch.optim.SGD([t for p in ps for t in p], lr=1e-3, momentum=0.9, nesterov=True)
        out = []
        for s in range(len(nb_steps)):
            xb, yb = x_all[s * BATCH:(s + 1) * BATCH].to(dtype), y_all[s * BATCH:(s + 1) * BATCH]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(forward(ps, xb)[0], yb)
            loss.backward()
            opt.step()
            out.append(loss.item())
        return out

    th, t64, tp = run(torch.float32), run(torch.float64), run(torch.float32, 1e-7)
    print("step | loss nabla | pytorch f32 | pytorch f64 | pytorch f32, weights x(1+1e-7 N(0,1))")
    for s in [0, 1, 2, 3, 4, 6, 9, 19, 49, 99, 199, 299, 499, 999, 1499]:
        if s < len(th):
            print(f"{s + 1:4d} | {nb_steps[s]:.6f} | {th[s]:.6f} | {t64[s]:.6f} | {tp[s]:.6f}")
    n = len(th)
    for lo, hi in [(0, 50), (n - 100, n)]:
        print(f"mean loss steps {lo + 1}-{hi}: nabla {np.mean(nb_steps[lo:hi]):.4f}, pytorch f32 {np.mean(th[lo:hi]):.4f}, "
              f"f64 {np.mean(t64[lo:hi]):.4f}, f32 perturbed {np.mean(tp[lo:hi]):.4f}")


def train(seed, epochs, threads, init, lr, min_std):
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    x = load_idx("train-images-idx3-ubyte.gz").astype(np.float32) / 255
    y = load_idx("train-labels-idx1-ubyte.gz").astype(np.int64)
    xtr, ytr, xva, yva = x[:55000], y[:55000], x[55000:], y[55000:]
    mu = xtr.astype(np.float64).mean(0)
    sd = xtr.astype(np.float64).std(0)
    sd[sd == 0] = 1
    sd = np.maximum(sd, min_std)  # 0: as the book; 0.1 bounds |x| by 10
    mu32, sd32 = mu.astype(np.float32), sd.astype(np.float32)
    xtr = torch.from_numpy((xtr - mu32) / sd32)
    xva = torch.from_numpy((xva - mu32) / sd32)
    ytr, yva = torch.from_numpy(ytr), torch.from_numpy(yva)
    params = []
    dims = [784] + [WIDTH] * DEPTH + [10]
    for i in range(DEPTH + 1):
        w = torch.empty(dims[i], dims[i + 1])
        if init == "keras":  # LecunNormal: truncated to 2 std, rescaled by .8796
            s = math.sqrt(1.0 / dims[i]) / 0.87962566103423978
            torch.nn.init.trunc_normal_(w, std=s, a=-2 * s, b=2 * s)
        else:  # plain normal with std sqrt(1/fan_in), as PyTorch's SELU docs advise
            torch.nn.init.normal_(w, std=math.sqrt(1.0 / dims[i]))
        params.append((w.requires_grad_(), torch.zeros(dims[i + 1], requires_grad=True)))
    opt = torch.optim.SGD([t for p in params for t in p], lr=lr, momentum=0.9, nesterov=True)
    g = torch.Generator().manual_seed(seed)
    for e in range(epochs):
        t0 = time.time()
        perm = torch.randperm(len(xtr), generator=g)
        tot, nb = 0.0, 0
        for k in range(0, len(xtr), BATCH):
            idx = perm[k:k + BATCH]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(forward(params, xtr[idx])[0], ytr[idx])
            loss.backward()
            opt.step()
            tot += loss.item()
            nb += 1
        with torch.no_grad():
            lv = forward(params, xva)[0]
            acc = (lv.argmax(1) == yva).float().mean().item()
            vl = torch.nn.functional.cross_entropy(lv, yva).item()
        print(f"seed {seed} init {init} lr {lr:g} min_std {min_std:g} |x| max {xtr.abs().max():.0f} epoch {e + 1}: loss {tot / nb:.4f} val_loss {vl:.4f} "
              f"val_accuracy {acc:.4f} ({time.time() - t0:.0f} s)", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compare")
    c.add_argument("dir")
    t = sub.add_parser("train")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--epochs", type=int, default=2)
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--init", choices=["keras", "normal"], default="keras")
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--min-std", type=float, default=0.0, help="floor on the per-pixel std (0: none, as the book)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.cmd == "compare":
        compare(a.dir)
    else:
        train(a.seed, a.epochs, a.threads, a.init, a.lr, a.min_std)


if __name__ == "__main__":
    sys.exit(main())
