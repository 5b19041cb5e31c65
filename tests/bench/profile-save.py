#!/usr/bin/env python3
"""Where a stopped-guest save spends its CPU: runs `perf record -g` (or
`perf stat` with --stat) on the minivm process for exactly one save.

    tests/bench/profile-save.py --build build --size 1G --mode multifd-2-dio \\
        --dir /path/on/disk [--stat] [--out perf.data]

The guest is `-workload fill,zero=25` (as in bench.py), stopped before the
save; the file is deleted afterwards. Prints `perf report --no-children`'s
top symbols (or perf stat's counters). Needs perf and root (or a permissive
perf_event_paranoid). See docs/devel/benchmarks.md, "Where the CPU goes".
"""
import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the VM, QMP and mode helpers)


# Where a symbol's time belongs, for the summary (first match wins).
CATEGORIES = [
    ('zero scan', ('buffer_is_zero', 'zero_pages_split')),
    ('bitmap walk and batching', ('find_next', 'ram_send_next_run',
                                  'bitmap_', 'multifd_sink_send_pages',
                                  'set_bit', 'clear_bit', 'mapped_ram_join_runs',
                                  'file_send_batch', 'mapped_ram_send')),
    ('copy into the page cache', ('copy_user', 'rep_movs', 'memcpy',
                                  'copy_page', 'filemap_', 'folio')),
]


def summarize(out, tids):
    """Samples of the save's threads by category (user symbols by name,
    the rest of the kernel as 'kernel: I/O, syscalls, scheduling')."""
    rep = subprocess.run(
        ['perf', 'report', '-i', out, '--no-children', '--stdio', '--tid',
         ','.join(sorted(tids)), '--sort', 'symbol', '-g', 'none',
         '--percentage', 'relative', '-n', '--percent-limit', '0'],
        capture_output=True, text=True)
    totals = {}
    samples = 0
    for line in rep.stdout.splitlines():
        parts = line.split()
        if len(parts) < 4 or line.startswith('#') or \
                not parts[0].endswith('%'):
            continue
        n = int(parts[1])
        kernel = parts[2] == '[k]'
        sym = parts[3]
        cat = next((c for c, keys in CATEGORIES
                    if any(k in sym for k in keys)), None)
        if cat is None:
            cat = 'kernel: I/O, syscalls, scheduling' if kernel else \
                'other user space (locks, QMP, libc)'
        totals[cat] = totals.get(cat, 0) + n
        samples += n
    print('\nsamples of the save\'s threads: %d' % samples)
    for cat, n in sorted(totals.items(), key=lambda kv: -kv[1]):
        print('  %5.1f%%  %s' % (100.0 * n / max(samples, 1), cat))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--build', default='build')
    p.add_argument('--size', default='1G')
    p.add_argument('--mode', default='multifd-2-dio',
                   choices=sorted(bench.MODE_BY_NAME))
    p.add_argument('--dir', required=True, help='where the file goes')
    p.add_argument('--stat', action='store_true', help='perf stat instead')
    p.add_argument('--out', default=None, help='perf.data path')
    args = p.parse_args()

    repo = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    build = args.build if os.path.isabs(args.build) else \
        os.path.join(repo, args.build)
    size = bench.parse_size(args.size)
    mode = bench.MODE_BY_NAME[args.mode]
    work = tempfile.mkdtemp(prefix='minivm-prof-')
    vm = bench.VM(os.path.join(build, 'minivm'), work, work, 'src',
                  ['-m', bench.size_arg(size), '-smp', '2', '-workload',
                   'fill,zero=25'])
    path = os.path.join(args.dir, 'minivm-profile.mig')
    try:
        vm.wait_serial('F', 120 + 60 * size / bench.GiB)
        vm.qmp.cmd('stop')
        bench.configure_migration(vm.qmp, mode, 300)
        if os.path.exists(path):
            os.unlink(path)
        bench.Caches.drop()
        out = args.out or os.path.join(work, 'perf.data')
        if args.stat:
            perf = ['perf', 'stat', '-p', str(vm.pid), '-e',
                    'task-clock,context-switches,cpu-migrations,'
                    'page-faults,syscalls:sys_enter_pwritev,'
                    'syscalls:sys_enter_pwrite64,'
                    'syscalls:sys_enter_io_uring_enter']
        else:
            # System-wide, filtered by pid in the report: `-p` does not
            # follow the threads the save creates (migration, channels).
            perf = ['perf', 'record', '-a', '-g', '-F', '10000', '-o', out]
        rec = subprocess.Popen(perf, stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)
        vm.qmp.events.clear()
        t0 = time.time()
        vm.qmp.cmd('migrate', {'uri': 'file:' + path})
        # The save's threads (migration, channels) exist only during it.
        tids = set()
        while True:
            tids.update(os.listdir('/proc/%d/task' % vm.pid))
            if vm.qmp.cmd('query-migrate').get('status') in (
                    'completed', 'failed', 'cancelled'):
                break
            time.sleep(0.05)
        info, end = bench.wait_migration(vm.qmp, 600)
        print('save: %s in %.2f s' % (info['status'], end - t0))
        rec.send_signal(signal.SIGINT)
        err = rec.communicate()[1]
        if args.stat:
            print(err)
        else:
            rep = subprocess.run(
                ['perf', 'report', '-i', out, '--no-children', '--stdio',
                 '--tid', ','.join(sorted(tids)), '--percentage',
                 'relative', '--sort', 'comm,symbol', '-g', 'none',
                 '--percent-limit', '0.7'],
                capture_output=True, text=True)
            lines = [line for line in rep.stdout.splitlines()
                     if line and not line.startswith('#')]
            print('\n'.join(lines[:40]))
            summarize(out, tids)
    finally:
        vm.quit()
        if os.path.exists(path):
            os.unlink(path)


if __name__ == '__main__':
    main()
