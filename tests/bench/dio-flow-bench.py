#!/usr/bin/env python3
"""The management flow's save and restore with direct-io, measured (issue 6;
docs/devel/migration/direct-io.rst holds the figures).

    tests/bench/dio-flow-bench.py [--build build] [--dir DIR] [--size 4G]
                                  [--runs 3] [--channels 2]

A stopped guest of --size (-smp 2 -workload fill,zero=25: 75% of its pages
hold incompressible bytes, 25% are zero, scattered page by page) is saved the
way contrib/save-restore-client.py does it (fdset with a plain and an
O_DIRECT descriptor, own 4 KiB header, mapped-ram + multifd + direct-io,
file:/dev/fdset/ID,offset=4096) and restored into a fresh minivm started
with -incoming defer, also through an fdset. For comparison, in the same
run and directory:
- the same flow without direct-io (buffered, fdatasync at the end);
- dd bs=1M oflag=direct of the bytes the save really wrote (query-migrate
  normal-bytes), and dd bs=1M iflag=direct reading them back.
Runs are interleaved (order rotated each run). The page cache is dropped
before each measured step where permitted; page-cache growth is the peak of
/proc/meminfo Cached during the step (sampled every 20 ms) minus its value
at the start. The first run's restore is checked against the source with
x-query-ram-digest. Nothing is asserted: this only measures.
"""

import argparse
import ctypes
import importlib.util
import mmap
import os
import statistics
import subprocess
import sys
import threading
import time

GiB = 1 << 30
MiB = 1 << 20
LIVE = []  # VMs to kill if the run dies half-way
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def load_client():
    path = os.path.join(ROOT, 'contrib', 'save-restore-client.py')
    spec = importlib.util.spec_from_file_location('save_restore_client', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


client = load_client()


def parse_size(text):
    text = text.strip().upper()
    mult = {'K': 1 << 10, 'M': MiB, 'G': GiB}.get(text[-1:], None)
    return int(float(text[:-1]) * mult) if mult else int(text)


def meminfo_kib(key):
    with open('/proc/meminfo') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    raise KeyError(key)


def drop_caches():
    """True when the page cache could be dropped (root only)."""
    os.sync()
    try:
        with open('/proc/sys/vm/drop_caches', 'w') as f:
            f.write('3\n')
        return True
    except OSError:
        return False


LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t,
                         ctypes.POINTER(ctypes.c_ubyte)]


LIBC.mmap.restype = ctypes.c_void_p
LIBC.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                      ctypes.c_int, ctypes.c_int, ctypes.c_long]
LIBC.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]


def file_cached_bytes(path):
    """Bytes of path in the page cache (mincore), whoever put them there:
    unlike Cached, other processes on the machine do not add to it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            return 0
        addr = LIBC.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if addr is None or addr == ctypes.c_void_p(-1).value:
            raise OSError(ctypes.get_errno(), 'mmap of ' + path)
        try:
            pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
            vec = (ctypes.c_ubyte * pages)()
            if LIBC.mincore(addr, size, vec) != 0:
                raise OSError(ctypes.get_errno(), 'mincore of ' + path)
            return sum(b & 1 for b in vec) * mmap.PAGESIZE
        finally:
            LIBC.munmap(addr, size)
    finally:
        os.close(fd)


class CacheWatch:
    """Peak growth of Cached while a step runs."""

    def __init__(self):
        self.start = meminfo_kib('Cached')
        self.peak = self.start
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.wait(0.02):
            self.peak = max(self.peak, meminfo_kib('Cached'))

    def finish(self):
        self.stop.set()
        self.thread.join()
        self.peak = max(self.peak, meminfo_kib('Cached'))
        return (self.peak - self.start) * 1024


class VM:
    def __init__(self, binary, workdir, name, args):
        self.sock = os.path.join(workdir, name + '.qmp')
        self.serial = os.path.join(workdir, name + '.serial')
        for p in (self.sock, self.serial):
            if os.path.exists(p):
                os.unlink(p)
        argv = [binary, '-qmp', 'unix:%s,server=on,wait=off' % self.sock,
                '-serial', 'file:' + self.serial] + args
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        LIVE.append(self)
        deadline = time.monotonic() + 30
        while not os.path.exists(self.sock):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit('minivm %s did not start' % name)
            time.sleep(0.02)
        self.qmp = client.QMPClient(self.sock, 600)

    def wait_serial(self, text, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with open(self.serial) as f:
                    if text in f.read():
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise SystemExit('no %r on the serial port' % text)

    def close(self):
        if self in LIVE:
            LIVE.remove(self)
        try:
            self.qmp.execute('quit')
        except client.ClientError:
            pass
        self.qmp.close()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Opts:
    """What the client's helpers read from their args."""

    def __init__(self, channels, dio):
        self.channels = channels
        self.no_direct_io = not dio
        self.timeout = 0


def save(vm, path, channels, dio):
    """The client's save flow, minus quit; returns (wall s, info, cache)."""
    qmp = vm.qmp
    opts = Opts(channels, dio)
    fds = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    fds.append((fd, 'plain'))
    os.pwrite(fd, client.build_header(4096, 'bench', opts), 0)
    if dio:
        fds.append((client.open_direct(path, os.O_WRONLY), 'direct'))
    fdset = client.add_fds(qmp, fds, 'bench')
    client.close_all(fds)
    client.set_migration_options(qmp, opts)
    qmp.events.clear()
    watch = CacheWatch()
    t0 = time.monotonic()
    qmp.execute('migrate', {'uri': 'file:/dev/fdset/%d,offset=4096' % fdset})
    info = wait_completed(qmp)
    wall = time.monotonic() - t0
    cache = watch.finish()
    client.remove_fdset(qmp, fdset)
    return wall, info, cache


def wait_completed(qmp):
    while True:
        ev = qmp.wait_event('MIGRATION', 1.0)
        if ev is None:
            info = qmp.execute('query-migrate')
            if info.get('status') in client.FINAL_STATES:
                break
            continue
        if ev['data']['status'] in client.FINAL_STATES:
            info = qmp.execute('query-migrate')
            break
    if info.get('status') != 'completed':
        raise SystemExit('migration %s: %s' % (info.get('status'),
                                                info.get('error-desc')))
    return info


def restore(binary, workdir, size, path, channels, dio):
    vm = VM(binary, workdir, 'dst', ['-m', '%dM' % (size // MiB), '-smp', '2',
                                     '-workload', 'fill,zero=25',
                                     '-incoming', 'defer'])
    qmp = vm.qmp
    opts = Opts(channels, dio)
    fds = [(os.open(path, os.O_RDONLY), 'plain')]
    if dio:
        fds.append((client.open_direct(path, os.O_RDONLY), 'direct'))
    fdset = client.add_fds(qmp, fds, 'bench')
    client.close_all(fds)
    client.set_migration_options(qmp, opts)
    qmp.events.clear()
    watch = CacheWatch()
    t0 = time.monotonic()
    qmp.execute('migrate-incoming',
                {'uri': 'file:/dev/fdset/%d,offset=4096' % fdset,
                 'exit-on-error': False})
    wait_completed(qmp)
    wall = time.monotonic() - t0
    cache = watch.finish()
    client.remove_fdset(qmp, fdset)
    return vm, wall, cache


def dd(argv):
    watch = CacheWatch()
    t0 = time.monotonic()
    subprocess.run(['dd', 'status=none'] + argv, check=True)
    wall = time.monotonic() - t0
    return wall, watch.finish()


def fmt_rate(nbytes, secs):
    return '%.2f' % (nbytes / secs / GiB)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--build', default=os.environ.get('BUILD', 'build'))
    p.add_argument('--dir', help='disk-backed directory (default '
                                 'BUILD/bench-data)')
    p.add_argument('--size', default='4G')
    p.add_argument('--runs', type=int, default=3)
    p.add_argument('--channels', type=int, default=2)
    p.add_argument('--no-buffered', action='store_true',
                   help='skip the flow without direct-io')
    args = p.parse_args()
    build = os.path.join(ROOT, args.build) if not os.path.isabs(args.build) \
        else args.build
    binary = os.path.join(build, 'minivm')
    workdir = args.dir or os.path.join(build, 'bench-data')
    os.makedirs(workdir, exist_ok=True)
    size = parse_size(args.size)
    save_path = os.path.join(workdir, 'dio-flow.save')
    dd_path = os.path.join(workdir, 'dio-flow.dd')
    dropped = drop_caches()
    print('# load average at start: %s' % open('/proc/loadavg').read().strip())
    print('# %s guest, fill,zero=25, -smp 2, multifd-channels %d, dir %s '
          '(page cache %s before each step)' %
          (args.size, args.channels, workdir,
           'dropped' if dropped else 'NOT dropped'), flush=True)

    src = VM(binary, workdir, 'src', ['-m', '%dM' % (size // MiB), '-smp',
                                      '2', '-workload', 'fill,zero=25'])
    t0 = time.monotonic()
    src.wait_serial('F', 600)
    print('# fill took %.1f s' % (time.monotonic() - t0), flush=True)
    src.qmp.execute('stop')
    src_digests = None

    steps = ['flow-dio', 'dd-direct']
    if not args.no_buffered:
        steps.append('flow-buffered')
    results = {}
    normal_bytes = None

    def record(key, wall, nbytes, cache, path):
        in_cache = file_cached_bytes(path)
        results.setdefault(key, []).append((wall, nbytes, cache, in_cache))
        print('%-22s %7.2f s  %6s GiB/s of data  %6.2f GiB/s of RAM  '
              'Cached +%d MiB  file in cache %d MiB' %
              (key, wall, fmt_rate(nbytes, wall), size / wall / GiB,
               cache // MiB, in_cache // MiB), flush=True)

    for run in range(args.runs):
        order = steps[run % len(steps):] + steps[:run % len(steps)]
        for step in order:
            if step.startswith('flow'):
                dio = step == 'flow-dio'
                drop_caches()
                wall, info, cache = save(src, save_path, args.channels, dio)
                normal_bytes = info['ram']['normal-bytes']
                record('save ' + step, wall, normal_bytes, cache, save_path)
                drop_caches()
                dst, rwall, rcache = restore(binary, workdir, size, save_path,
                                             args.channels, dio)
                record('restore ' + step, rwall, normal_bytes, rcache,
                       save_path)
                if run == 0:
                    if src_digests is None:
                        src_digests = src.qmp.execute('x-query-ram-digest')
                    same = dst.qmp.execute('x-query-ram-digest') == src_digests
                    print('# restored RAM %s the source\'s' %
                          ('equals' if same else 'DIFFERS FROM'), flush=True)
                dst.close()
                st = os.stat(save_path)
                if run == 0:
                    print('# file %.2f GiB apparent, %.2f GiB allocated' %
                          (st.st_size / GiB, st.st_blocks * 512 / GiB))
            else:
                if normal_bytes is None:
                    # dd needs the byte count of a save; run one first.
                    drop_caches()
                    _, info, _ = save(src, save_path, args.channels, True)
                    normal_bytes = info['ram']['normal-bytes']
                count = normal_bytes // MiB
                # Unlinked first: this ext4 discards freed blocks on
                # truncate, which dd's O_TRUNC would put inside its time.
                if os.path.exists(dd_path):
                    os.unlink(dd_path)
                drop_caches()
                wall, cache = dd(['if=/dev/zero', 'of=' + dd_path, 'bs=1M',
                                  'count=%d' % count, 'oflag=direct'])
                record('dd write oflag=direct', wall, count * MiB, cache,
                       dd_path)
                drop_caches()
                wall, cache = dd(['if=' + dd_path, 'of=/dev/null', 'bs=1M',
                                  'iflag=direct'])
                record('dd read iflag=direct', wall, count * MiB, cache,
                       dd_path)

    src.close()
    print('# load average at end: %s' % open('/proc/loadavg').read().strip())
    for path in (save_path, dd_path):
        if os.path.exists(path):
            os.unlink(path)

    print('\n# medians over %d runs (data = %.2f GiB of non-zero pages)' %
          (args.runs, (normal_bytes or 0) / GiB))
    print('| step | wall s (min-max) | GiB/s of data | GiB/s of RAM | '
          'Cached growth (peak) | file in page cache after |')
    print('|---|---|---|---|---|---|')
    for key, rows in results.items():
        walls = [r[0] for r in rows]
        med = statistics.median(walls)
        nbytes = rows[0][1]
        cache = statistics.median([r[2] for r in rows])
        in_cache = statistics.median([r[3] for r in rows])
        print('| %s | %.2f (%.2f-%.2f) | %s | %.2f | %d MiB | %d MiB |' %
              (key, med, min(walls), max(walls), fmt_rate(nbytes, med),
               size / med / GiB, cache // MiB, in_cache // MiB))
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    finally:
        for vm in LIVE:
            vm.proc.kill()
            vm.proc.wait()
