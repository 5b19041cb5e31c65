#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan, in build-fuzz/) and runs
# each one for a bounded time; fails if any input crashes, hangs, leaks or
# allocates past the limits. Usage, from anywhere in the tree:
#     tests/fuzz/run.sh [SECONDS]        (default 60 per target)
# The targets run side by side (FUZZ_JOBS at a time, default 2: one per
# core of a CI machine), so the whole run takes about SECONDS per pair.
# For each target the last lines printed include one of
#     result: TARGET ok
#     result: TARGET FAILED
# which .ci/run counts.
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
jobs=${FUZZ_JOBS:-2}

# run_target TARGET: one bounded run; its output goes to build-fuzz/fuzz-NAME.log.
run_target() {
    local target=$1 name=${1#fuzz-}
    local work="$builddir/fuzz-corpus/$name"
    mkdir -p "$work"
    # -timeout: one input may take 10 s at most (a hang is a failure);
    # -malloc_limit_mb: no single allocation above 64 MiB (a length read
    # from the input must be checked before it sizes anything).
    timeout $((seconds + 120)) "$builddir/tests/fuzz/$target" \
        -max_total_time="$seconds" -timeout=10 -malloc_limit_mb=64 \
        -rss_limit_mb=2048 -dict="tests/fuzz/$name.dict" \
        -artifact_prefix="$builddir/fuzz-artifacts/$target-" \
        -print_final_stats=1 "$work" "tests/fuzz/corpus/$name" \
        >"$builddir/fuzz-$name.log" 2>&1
}

# report TARGET STATUS: the summary of one finished run.
report() {
    local target=$1 status=$2 name=${1#fuzz-}
    local work="$builddir/fuzz-corpus/$name" log="$builddir/fuzz-$name.log"
    if [ "$status" -eq 0 ]; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
        rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")
        files=$(find "$work" -type f | wc -l)
        bytes=$(du -sk --apparent-size "$work" | cut -f1)
        echo "$target: $runs inputs in ${seconds}s ($rate/s), corpus" \
            "$files files (${bytes} KiB), peak RSS ${rss} MiB: no failure"
        echo "result: $target ok"
    else
        failed=1
        echo "$target: FAILED, exit status $status (log: $log)"
        grep -E '^==[0-9]+==ERROR|^SUMMARY|runtime error|ERROR \*\*|Test unit written' \
            "$log" | head -n 20 || tail -n 40 "$log"
        echo "result: $target FAILED"
    fi
}

failed=0
for ((i = 0; i < ${#targets[@]}; i += jobs)); do
    batch=("${targets[@]:i:jobs}")
    pids=()
    for target in "${batch[@]}"; do
        echo "=== $target: ${seconds}s"
        run_target "$target" &
        pids+=($!)
    done
    for j in "${!batch[@]}"; do
        status=0
        wait "${pids[$j]}" || status=$?
        report "${batch[$j]}" "$status"
    done
done
exit "$failed"
