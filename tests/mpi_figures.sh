#!/bin/sh
# tools/bench/mpi_figures, shrunk: its runs (1 process x 2 threads and 2 ranks x 1 thread, both
# LMs) and its allreduce timings complete and print a figure for each, on made-up text, 3 steps
# (with the cfgs' sample prompt "ROMEO:" among its words).
# Skips (77) without MPI and under valgrind, as mpi_check.sh.
#   mpi_figures.sh BUILD_DIR SOURCE_ROOT MPI_FOUND
set -eu
BUILD=$1
ROOT=$2
if [ "$3" != true ]; then
    echo "SKIP: built without MPI (meson setup -Dmpi=enabled; apt-get install openmpi-bin libopenmpi-dev)"
    exit 77
fi
if [ -n "${TZ_VALGRIND:-}" ]; then
    echo "SKIP: not under valgrind"
    exit 77
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
awk 'BEGIN { split("the cat sat on a mat and dog ran far away ROMEO:", w, " ");
    for (i = 0; i < 4000; i++) printf "%s%s", w[(i * 7 + int(i / 12)) % 12 + 1], i % 9 == 8 ? "\n" : " " }' \
    > "$TMP/text.txt"
out=$(STEPS=3 ALLREDUCE_ITERS=3 DATA="$TMP/text.txt" MPI_BIND=none timeout 240 "$ROOT/tools/bench/mpi_figures" "$BUILD" 1)
echo "$out"
for m in lstm transformer; do
    echo "$out" | grep -Eq "^$m run 1: 1 x 2 threads [0-9.]+ tok/s; 2 ranks x 1 thread [0-9.]+ tok/s, ms_allreduce [0-9.]+$" ||
        { echo "FAIL: no figures for $m" >&2; exit 1; }
    echo "$out" | grep -q "^$m: .*allreduce of" || { echo "FAIL: no allreduce timing for $m" >&2; exit 1; }
done
echo "ok: mpi_figures prints every figure"
