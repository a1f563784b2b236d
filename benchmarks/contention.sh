#!/bin/sh
# contention.sh — training speed when another process shares the cores
# (issue 9). On the 2-core machine, beside one CPU-bound busy loop, it runs
# bench-train at 1 thread and at its default 2 threads (with the pace
# governor, graph/pace.h), at 2 threads with the governor off
# (NABLA_ADAPT_THREADS=0: nabla before issue 9), and PyTorch at 1 and 2
# threads; then two bench-train processes started together, each at its
# default, against one alone at 1 thread. It prints samples/s and the
# ratios the issue's goals are stated in:
#   - beside a busy loop, nabla's default / nabla at 1 thread (goal >= 0.8),
#   - two nabla processes together, each / alone at 1 thread (goal >= 0.4).
#
#   benchmarks/contention.sh [--quick] [--models a,c,e] [--repeat N]
#                            [--build-dir DIR] [--out DIR] [--no-torch]
#
# --quick times 5,500-image epochs (and 10 MC passes); --models and
# --repeat go to both benchmarks (see bench_train.c: model a runs at batch
# 32, 256 and 1024, c at 32 and 256, e is MC-dropout inference). The busy
# loop is `sh -c 'while :; do :; done'`, started before and ended after
# each run by its process id. Run it on an otherwise idle machine: a third
# busy process changes every figure. JSON lines stay in --out (a temporary
# folder by default, printed at the end).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${NABLA_BUILD:-$ROOT/build}
OUT=""
PASS=""
TORCH=1
PY=/usr/bin/python3
MODELS="a,c,e"
REPEAT=""

usage() {
    sed -n '2,/^set -eu/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
    --quick) PASS="$PASS --quick" ;;
    --models) [ $# -ge 2 ] || usage; MODELS=$2; shift ;;
    --repeat) [ $# -ge 2 ] || usage; REPEAT="--repeat $2"; shift ;;
    --build-dir) [ $# -ge 2 ] || usage; BUILD=$2; shift ;;
    --out) [ $# -ge 2 ] || usage; OUT=$2; shift ;;
    --no-torch) TORCH=0 ;;
    -h|--help) usage ;;
    *) echo "contention.sh: unknown option $1" >&2; usage ;;
    esac
    shift
done
PASS="$PASS --models $MODELS $REPEAT"

if [ "$TORCH" = 1 ] && ! $PY -c 'import torch, numpy' 2>/dev/null; then
    echo "contention.sh: $PY cannot import torch and numpy (scripts/setup-bench.sh installs them); use --no-torch" >&2
    exit 1
fi

if [ ! -f "$BUILD/build.ninja" ]; then
    meson setup "$BUILD" "$ROOT" >/dev/null
fi
ninja -C "$BUILD" benchmarks/bench-train >/dev/null
BENCH=$BUILD/benchmarks/bench-train

if [ -z "$OUT" ]; then
    OUT=$(mktemp -d /tmp/nabla-contention.XXXXXX)
fi
mkdir -p "$OUT"

BUSY=""
busy_start() {
    sh -c 'while :; do :; done' &
    BUSY=$!
    sleep 0.5
}
busy_stop() {
    if [ -n "$BUSY" ]; then
        kill "$BUSY" 2>/dev/null || true
        wait "$BUSY" 2>/dev/null || true
        BUSY=""
    fi
}
trap busy_stop EXIT INT TERM

nabla() { # file, threads, extra env...
    f=$1 t=$2
    shift 2
    echo "== nabla: $* bench-train --json --threads $t$PASS > $f" >&2
    # shellcheck disable=SC2086
    env "$@" "$BENCH" --json --threads "$t" $PASS >"$OUT/$f" 2>>"$OUT/stderr.txt"
}

pytorch() { # file, threads
    echo "== PyTorch: pytorch_models.py --threads $2 --json$PASS > $1" >&2
    # shellcheck disable=SC2086
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS="$2" OMP_NUM_THREADS="$2" \
        $PY "$ROOT/benchmarks/pytorch_models.py" --threads "$2" --json $PASS >"$OUT/$1" 2>>"$OUT/stderr.txt"
}

# ---- alone ----
nabla alone-1.jsonl 1

# ---- beside a busy loop ----
busy_start
nabla busy-1.jsonl 1
nabla busy-2.jsonl 2
nabla busy-2-fixed.jsonl 2 NABLA_ADAPT_THREADS=0
if [ "$TORCH" = 1 ]; then
    pytorch busy-torch-1.jsonl 1
    pytorch busy-torch-2.jsonl 2
fi
busy_stop

# ---- two nabla processes started together, each at its default ----
echo "== nabla: two bench-train --json$PASS started together" >&2
# shellcheck disable=SC2086
"$BENCH" --json $PASS >"$OUT/pair-a.jsonl" 2>>"$OUT/stderr.txt" &
pa=$!
# shellcheck disable=SC2086
"$BENCH" --json $PASS >"$OUT/pair-b.jsonl" 2>>"$OUT/stderr.txt" &
pb=$!
wait "$pa"
wait "$pb"

$PY - "$OUT" <<'EOF'
import json, os, sys

out = sys.argv[1]
def rows(name):
    p = os.path.join(out, name)
    if not os.path.exists(p):
        return {}
    with open(p) as f:
        rs = [json.loads(l) for l in f if l.startswith("{")]
    return {(r["model"], r["batch"]): r for r in rs}

alone, b1, b2, b2f = rows("alone-1.jsonl"), rows("busy-1.jsonl"), rows("busy-2.jsonl"), rows("busy-2-fixed.jsonl")
t1, t2 = rows("busy-torch-1.jsonl"), rows("busy-torch-2.jsonl")
pa, pb = rows("pair-a.jsonl"), rows("pair-b.jsonl")
keys = sorted(set(alone) | set(b1), key=lambda k: ("abcde".index(k[0]), k[1]))

def sps(r, k, f="samples_per_second"):
    return r[k].get(f) if k in r else None
def fmt(v):
    return "%.0f" % v if v else "-"
def rat(a, b):
    return "%.2f" % (a / b) if a and b else "-"

print()
print("Beside one busy loop (samples/s; ratio = over nabla at 1 thread beside the same loop; goal >= 0.80)")
h = "%-3s %5s | %9s | %9s %6s | %9s %6s | %9s %9s" % (
    "mdl", "batch", "nabla 1", "nabla 2", "ratio", "2, fixed", "ratio", "torch 1", "torch 2")
print(h)
print("-" * len(h))
for k in keys:
    n1 = sps(b1, k)
    print("%-3s %5d | %9s | %9s %6s | %9s %6s | %9s %9s" % (
        k[0], k[1], fmt(n1), fmt(sps(b2, k)), rat(sps(b2, k), n1), fmt(sps(b2f, k)), rat(sps(b2f, k), n1),
        fmt(sps(t1, k)), fmt(sps(t2, k))))
f = "mc_images_passes_per_second"
if ("e", 32) in b1:
    n1 = sps(b1, ("e", 32), f)
    print("%-9s | %9s | %9s %6s | %9s %6s | %9s %9s   (MC dropout: images x passes/s)" % (
        "e MC", fmt(n1), fmt(sps(b2, ("e", 32), f)), rat(sps(b2, ("e", 32), f), n1),
        fmt(sps(b2f, ("e", 32), f)), rat(sps(b2f, ("e", 32), f), n1), fmt(sps(t1, ("e", 32), f)),
        fmt(sps(t2, ("e", 32), f))))
print("nabla 2: the default (2 threads, the pace governor on); 2, fixed: NABLA_ADAPT_THREADS=0, nabla before issue 9.")
print()
print("Two nabla processes started together, each at its default (ratio = over one alone at 1 thread; goal >= 0.40)")
h = "%-3s %5s | %9s | %9s %6s | %9s %6s" % ("mdl", "batch", "alone 1", "first", "ratio", "second", "ratio")
print(h)
print("-" * len(h))
for k in keys:
    a = sps(alone, k)
    print("%-3s %5d | %9s | %9s %6s | %9s %6s" % (k[0], k[1], fmt(a), fmt(sps(pa, k)), rat(sps(pa, k), a),
                                                  fmt(sps(pb, k)), rat(sps(pb, k), a)))
print()
print("JSON lines: %s" % out)
EOF
