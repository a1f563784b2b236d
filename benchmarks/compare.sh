#!/bin/sh
# compare.sh — nabla against PyTorch on the book's models (issue 4): builds
# bench-train if needed, runs it and benchmarks/pytorch_models.py at 1 and 2
# threads, counts nabla's system calls per step with strace, and prints per
# model/batch both frameworks' samples/s and their ratio, at each one's best
# thread count and at equal thread counts, with validation accuracies,
# heap allocations per step and system calls per step.
#
#   benchmarks/compare.sh [--quick] [--models a,b,c,d,e] [--repeat N] [--seed S]
#                         [--quiet-wait S] [--mc-batch N] [--mc-passes N]
#                         [--build-dir DIR] [--out DIR] [--no-passive] [--no-strace]
#
# --quick, --models, --repeat, --seed, --quiet-wait, --mc-batch and
# --mc-passes go to both benchmarks (see bench_train.c). The build
# directory is ./build unless --build-dir or NABLA_BUILD says otherwise; it
# is set up and built with meson if needed.
#
# PyTorch runs in one process per thread count n, with OPENBLAS_CORETYPE and
# OPENBLAS_L2_SIZE unset (they force slower OpenBLAS kernels) and
# OPENBLAS_NUM_THREADS=n OMP_NUM_THREADS=n set before torch is imported, then
# torch.set_num_threads(n). A third run ("2p") adds OMP_WAIT_POLICY=passive
# at 2 threads: on a 2-core machine libgomp's spinning workers and
# OpenBLAS's own threads fight over the cores, and passive waiting is
# PyTorch's fastest 2-thread setting there (--no-passive leaves it out).
# PyTorch's best is the best of its runs. Its heap allocations are counted
# by preloading tests/alloc_count.c built as a shared library.
#
# System calls per step: `strace -c -f` around `bench-train --probe` (N
# training steps on synthetic data) at two step counts; the difference of
# the totals divided by the difference of the steps leaves out start-up.
# strace slows the threads down, which can change how often they sleep.
#
# The JSON lines of every run stay in the --out directory (a temporary one
# by default, printed at the end).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${NABLA_BUILD:-$ROOT/build}
OUT=""
PASS=""
MODELS="a,b,c,d,e"
PASSIVE=1
STRACE=1
QUICK=0
PY=/usr/bin/python3

usage() {
    sed -n '2,/^set -eu/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
    --quick) PASS="$PASS --quick"; QUICK=1 ;;
    --models) [ $# -ge 2 ] || usage; MODELS=$2; PASS="$PASS --models $2"; shift ;;
    --repeat|--mc-batch|--mc-passes|--seed|--quiet-wait) [ $# -ge 2 ] || usage; PASS="$PASS $1 $2"; shift ;;
    --build-dir) [ $# -ge 2 ] || usage; BUILD=$2; shift ;;
    --out) [ $# -ge 2 ] || usage; OUT=$2; shift ;;
    --no-passive) PASSIVE=0 ;;
    --no-strace) STRACE=0 ;;
    -h|--help) usage ;;
    *) echo "compare.sh: unknown option $1" >&2; usage ;;
    esac
    shift
done

if ! $PY -c 'import torch, numpy' 2>/dev/null; then
    echo "compare.sh: $PY cannot import torch and numpy; run scripts/setup-bench.sh" >&2
    exit 1
fi
if [ "$STRACE" = 1 ] && ! command -v strace >/dev/null; then
    echo "compare.sh: strace not found (scripts/setup-bench.sh installs it); no system-call counts" >&2
    STRACE=0
fi

# ---- build ----
if [ ! -f "$BUILD/build.ninja" ]; then
    meson setup "$BUILD" "$ROOT" >/dev/null
fi
ninja -C "$BUILD" benchmarks/bench-train >/dev/null
BENCH=$BUILD/benchmarks/bench-train
PRELOAD=$BUILD/alloc-count-preload.so
if [ ! -f "$PRELOAD" ] || [ "$ROOT/tests/alloc_count.c" -nt "$PRELOAD" ]; then
    ${CC:-cc} -O2 -shared -fPIC "$ROOT/tests/alloc_count.c" -o "$PRELOAD"
fi

if [ -z "$OUT" ]; then
    OUT=$(mktemp -d /tmp/nabla-compare.XXXXXX)
fi
mkdir -p "$OUT"
: >"$OUT/nabla.jsonl"
: >"$OUT/pytorch.jsonl"
: >"$OUT/syscalls.jsonl"

# ---- nabla ----
echo "== nabla: bench-train --json --threads 1,2$PASS" >&2
# shellcheck disable=SC2086
"$BENCH" --json --threads 1,2 $PASS >"$OUT/nabla.jsonl"

# ---- PyTorch, one process per thread count ----
pytorch() { # threads, extra env...
    n=$1
    shift
    echo "== PyTorch: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=$n OMP_NUM_THREADS=$n $*" \
        "$PY benchmarks/pytorch_models.py --threads $n --json$PASS" >&2
    # shellcheck disable=SC2086
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS="$n" OMP_NUM_THREADS="$n" \
        LD_PRELOAD="$PRELOAD" "$@" \
        $PY "$ROOT/benchmarks/pytorch_models.py" --threads "$n" --json $PASS >>"$OUT/pytorch.jsonl"
}
pytorch 1
pytorch 2
if [ "$PASSIVE" = 1 ]; then
    pytorch 2 OMP_WAIT_POLICY=passive
fi

# ---- nabla's system calls per step ----
syscalls() { # spec threads steps -> total calls
    strace -c -f -o "$OUT/strace.txt" "$BENCH" --probe "$1" --threads "$2" --steps "$3" >/dev/null
    awk '$NF == "total" { print $4 }' "$OUT/strace.txt"
}
if [ "$STRACE" = 1 ]; then
    echo "== nabla: system calls per step (strace -c -f around bench-train --probe, two step counts)" >&2
    for spec in a:32 a:256 a:1024 b:32 c:32 c:256 d:32 e:32; do
        case ",$MODELS," in *"${spec%%:*}"*) ;; *) continue ;; esac
        batch=${spec#*:}
        if [ "$batch" -ge 1024 ]; then s1=5 s2=25; else s1=20 s2=120; fi
        for t in 1 2; do
            c1=$(syscalls "$spec" "$t" "$s1")
            c2=$(syscalls "$spec" "$t" "$s2")
            printf '{"framework":"nabla","model":"%s","batch":%s,"threads":%s,"syscalls_per_step":%s}\n' \
                "${spec%%:*}" "$batch" "$t" "$(awk -v a="$c1" -v b="$c2" -v n=$((s2 - s1)) \
                'BEGIN { printf "%.2f", (b - a) / n }')" >>"$OUT/syscalls.jsonl"
        done
    done
fi

# ---- the comparison ----
$PY - "$OUT" "$QUICK" <<'EOF'
import json, os, sys

out, quick = sys.argv[1], sys.argv[2] == "1"
def rows(name):
    with open(os.path.join(out, name)) as f:
        return [json.loads(l) for l in f if l.startswith("{")]
nb, pt, sc = rows("nabla.jsonl"), rows("pytorch.jsonl"), rows("syscalls.jsonl")
for r in pt:
    r["cfg"] = "%dp" % r["threads"] if r.get("omp_wait_policy") else str(r["threads"])
for r in nb:
    r["cfg"] = str(r["threads"])
targets = {("a", 32): 2, ("b", 32): 2, ("c", 32): 5, ("d", 32): 3, ("a", 256): 1.5, ("c", 256): 1.5}
keys = []
for r in nb + pt:
    if (r["model"], r["batch"]) not in keys:
        keys.append((r["model"], r["batch"]))
order = "abcde"
keys.sort(key=lambda k: (order.index(k[0]), k[1]))

def pick(rs, key, threads=None):
    rs = [r for r in rs if (r["model"], r["batch"]) == key and (threads is None or r["threads"] == threads)]
    return max(rs, key=lambda r: r["samples_per_second"]) if rs else None

def fmt(v, f="%.0f"):
    return f % v if v is not None else "-"

def ratio(a, b, field="samples_per_second"):
    return a[field] / b[field] if a and b and b.get(field) else None

def rfmt(a, b, field="samples_per_second"):
    """The ratio, starred when another process took over 5% of the machine during either run."""
    r = ratio(a, b, field)
    if r is None:
        return "-"
    busy = max(x.get("others_cpu", 0) or 0 for x in (a, b)) > 0.05
    return "%.2fx%s" % (r, "*" if busy else "")

def syscalls(key, t):
    for r in sc:
        if (r["model"], r["batch"], r["threads"]) == (key[0], key[1], t):
            return r["syscalls_per_step"]
    return None

print()
print("nabla vs PyTorch, Fashion-MNIST, one epoch of %s images after a warm-up (samples/s; ratio = nabla/PyTorch)"
      % ("5,500" if quick else "55,000"))
print("PyTorch: one process per thread count n, OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset, OPENBLAS_NUM_THREADS=n "
      "OMP_NUM_THREADS=n before importing torch;")
print("         2p = 2 threads with OMP_WAIT_POLICY=passive too. thr = the best thread count (configuration) of each.")
h = ("%-3s %5s | %8s %3s %8s %3s %7s %7s | %8s %8s %7s | %8s %8s %7s | %7s %7s | %6s %7s | %5s %5s"
     % ("mdl", "batch", "nabla", "thr", "pytorch", "thr", "ratio", "target", "nabla 1", "torch 1", "ratio",
        "nabla 2", "torch 2", "ratio", "val nb", "val pt", "alc nb", "alc pt", "sys 1", "sys 2"))
print(h)
print("-" * len(h))
for key in keys:
    bn, bp = pick(nb, key), pick(pt, key)
    n1, p1, n2, p2 = pick(nb, key, 1), pick(pt, key, 1), pick(nb, key, 2), pick(pt, key, 2)
    rb, r1, r2 = ratio(bn, bp), ratio(n1, p1), ratio(n2, p2)
    tgt = targets.get(key)
    tg = ("%.1fx %s" % (tgt, "ok" if rb >= tgt else "NO")) if tgt and rb else ""
    an = bn["allocs_per_step"] if bn else None
    ap = bp["allocs_per_step"] if bp else None
    print("%-3s %5d | %8s %3s %8s %3s %7s %7s | %8s %8s %7s | %8s %8s %7s | %7s %7s | %6s %7s | %5s %5s" % (
        key[0], key[1], fmt(bn and bn["samples_per_second"]), bn["cfg"] if bn else "-",
        fmt(bp and bp["samples_per_second"]), bp["cfg"] if bp else "-", rfmt(bn, bp), tg,
        fmt(n1 and n1["samples_per_second"]), fmt(p1 and p1["samples_per_second"]), rfmt(n1, p1),
        fmt(n2 and n2["samples_per_second"]), fmt(p2 and p2["samples_per_second"]), rfmt(n2, p2),
        fmt(bn and bn["val_accuracy"], "%.4f"), fmt(bp and bp["val_accuracy"], "%.4f"),
        fmt(an, "%.1f"), fmt(ap, "%.0f"), fmt(syscalls(key, 1), "%.1f"), fmt(syscalls(key, 2), "%.1f")))

# the spread over --repeat runs: each run's median step, min and max
reps = max([r.get("repeats", 1) for r in nb + pt] or [1])
if reps > 1:
    print()
    print("Step time over the %d repeats at each one's best thread count: median (min-max), ms; the ratio's range"
          % reps)
    print("pairs nabla's slowest run with PyTorch's fastest and the other way round.")
    h2 = "%-3s %5s | %-26s | %-26s | %7s %-13s" % ("mdl", "batch", "nabla ms/step", "PyTorch ms/step", "ratio", "range")
    print(h2)
    print("-" * len(h2))
    for key in keys:
        bn, bp = pick(nb, key), pick(pt, key)
        if not (bn and bp):
            continue
        lo, hi = bp["step_ms_min"] / bn["step_ms_max"], bp["step_ms_max"] / bn["step_ms_min"]
        print("%-3s %5d | %8.4f (%.4f-%.4f) | %8.4f (%.4f-%.4f) | %6.2fx %.2f-%.2fx" % (
            key[0], key[1], bn["step_ms"], bn["step_ms_min"], bn["step_ms_max"], bp["step_ms"], bp["step_ms_min"],
            bp["step_ms_max"], bp["step_ms"] / bn["step_ms"], lo, hi))

# MC dropout (model e)
f = "mc_images_passes_per_second"
def pick_mc(rs, threads=None):
    rs = [r for r in rs if r["model"] == "e" and f in r and (threads is None or r["threads"] == threads)]
    return max(rs, key=lambda r: r[f]) if rs else None
bn, bp = pick_mc(nb), pick_mc(pt)
if bn or bp:
    n1, p1, n2, p2 = pick_mc(nb, 1), pick_mc(pt, 1), pick_mc(nb, 2), pick_mc(pt, 2)
    rb = ratio(bn, bp, f)
    print()
    print("MC dropout (model e, %s passes over the 10,000 test images): images x passes per second"
          % (bn or bp)["mc_passes"])
    print("  best: nabla %s (%s thr), PyTorch %s (%s), ratio %s (target 3x: %s)" % (
        fmt(bn and bn[f]), bn["cfg"] if bn else "-", fmt(bp and bp[f]), bp["cfg"] if bp else "-", rfmt(bn, bp, f),
        ("ok" if rb >= 3 else "NO") if rb else "-"))
    print("  1 thread: nabla %s, PyTorch %s, ratio %s;  2 threads: nabla %s, PyTorch %s, ratio %s" % (
        fmt(n1 and n1[f]), fmt(p1 and p1[f]), rfmt(n1, p1, f), fmt(n2 and n2[f]), fmt(p2 and p2[f]),
        rfmt(n2, p2, f)))
    print("  accuracy of the mean prediction: nabla %s, PyTorch %s" % (
        fmt(bn and bn.get("mc_accuracy"), "%.4f"), fmt(bp and bp.get("mc_accuracy"), "%.4f")))

a1, a2 = pick(nb, ("a", 1024), 1), pick(nb, ("a", 1024), 2)
if a1 and a2:
    s = a2["samples_per_second"] / a1["samples_per_second"]
    print()
    print("nabla, model a at batch 1024: 2 threads / 1 thread = %s (target 1.7x: %s)"
          % (rfmt(a2, a1), "ok" if s >= 1.7 else "NO"))
print()
print("ratio: nabla samples/s over PyTorch's; \"torch 2\" is the better of PyTorch's 2-thread runs (2 and 2p).")
print("val: validation accuracy (5,000 images) after the timed epoch, at each one's best thread count.")
print("alc: heap allocations per steady-state training step (whole process); sys 1/2: nabla's system calls per")
print("step at 1 and 2 threads (strace -c -f). *: another process used over 5% of the machine's CPUs during")
print("one of the two runs (their \"others\" column): that ratio is suspect.")
print("JSON lines: %s/{nabla,pytorch,syscalls}.jsonl" % out)
EOF
