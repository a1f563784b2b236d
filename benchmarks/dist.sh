#!/bin/sh
# dist.sh — data-parallel training on this machine (issue 12): models a and c
# at global batches 256 and 1024, as 2 processes x 1 thread (mpirun), 1
# process x 2 threads and 1 process x 1 thread, with the allreduce's time
# per step, the sums started during backward (overlapped) and after it.
# Run it alone on an idle machine: a second busy process ruins any 2-way
# figure.
#   benchmarks/dist.sh [--images N]     (default 11,000 images an epoch)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${NABLA_BUILD:-$ROOT/build}
images=11000
[ "${1:-}" = "--images" ] && images=$2
[ -x "$BUILD/benchmarks/bench-dist" ] || meson compile -C "$BUILD" benchmarks/bench-dist
bench=$BUILD/benchmarks/bench-dist
for model in a c; do
    for batch in 256 1024; do
        "$bench" --model $model --batch $batch --threads 1 --images "$images"
        "$bench" --model $model --batch $batch --threads 2 --images "$images"
        for overlap in off on; do
            mpirun -np 2 --oversubscribe --allow-run-as-root --bind-to none \
                "$bench" --model $model --batch $batch --threads 1 --images "$images" --overlap $overlap
        done
    done
done
