#!/usr/bin/env python3
"""multifd save throughput (issue 5): the numbers in
docs/devel/migration/multifd.rst.

    tests/bench/multifd-save.py [--build build] [--size 4G] [--dir /dev/shm]
                                [--runs 3] [--channels 1,2,4]

A stopped guest whose pc.ram the `fill,zero=25` workload filled (75% of the
pages incompressible, 25% zero, scattered page by page) is saved with
mapped-ram to DIR: once single-threaded (mapped-ram without multifd) and
once per channel count with multifd. Runs are interleaved (run 1 of every
mode, then run 2, ...) since the machine's speed drifts; each mode reports
the median wall time, from `migrate` to status "completed", GiB/s of
guest RAM, and the CPU time the process used (user + system, all
threads: the guest is stopped, so it is the save's). Every saved file is loaded once into a fresh `-incoming defer`
destination with 2 channels and its RAM digests compared with the
source's, so a fast but wrong save shows as FAILED. Only the standard
library is needed; the broader benchmark is tests/bench/bench.py.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time


class VM:
    """A minivm process with one QMP connection."""

    def __init__(self, binary, args, workdir, name):
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.sock_path = os.path.join(self.dir, 'qmp.sock')
        self.serial = os.path.join(self.dir, 'serial.txt')
        self.proc = subprocess.Popen(
            [binary, '-qmp', f'unix:{self.sock_path},server=on,wait=off',
             '-serial', f'file:{self.serial}'] + args)
        for _ in range(200):
            if os.path.exists(self.sock_path):
                break
            time.sleep(0.05)
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(self.sock_path)
        self.rfile = self.sock.makefile('r')
        self.rfile.readline()  # greeting
        self.cmd('qmp_capabilities')

    def cmd(self, name, **args):
        msg = {'execute': name, 'arguments': args}
        self.sock.sendall((json.dumps(msg) + '\n').encode())
        while True:
            reply = json.loads(self.rfile.readline())
            if 'event' in reply:
                continue
            if 'error' in reply:
                raise RuntimeError(f'{name}: {reply["error"]["desc"]}')
            return reply['return']

    def set_caps(self, **caps):
        self.cmd('migrate-set-capabilities', capabilities=[
            {'capability': k.replace('_', '-'), 'state': v}
            for k, v in caps.items()])

    def set_params(self, **params):
        self.cmd('migrate-set-parameters',
                 **{k.replace('_', '-'): v for k, v in params.items()})

    def wait_serial(self, text, timeout):
        end = time.time() + timeout
        while time.time() < end:
            with open(self.serial, errors='replace') as f:
                if text in f.read():
                    return
            time.sleep(0.1)
        raise RuntimeError(f'no {text!r} on the serial port')

    def wait_migration(self, timeout):
        end = time.time() + timeout
        while time.time() < end:
            info = self.cmd('query-migrate')
            if info.get('status') == 'completed':
                return info
            if info.get('status') == 'failed':
                raise RuntimeError(info.get('error-desc'))
            time.sleep(0.01)
        raise RuntimeError('migration timed out')

    def digests(self):
        return {d['block']: d['sha256'] for d in self.cmd('x-query-ram-digest')}

    def cpu_seconds(self):
        """user + system time of the whole process so far."""
        with open(f'/proc/{self.proc.pid}/stat') as f:
            fields = f.read().rsplit(')', 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')

    def quit(self):
        try:
            self.cmd('quit')
        except (OSError, RuntimeError, ValueError):
            pass
        self.proc.wait(timeout=60)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--build', default=os.environ.get('BUILD', 'build'))
    ap.add_argument('--size', default='4G')
    ap.add_argument('--dir', default='/dev/shm')
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--channels', default='1,2,4')
    opts = ap.parse_args()

    binary = os.path.join(opts.build, 'minivm')
    size_gib = float(opts.size.rstrip('Gg'))
    modes = [0] + [int(c) for c in opts.channels.split(',')]
    path = os.path.join(opts.dir, f'multifd-save-{os.getpid()}.img')
    times = {m: [] for m in modes}
    cpu = {m: [] for m in modes}

    with tempfile.TemporaryDirectory(prefix='multifd-save-') as work:
        src = VM(binary, ['-m', opts.size, '-smp', '2',
                          '-workload', 'fill,zero=25'], work, 'src')
        try:
            src.wait_serial('F', 600)
            src.cmd('stop')
            src.set_params(max_bandwidth=0)
            want = src.digests()
            for run in range(opts.runs):
                order = modes[run % len(modes):] + modes[:run % len(modes)]
                for channels in order:
                    if os.path.exists(path):
                        os.unlink(path)
                    src.set_caps(mapped_ram=True, multifd=channels > 0)
                    if channels:
                        src.set_params(multifd_channels=channels)
                    cpu0 = src.cpu_seconds()
                    start = time.monotonic()
                    src.cmd('migrate', uri=f'file:{path}')
                    src.wait_migration(600)
                    times[channels].append(time.monotonic() - start)
                    cpu[channels].append(src.cpu_seconds() - cpu0)
                    if run == 0:
                        verify(binary, opts.size, work, path, want)
        finally:
            src.quit()
            if os.path.exists(path):
                os.unlink(path)

    print(f'stopped {opts.size} guest, fill,zero=25, mapped-ram to '
          f'{opts.dir}, {opts.runs} interleaved runs, median')
    print(f'{"mode":<26} {"wall s":>7} {"GiB/s":>6} {"x single":>8} '
          f'{"CPU s":>6}')
    base = statistics.median(times[0])
    for channels in modes:
        wall = statistics.median(times[channels])
        name = (f'multifd, {channels} channel' + ('s' if channels > 1 else '')
                if channels else 'mapped-ram, single-thread')
        print(f'{name:<26} {wall:7.2f} {size_gib / wall:6.2f} '
              f'{base / wall:8.2f} {statistics.median(cpu[channels]):6.2f}')
    with open('/proc/loadavg') as f:
        print(f'load average at the end: {f.read().split()[0]}')


def verify(binary, size, work, path, want):
    """The saved file loads (2 channels) into the source's exact memory."""
    dst = VM(binary, ['-m', size, '-smp', '2', '-workload', 'fill,zero=25',
                      '-incoming', 'defer', '-S'], work, 'dst')
    try:
        dst.set_caps(mapped_ram=True, multifd=True)
        dst.set_params(multifd_channels=2)
        dst.cmd('migrate-incoming', uri=f'file:{path}')
        dst.wait_migration(600)
        if dst.digests() != want:
            sys.exit(f'FAILED: {path} does not load the source\'s memory')
    finally:
        dst.quit()


if __name__ == '__main__':
    main()
