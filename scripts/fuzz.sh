#!/bin/sh
# Builds the libFuzzer harnesses of fuzz/ with clang, ASan and UBSan in
# build-fuzz/ (the gcc builds are not touched) and runs each for SECONDS
# seconds, one after the other, from its committed seeds (fuzz/corpus/NAME)
# plus what earlier runs found (build-fuzz/fuzz-run/corpus-NAME).
# Fails (exit 1) on any crash, leak, sanitizer report, timeout (-timeout=20)
# or memory above 2 GB (-rss_limit_mb / -malloc_limit_mb); the reproducer is
# left in build-fuzz/fuzz-run/artifacts-NAME/ and the log's tail is printed.
# Ends with one line per harness: executions, coverage (cov, ft) and corpus.
# Needs the packages of scripts/setup.sh (clang, libclang-rt-14-dev, libomp-14-dev).
#   scripts/fuzz.sh 30                     # every harness, 30 s each
#   FUZZ_HARNESSES="idx csv" scripts/fuzz.sh 60
set -eu
cd "$(dirname "$0")/.."

secs=${1:-}
case $secs in
'' | *[!0-9]*)
    echo "usage: scripts/fuzz.sh SECONDS   (per harness)" >&2
    exit 2
    ;;
esac
harnesses=${FUZZ_HARNESSES:-model json idx csv}
dir=build-fuzz
run=$dir/fuzz-run

[ -f "$dir/build.ninja" ] || CC=clang meson setup "$dir" -Dfuzz=true -Dtests=false --buildtype=plain
targets=""
for h in $harnesses; do targets="$targets fuzz/fuzz_$h"; done
# ninja rather than `meson compile TARGET`, which misses targets added to
# meson.build since the last configure; ninja reconfigures first.
ninja -C "$dir" $targets

mkdir -p "$run"
summary=""
failed=0
for h in $harnesses; do
    corpus=$run/corpus-$h
    artifacts=$run/artifacts-$h
    log=$run/$h.log
    rm -rf "$artifacts"
    mkdir -p "$corpus" "$artifacts"
    echo "fuzz_$h: ${secs} s (log: $log)"
    rc=0
    UBSAN_OPTIONS=print_stacktrace=1 "$dir/fuzz/fuzz_$h" \
        -max_total_time="$secs" -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=20 \
        -dict="fuzz/$h.dict" -artifact_prefix="$artifacts/" -print_final_stats=1 \
        "$corpus" "fuzz/corpus/$h" >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    stats=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1 |
        sed -n 's/.*cov: \([0-9]*\) ft: \([0-9]*\) corp: \([^ ]*\).*/cov \1, ft \2, corpus \3/p')
    found=$(ls "$artifacts")
    if [ "$rc" -ne 0 ] || [ -n "$found" ]; then
        failed=1
        echo "fuzz_$h: FINDING (exit $rc): $found" >&2
        tail -n 60 "$log" >&2
        result=FAIL
    else
        result=ok
    fi
    summary="$summary
fuzz_$h: $result, ${secs} s, ${execs:-?} executions, ${stats:-no stats}"
done
echo "$summary" | sed 1d
[ "$failed" -eq 0 ]
