#!/bin/sh
# Runs the chapter-11 lab (examples/ch11_*.c) in full mode, writing each
# program's markdown table and PNG figures into docs/chapter11/ (or the
# folder given with --out), then the two learning-rate range tests drawn
# there (nabla lr-find); --quick runs the quick mode instead (a few
# seconds each; the claim checks then decide the exit status).
#
#   scripts/experiments.sh [--quick] [--build DIR] [--out DIR] [--seeds N]
#
# Builds first (meson compile -C BUILD, default build/). The full run takes
# about 18 minutes on the 2-core development machine (see docs/chapter11.md);
# each program's time is printed. Exits non-zero if any program fails its
# claim (1) or cannot run (2, 3); the others still run.
set -u
cd "$(dirname "$0")/.." || exit 2
build=build out=docs/chapter11 quick= seeds=
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) quick=--quick ;;
    --build) build="$2"; shift ;;
    --out) out="$2"; shift ;;
    --seeds) seeds="--seeds $2"; shift ;;
    *) echo "usage: $0 [--quick] [--build DIR] [--out DIR] [--seeds N]" >&2; exit 2 ;;
    esac
    shift
done
[ -d "$build" ] || meson setup "$build" --buildtype=release || exit 2
meson compile -C "$build" || exit 2
mkdir -p "$out" || exit 2
status=0
for prog in ch11_vanishing ch11_activations ch11_selu ch11_optimizers ch11_schedules ch11_batchnorm ch11_regularization \
    ch11_transfer ch11_pretraining ch11_auxiliary ch11_table113; do
    [ -x "$build/examples/$prog" ] || { echo "$prog: not built" >&2; status=2; continue; }
    start=$(date +%s)
    # shellcheck disable=SC2086 # $quick and $seeds are words or nothing
    "$build/examples/$prog" $quick $seeds "$out" > "$out/$prog.log" 2>&1
    rc=$?
    echo "$prog: exit $rc, $(( $(date +%s) - start )) s (log: $out/$prog.log)"
    [ $rc -eq 0 ] || status=1
done
# The learning-rate range tests drawn in docs/chapter11.md (sections 3 and 6),
# by the nabla command; quick mode runs them on a few steps.
lrfind() { # figure name, nabla lr-find's options...
    name=$1
    shift
    [ -n "$quick" ] && set -- "$@" --steps 60
    "$build/tools/nabla" lr-find "$@" --plot "$out/$name.png" > "$out/$name.log" 2>&1
    rc=$?
    echo "lr-find $name: exit $rc (log: $out/$name.log)"
    [ $rc -eq 0 ] || status=1
}
lrfind ch11_selu_lrfind --layers 100x100 --activation selu --init lecun_normal --standardize \
    --optimizer nesterov --momentum 0.9 --batch-size 32 --lr-min 1e-6 --lr-max 1 --seed 42
lrfind ch11_schedules_lrfind --layers 300,100 --activation relu --init he_normal \
    --optimizer momentum --momentum 0.9 --batch-size 32 --train-size 22000 --seed 42
exit $status
