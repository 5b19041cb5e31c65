#!/usr/bin/env python3
"""The minivm demo: save a running VM to a file with mapped-ram, multifd and
direct-io, restore it into a new VM, verify guest memory, print the figures.

Everything goes through QMP, the way a management tool drives minivm.
Called by scripts/demo.sh after the build; standard library only.

    scripts/demo.py BUILD_DIR [--ram 1G] [--channels 2] [--dir DIR]
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time


class QMP:
    """One QMP connection: replies and events are one JSON line each."""

    def __init__(self, path, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    sys.exit("no QMP socket at %s" % path)
                time.sleep(0.02)
        self.stream = self.sock.makefile("rb")
        json.loads(self.stream.readline())  # greeting
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            line = self.stream.readline()
            if not line:
                sys.exit("QMP connection closed during %s" % name)
            reply = json.loads(line)
            if "error" in reply:
                sys.exit("%s failed: %s" % (name, reply["error"]["desc"]))
            if "return" in reply:
                return reply["return"]

    def wait_migration(self, timeout=600):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = self.cmd("query-migrate")
            if info.get("status") in ("completed", "failed", "cancelled"):
                return info
            time.sleep(0.05)
        sys.exit("migration did not finish in %d s" % timeout)


def cpu_seconds(pid):
    """user + system CPU seconds of a process, from /proc."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_vm(binary, work, name, ram, extra):
    sock = os.path.join(work, name + ".sock")
    proc = subprocess.Popen(
        [binary, "-m", ram, "-smp", "2", "-name", name,
         "-workload", "a-b", "-qmp", "unix:%s,server=on,wait=off" % sock,
         "-serial", "file:%s" % os.path.join(work, name + ".serial")]
        + extra, stdin=subprocess.DEVNULL)
    return proc, QMP(sock)


def set_caps(qmp, channels, direct_io):
    qmp.cmd("migrate-set-capabilities", capabilities=[
        {"capability": c, "state": True}
        for c in ("events", "mapped-ram", "multifd")])
    qmp.cmd("migrate-set-parameters", **{
        "multifd-channels": channels, "direct-io": direct_io})


def gib_per_s(nbytes, ms):
    return nbytes / (1 << 30) / (ms / 1000.0) if ms > 0 else float("inf")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--ram", default="1G")
    ap.add_argument("--channels", type=int, default=2)
    ap.add_argument("--dir", help="where the save file goes (disk-backed)")
    args = ap.parse_args()
    binary = os.path.join(args.build, "minivm")
    checker = os.path.join(args.build, "tests", "qtest", "minivm-ab-check")
    base = args.dir or os.path.join(args.build, "demo")
    os.makedirs(base, exist_ok=True)
    work = tempfile.mkdtemp(prefix="minivm-demo.", dir=base)
    save_file = os.path.join(work, "guest.sav")
    procs = []
    try:
        print("== Boot a %s guest running the a-b workload (2 vCPUs)" % args.ram)
        src, sq = start_vm(binary, work, "source", args.ram, [])
        procs.append(src)
        time.sleep(2)
        print("source: %s, serial so far: %r" % (
            sq.cmd("query-status")["status"],
            open(os.path.join(work, "source.serial")).read()[:40]))

        print("\n== Save it while it runs: mapped-ram + multifd (%d channels)"
              " + direct-io -> %s" % (args.channels, save_file))
        set_caps(sq, args.channels, True)
        sq.cmd("migrate-set-parameters", **{"max-bandwidth": 100 << 30,
                                            "downtime-limit": 500})
        cpu0 = cpu_seconds(src.pid)
        t0 = time.monotonic()
        sq.cmd("migrate", uri="file:" + save_file)
        info = sq.wait_migration()
        wall_ms = (time.monotonic() - t0) * 1000
        save_cpu = cpu_seconds(src.pid) - cpu0
        if info["status"] != "completed":
            sys.exit("save failed: %s" % info.get("error-desc"))
        ram = info["ram"]
        st = os.stat(save_file)
        total = ram["total"]
        print("status %s after %d ms (downtime %d ms, %d dirty-sync passes)"
              % (info["status"], info["total-time"], info["downtime"],
                 ram["dirty-sync-count"]))
        print("guest RAM %d MiB: %d pages written, %d zero pages left as"
              " holes" % (total >> 20, ram["normal"], ram["duplicate"]))
        print("throughput %.2f GiB/s of guest RAM (wall %.0f ms),"
              " %.2f CPU s per GiB (minivm process, running guest"
              " included)" % (gib_per_s(total, wall_ms), wall_ms,
                                       save_cpu / (total / (1 << 30))))
        print("file: %d bytes apparent, %d bytes allocated (RAM + 1 MiB per"
              " block bounds it)" % (st.st_size, st.st_blocks * 512))
        src_digests = sq.cmd("x-query-ram-digest")
        print("source now: %s" % sq.cmd("query-status")["status"])

        print("\n== Restore into a new VM (-incoming defer, -S to inspect"
              " before it runs)")
        dst, dq = start_vm(binary, work, "dest", args.ram,
                           ["-incoming", "defer", "-S"])
        procs.append(dst)
        set_caps(dq, args.channels, True)
        cpu0 = cpu_seconds(dst.pid)
        t0 = time.monotonic()
        dq.cmd("migrate-incoming", uri="file:" + save_file)
        info = dq.wait_migration()
        wall_ms = (time.monotonic() - t0) * 1000
        if info["status"] != "completed":
            sys.exit("restore failed: %s" % info.get("error-desc"))
        print("restored in %.0f ms: %.2f GiB/s, %.2f CPU s per GiB" % (
            wall_ms, gib_per_s(total, wall_ms),
            (cpu_seconds(dst.pid) - cpu0) / (total / (1 << 30))))

        print("\n== Verify guest memory")
        dst_digests = dq.cmd("x-query-ram-digest")
        for s, d in zip(src_digests, dst_digests):
            same = "equal" if s == d else "DIFFERENT"
            print("  %-9s %11d bytes  sha256 %s...  %s" % (
                s["block"], s["length"], s["sha256"][:16], same))
        if src_digests != dst_digests:
            sys.exit("restored RAM differs from the source")
        dump = os.path.join(work, "ram.bin")
        dq.cmd("pmemsave", val=0, size=min(100 << 20, total - (8 << 20) -
                                           (256 << 10)), filename=dump)
        subprocess.run([checker, dump], check=True)
        os.unlink(dump)

        print("\n== Let the restored guest run")
        serial = os.path.join(work, "dest.serial")
        before = os.path.getsize(serial)
        dq.cmd("cont")
        time.sleep(1.5)
        grown = os.path.getsize(serial) - before
        print("dest: %s, printed %d more 'B' in 1.5 s" % (
            dq.cmd("query-status")["status"], grown))
        if grown <= 0:
            sys.exit("the restored guest does not run")
        for q in (sq, dq):
            q.cmd("quit")
        for p in procs:
            p.wait(timeout=30)
        print("\nDemo passed.")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
