#!/usr/bin/env python3
"""The scaling model of data-parallel training (issue 12), on paper.

A step on N machines computes the per-machine batch b (time b * c, c the
measured compute time per sample on one machine) and sums the gradients
(G bytes) with a ring allreduce:

    T_ar = 2 (N - 1) / N * G / bandwidth + 2 (N - 1) * latency

Without overlap the step takes b*c + T_ar. With the sums overlapped with
backward (about 2/3 of the compute), the first layer's gradient, ready
only when backward ends, cannot be hidden; the other layers' sums can,
behind the first layer's backward (its share of backward taken as its
share of the parameters, which is its share of the multiply-adds here):

    exposed = T_ar(G_first) + max(0, T_ar(G - G_first) - 2/3 * b*c * G_first/G)

Splitting the sum in two pays the latency twice; where that costs more than
it hides (many machines, little compute), one bucket of everything is the
better plan, so the overlapped step takes the smaller of the two exposed
times (nb_fit_dist's bucket_bytes chooses between them).

The efficiency is b*c over the step; the batch each machine needs for 90%
is the smallest b with efficiency >= 0.9.

    benchmarks/scaling_model.py --us-a 7.1 --us-c 14.6 [--batch 256] [--latency-us 10]

--us-a / --us-c: microseconds per sample of models a and c on one machine
(benchmarks/dist.sh's 1 process x 2 threads at batch 256, step time over
256). Prints markdown tables for benchmarks/README.md.
"""
import argparse
import math

# float32 gradients of benchmarks/bench_dist.c's models
PARAMS = {
    "a": 784 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10,  # 784-300-100-10
    "c": 784 * 100 + 19 * 100 * 100 + 20 * 2 * 100 + 100 * 10 + 10,  # 20 x [Dense(100), BN, ELU]
}
FIRST = {"a": 784 * 300 + 300, "c": 784 * 100}  # the first layer's, summed last
MACHINES = (4, 16, 64)
GBITS = (10, 25, 100)


def allreduce_s(n, grad_bytes, gbits, latency_s):
    return 2 * (n - 1) / n * grad_bytes / (gbits * 1e9 / 8) + 2 * (n - 1) * latency_s


def efficiency(b, c_s, model, n, gbits, latency_s, overlap):
    compute = b * c_s
    g, first = 4 * PARAMS[model], 4 * FIRST[model]
    if overlap:
        hidden_behind = 2 / 3 * compute * first / g
        exposed = min(allreduce_s(n, first, gbits, latency_s) + max(
            0.0, allreduce_s(n, g - first, gbits, latency_s) - hidden_behind), allreduce_s(n, g, gbits, latency_s))
    else:
        exposed = allreduce_s(n, g, gbits, latency_s)
    return compute / (compute + exposed)


def batch_for(target, *args):
    lo, hi = 1, 1
    while efficiency(hi, *args) < target:
        lo, hi = hi, hi * 2
        if hi > 1 << 26:
            return math.inf
    while lo < hi:  # the smallest b that reaches target
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if efficiency(mid, *args) < target else (lo, mid)
    return hi


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--us-a", type=float, required=True)
    p.add_argument("--us-c", type=float, required=True)
    p.add_argument("--batch", type=int, default=256, help="per-machine batch for the efficiency table")
    p.add_argument("--latency-us", type=float, default=10.0, help="per message (ring step)")
    a = p.parse_args()
    lat = a.latency_us * 1e-6
    for model, us in (("a", a.us_a), ("c", a.us_c)):
        g = 4 * PARAMS[model]
        c_s = us * 1e-6
        print(f"\nModel {model}: {PARAMS[model]:,} parameters ({g / 1e6:.2f} MB of gradients), "
              f"{us:.2f} us per sample on one machine; per-machine batch {a.batch}, latency {a.latency_us:g} us\n")
        print("| machines | network | allreduce (ms) | compute (ms) | efficiency, sums after backward | "
              "efficiency, overlapped | batch per machine for 90% (after / overlapped) |")
        print("|---|---|---|---|---|---|---|")
        for n in MACHINES:
            for gb in GBITS:
                t = allreduce_s(n, g, gb, lat)
                e0, e1 = (efficiency(a.batch, c_s, model, n, gb, lat, ov) for ov in (False, True))
                b0, b1 = (batch_for(0.9, c_s, model, n, gb, lat, ov) for ov in (False, True))
                print(f"| {n} | {gb} Gb/s | {1e3 * t:.3f} | {1e3 * a.batch * c_s:.3f} | {100 * e0:.0f}% | "
                      f"{100 * e1:.0f}% | {b0:,} / {b1:,} |")


if __name__ == "__main__":
    main()
