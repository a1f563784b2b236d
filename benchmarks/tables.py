#!/usr/bin/python3
"""tables.py — the two Markdown tables of benchmarks/README.md ("Measured") from the JSON lines of
nabla-bench (`--json` or `--json-out FILE`):

    ./build/benchmarks/nabla-bench --json-out ops.jsonl && benchmarks/tables.py ops.jsonl

matmul: GFLOP/s of nabla (net time in brackets), a bare BLIS call and a bare OpenBLAS call per
shape, thread count and pass, with "ok" where nabla is at least as fast as the faster of the
two. Every other op: net speed as a percentage of the copy limit at 1M and 4M elements, and the
net time at [32,300]. Rows timed while other processes were busy are starred."""
import json
import sys


def load(path):
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.startswith("{")]
    return [r for r in rows if r.get("type") == "op"]


def star(r):
    return "*" if (r.get("others_cpu_share") or 0) > 0.10 else ""


def matmul_table(rows):
    mm = {(r["shape"], r["threads"], r["pass"]): r for r in rows if r["op"] == "matmul"}
    shapes = []
    for r in rows:
        if r["op"] == "matmul" and (r["shape"], r["threads"]) not in shapes:
            shapes.append((r["shape"], r["threads"]))
    out = ["| shape | thr | fwd: nabla | BLIS | OpenBLAS | bwd: nabla | BLIS | OpenBLAS |",
           "|---|---|---|---|---|---|---|---|"]
    wins = total = 0
    for shape, thr in shapes:
        cells = []
        for p in ("fwd", "bwd"):
            r = mm.get((shape, thr, p))
            if not r or r.get("rate") is None:
                cells += ["-", "-", "-"]
                continue
            best = max(r.get("blis_rate") or 0, r.get("openblas_rate") or 0)
            ok = r["rate"] >= best
            wins += ok
            total += 1
            cells += ["%s%.0f (%.1f µs)%s" % ("**" if ok else "", r["rate"], r["net_us"], "**" if ok else ""),
                      "%.0f" % (r.get("blis_rate") or 0),
                      "%.0f%s" % (r["openblas_rate"], star(r)) if r.get("openblas_rate") else "-"]
        out.append("| `%s` | %d | %s |" % (shape, thr, " | ".join(cells)))
    out.append("")
    out.append("Bold: at least as fast as the faster of BLIS and OpenBLAS (%d of %d)." % (wins, total))
    return "\n".join(out)


def other_table(rows):
    by = {(r["op"], r["shape"], r["threads"], r["pass"]): r for r in rows if r["op"] != "matmul"}
    ops = []
    for r in rows:
        if r["op"] != "matmul" and r["op"] not in ops:
            ops.append(r["op"])

    def pct(op, shape, thr, p):
        r = by.get((op, shape, thr, p))
        if not r or r.get("pct_of_copy") is None:
            return "-"
        return "%.0f%%%s" % (r["pct_of_copy"], star(r))

    def us(op, shape, thr, p):
        r = by.get((op, shape, thr, p))
        return "%.2f" % r["net_us"] if r and r.get("net_us") is not None else "-"

    out = ["| op | 1M, 1 thr fwd / bwd | 1M, 2 thr fwd / bwd | 4M, 1 thr fwd / bwd | 4M, 2 thr fwd / bwd "
           "| [32,300], 1 thr fwd / bwd (µs) |",
           "|---|---|---|---|---|---|"]
    for op in ops:
        cells = []
        for shape in ("[4096,256]", "[16384,256]"):
            for thr in (1, 2):
                cells.append("%s / %s" % (pct(op, shape, thr, "fwd"), pct(op, shape, thr, "bwd")))
        cells.append("%s / %s" % (us(op, "[32,300]", 1, "fwd"), us(op, "[32,300]", 1, "bwd")))
        out.append("| %s | %s |" % (op, " | ".join(cells)))
    return "\n".join(out)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    rows = load(sys.argv[1])
    print(matmul_table(rows))
    print()
    print(other_table(rows))


if __name__ == "__main__":
    main()
