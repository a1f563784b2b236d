#!/bin/sh
# Installs nabla into a temporary folder (meson install --destdir) and builds
# a user's benchmark of their own op against it with pkg-config nabla-bench
# alone, as someone without the source tree would, then runs it briefly and
# checks that it times the op forward and backward. Any failure fails the
# test: nothing is skipped.
#
#   test_bench_install.sh MESON PKG_CONFIG BUILD_DIR PREFIX LIBDIR USER_SOURCE CC [CC ARGS...]
set -eu
meson=$1 pkgconf=$2 build=$3 prefix=$4 libdir=$5 src=$6
shift 6
fail() { echo "test_bench_install: $*" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nabla-bench-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/dest
"$meson" install -C "$build" --destdir "$dest" --no-rebuild --quiet >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log" >&2; fail "meson install --destdir failed"; }

# The prefix as the files now lie under dest (libdir may be absolute).
root=$dest$prefix
case $libdir in /*) libpath=$dest$libdir ;; *) libpath=$root/$libdir ;; esac
for f in "$root/include/nabla/bench.h" "$libpath/pkgconfig/nabla-bench.pc" "$libpath/pkgconfig/nabla.pc" \
         "$libpath/libnabla-bench.so" "$root/bin/nabla-bench"; do
    [ -e "$f" ] || fail "not installed: ${f#"$dest"}"
done

# The installed .pc files first (the system's give nabla's zlib and jansson),
# with their prefix moved to where they lie. meson test points
# LD_LIBRARY_PATH at the build tree: a user has no build tree.
unset LD_LIBRARY_PATH
pc() { PKG_CONFIG_PATH=$libpath/pkgconfig "$pkgconf" --define-variable=prefix="$root" "$@"; }
flags=$(pc --cflags --libs nabla-bench) || fail "pkg-config --cflags --libs nabla-bench failed"
echo "pkg-config nabla-bench: $flags"
case $flags in *-lnabla-bench*) ;; *) fail "no -lnabla-bench in: $flags" ;; esac
case $flags in *-lnabla\ *|*-lnabla) ;; *) fail "no -lnabla (Requires: nabla) in: $flags" ;; esac

# shellcheck disable=SC2086 # the flags are words
"$@" -O2 -Wall -Wextra -Werror -o "$tmp/my-bench" "$src" $flags -lm -Wl,-rpath,"$libpath" ||
    fail "the user's benchmark did not compile against the installed headers and libraries"
ldd "$tmp/my-bench" | grep -q "libnabla-bench.so.* => $libpath/" ||
    { ldd "$tmp/my-bench" >&2; fail "my-bench does not load the installed libnabla-bench"; }

# A short run of the user's op alone: its rows, forward and backward, with times.
"$tmp/my-bench" --op user_cube --quick --threads 1 --shapes 64x256 --reps 5 --budget 0.01 --json \
    >"$tmp/out.jsonl" 2>"$tmp/err.txt" || { cat "$tmp/out.jsonl" "$tmp/err.txt" >&2; fail "my-bench failed"; }
cat "$tmp/out.jsonl"
for pass in fwd bwd; do
    grep -q "\"op\":\"user_cube\",\"pass\":\"$pass\",\"shape\":\"\[64,256\]\",\"threads\":1,\"runs\":[1-9][0-9]*,\"net_us\":" \
        "$tmp/out.jsonl" || fail "no $pass row for user_cube in my-bench's output"
done
grep -q '"type":"summary"' "$tmp/out.jsonl" || fail "my-bench's output has no summary line"

# The installed nabla-bench runs and lists the user-visible ops (its rpath
# names the real prefix, not dest, hence LD_LIBRARY_PATH).
LD_LIBRARY_PATH=$libpath "$root/bin/nabla-bench" --list >"$tmp/list.txt" || fail "the installed nabla-bench --list failed"
grep -qx swish "$tmp/list.txt" || fail "the installed nabla-bench does not list swish"
echo "test_bench_install: ok"
