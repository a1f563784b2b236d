#!/bin/sh
# Builds nabla and runs the whole Criterion suite twice: an optimized build,
# then a debug build under AddressSanitizer and UndefinedBehaviorSanitizer.
# Needs the packages of scripts/setup.sh. Ends with one line of totals.
set -eu
cd "$(dirname "$0")/.."

run_suite() { # build dir, meson setup options...
    dir=$1
    shift
    [ -f "$dir/build.ninja" ] || meson setup "$dir" "$@"
    meson compile -C "$dir"
    meson test -C "$dir" --print-errorlogs
}

run_suite build --buildtype=release
run_suite build-asan --buildtype=debug -Db_sanitize=address,undefined

# Criterion's Synthesis lines of both runs, then their totals on one line.
passed=0
failed=0
for dir in build build-asan; do
    line=$(grep 'Synthesis:' "$dir/meson-logs/testlog.txt" | tail -n 1)
    echo "$dir: $line"
    p=$(echo "$line" | sed -n 's/.*Passing: \([0-9]*\).*/\1/p')
    f=$(echo "$line" | sed -n 's/.*Failing: \([0-9]*\).*/\1/p')
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-1}))
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
