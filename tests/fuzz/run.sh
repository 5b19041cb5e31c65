#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan, in build-fuzz/) and runs
# each one for a bounded time; fails if any input crashes, hangs, leaks or
# allocates past the limits. Usage, from anywhere in the tree:
#     tests/fuzz/run.sh [SECONDS]        (default 60 per target)
# New corpus entries go to build-fuzz/fuzz-corpus/TARGET/ (kept between
# runs, so longer runs resume where the last stopped); the committed seeds
# in tests/fuzz/corpus/ are only read. A crashing input is saved as
# build-fuzz/fuzz-artifacts/TARGET-crash-*; replay it with
#     build-fuzz/tests/fuzz/TARGET FILE
# See docs/devel/fuzzing.md.
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${1:-60}
case "$seconds" in
'' | *[!0-9]*)
    echo "usage: $0 [SECONDS]" >&2
    exit 2
    ;;
esac
builddir=build-fuzz
targets=(fuzz-loadvm fuzz-qmp)

if [ ! -f "$builddir/build.ninja" ]; then
    ./configure --builddir="$builddir" --cc=clang --enable-fuzzing
fi
ninja -C "$builddir" -j2 "${targets[@]/#/tests/fuzz/}"

mkdir -p "$builddir/fuzz-artifacts"
# GLib's slice allocator caches memory: with it, LeakSanitizer cannot see a
# leaked GString, and libFuzzer's malloc/free counts never match, so it runs
# a whole leak check after every input (several times slower).
export G_SLICE=always-malloc
failed=0
for target in "${targets[@]}"; do
    name=${target#fuzz-}
    work="$builddir/fuzz-corpus/$name"
    log="$builddir/fuzz-$name.log"
    mkdir -p "$work"
    echo "=== $target: ${seconds}s"
    # -timeout: one input may take 10 s at most (a hang is a failure);
    # -malloc_limit_mb: no single allocation above 64 MiB (a length read
    # from the input must be checked before it sizes anything).
    if timeout $((seconds + 120)) "$builddir/tests/fuzz/$target" \
        -max_total_time="$seconds" -timeout=10 -malloc_limit_mb=64 \
        -rss_limit_mb=2048 -dict="tests/fuzz/$name.dict" \
        -artifact_prefix="$builddir/fuzz-artifacts/$target-" \
        -print_final_stats=1 "$work" "tests/fuzz/corpus/$name" \
        >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
        rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
        files=$(find "$work" -type f | wc -l)
        bytes=$(du -sk --apparent-size "$work" | cut -f1)
        echo "$target: $runs inputs in ${seconds}s ($rate/s), corpus" \
            "$files files (${bytes} KiB), peak RSS ${rss} MiB: no failure"
    else
        failed=1
        echo "$target: FAILED (log: $log)"
        grep -E '^==[0-9]+==ERROR|^SUMMARY|runtime error|ERROR \*\*|Test unit written' \
            "$log" | head -n 20 || tail -n 40 "$log"
    fi
done
exit "$failed"
