#!/usr/bin/env bash
# The minivm demo, from a fresh Debian machine: installs what the build
# needs, builds, boots a guest running the a-b workload, lets it run, stops
# it, dumps its RAM with pmemsave and runs the a-b checker on the dump,
# printing what it measured along the way. Everything it does goes through
# QMP, the way a management tool would drive minivm.
#
#     scripts/demo.sh            # RAM=256M BUILD=build by default
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
RAM=${RAM:-256M}
RUN_SECONDS=${RUN_SECONDS:-3}

step() { printf '\n== %s\n' "$*"; }
now_ms() { date +%s%3N; }

step "Dependencies"
scripts/install-deps.sh
step "Build ($BUILD)"
[ -f "$BUILD/build.ninja" ] || ./configure --builddir="$BUILD"
make BUILD="$BUILD" >/dev/null
echo "built $BUILD/minivm"

work=$(mktemp -d /tmp/minivm-demo.XXXXXX)
vm_pid=
cleanup() {
    [ -n "$vm_pid" ] && kill -9 "$vm_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# qmp JSON: one command on a fresh QMP connection; prints the "return"
# value as JSON, or the error and fails. qmp_ms JSON prints instead how
# long the command took, from sending it to its reply.
qmp() {
    python3 - "$work/qmp.sock" "$1" "${2:-}" <<'PY'
import json, socket, sys, time

sock = socket.socket(socket.AF_UNIX)
sock.connect(sys.argv[1])
stream = sock.makefile("rw", encoding="utf-8", newline="\n")

def reply():
    while True:  # replies and events are one JSON object per line
        line = stream.readline()
        if not line:
            sys.exit("QMP connection closed before the reply")
        msg = json.loads(line)
        if "return" in msg or "error" in msg:
            return msg

json.loads(stream.readline())  # the greeting
for cmd in ('{"execute": "qmp_capabilities"}', sys.argv[2]):
    start = time.monotonic()
    stream.write(cmd + "\n")
    stream.flush()
    msg = reply()
    if "error" in msg:
        sys.exit("QMP error: %s" % msg["error"]["desc"])
if sys.argv[3] == "ms":
    print("%.1f ms" % ((time.monotonic() - start) * 1000))
else:
    print(json.dumps(msg["return"]))
PY
}
qmp_ms() { qmp "$1" ms; }

serial_bytes() { stat -c %s "$work/serial.txt" 2>/dev/null || echo 0; }

step "Boot a $RAM guest running the a-b workload"
"$BUILD/minivm" -m "$RAM" -workload a-b \
    -qmp "unix:$work/qmp.sock,server=on,wait=off" \
    -serial "file:$work/serial.txt" </dev/null &
vm_pid=$!
for _ in $(seq 500); do
    [ -S "$work/qmp.sock" ] && break
    sleep 0.01
done
echo "minivm pid $vm_pid, QMP on $work/qmp.sock"
echo "query-version: $(qmp '{"execute": "query-version"}')"
echo "query-status:  $(qmp '{"execute": "query-status"}')"

step "Let it run for $RUN_SECONDS s"
b0=$(serial_bytes)
t0=$(now_ms)
sleep "$RUN_SECONDS"
b1=$(serial_bytes)
t1=$(now_ms)
# The guest prints 'A' once, then a 'B' every 64 passes over its pages.
passes=$(( (b1 - b0) * 64 ))
echo "serial output: $(head -c 60 "$work/serial.txt")... ($b1 bytes)"
echo "about $passes passes over the a-b pages in $(( t1 - t0 )) ms" \
     "($(( passes * 1000 / (t1 - t0 + 1) )) passes/s)"

step "Stop it and check its memory"
echo "stop: $(qmp_ms '{"execute": "stop"}');" \
     "query-status: $(qmp '{"execute": "query-status"}')"
digests=$(qmp '{"execute": "x-query-ram-digest"}')
echo "RAM blocks (name, bytes, sha256 prefix):"
python3 -c '
import json, sys
for b in json.loads(sys.argv[1]):
    print("  %-10s %11d  %s" % (b["block"], b["length"], b["sha256"][:16]))
' "$digests"
dump_size=$((100 * 1024 * 1024))
took=$(qmp_ms "{\"execute\": \"pmemsave\", \"arguments\": {\"val\": 0,
              \"size\": $dump_size, \"filename\": \"$work/ram.bin\"}}")
echo "pmemsave of the first 100 MiB: $took"
"$BUILD/tests/qtest/minivm-ab-check" "$work/ram.bin"

step "Still stopped means still: the digest does not move"
sleep 0.5
again=$(qmp '{"execute": "x-query-ram-digest"}')
if [ "$again" = "$digests" ]; then
    echo "digests unchanged after 0.5 s stopped"
else
    echo "digests CHANGED while stopped" >&2
    exit 1
fi

step "Quit"
qmp '{"execute": "quit"}' >/dev/null
wait "$vm_pid" && echo "minivm exited with status 0"
vm_pid=
