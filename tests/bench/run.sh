#!/bin/sh
# `make bench`: the save/restore benchmark of issue 7 (tests/bench/bench.py,
# whose docstring and docs/devel/benchmarks.md say what it measures). It is a
# command of its own, never part of `meson test`.
#
#   make bench                                  # 4 GiB, 3 runs, every mode
#   make bench BENCH_ARGS="--sizes 1 --runs 1"  # a quick look
#   BUILD=build-x tests/bench/run.sh --sizes 1,4,8 --update-docs
#
# BUILD names the build directory (default build; `make BUILD=...` passes
# it on); BENCH_ARGS and any arguments go to bench.py (--help lists them).
set -e
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
if [ ! -x "$BUILD/minivm" ] || [ ! -x "$BUILD/tests/bench/bench-memcpy" ]; then
    ninja -C "$BUILD" minivm tests/bench/bench-memcpy
fi
# BENCH_ARGS is split on spaces on purpose: it carries several options.
# shellcheck disable=SC2086
exec python3 tests/bench/bench.py --build "$BUILD" $BENCH_ARGS "$@"
