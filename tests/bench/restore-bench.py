#!/usr/bin/env python3
"""Restore-only benchmark of minivm's mapped-ram loader (issue 7).

bench.py measures a save and its restore per mode; saves are the slow part,
so iterating on the restore path with it wastes most of the time. This
script saves ONE mapped-ram file (a mapped-ram file loads the same way
whatever wrote it: with or without multifd, any channel count) and then
restores it again and again, interleaved with its baselines:

- restore rows: mapped-ram alone, multifd N, multifd N + direct-io (--modes);
- dd-read-direct: `dd bs=1M iflag=direct` of a file holding as many bytes
  as the save wrote (normal-bytes), on the same directory;
- dd-fresh: the same O_DIRECT reads (1 MiB each, one at a time) into fresh
  anonymous memory with MADV_HUGEPAGE, as guest RAM is: what a reader that
  first-touches its destination pays, with no parsing, no holes and no
  zeroing (a ceiling for the restore when first touch is the limit);
- memcpy-fresh / memcpy-warm: bench-memcpy of the same bytes.

Per restore: wall seconds (migrate-incoming to the "completed" event), ratio
to dd-read-direct and to dd-fresh of the same run, CPU seconds, peak RSS
beyond guest RAM, page-cache growth. The page cache is dropped before every
row. Restored RAM is compared with the source's after the first restore of
each mode (and after every one with --verify-all).

    tests/bench/restore-bench.py --build build-load --size 1G --runs 3

A mode may carry an environment for its restores, MODE:NAME=VALUE+...;
MINIVM_BIN=PATH there restores with another minivm binary (an older build,
to compare before and after in one run), and the loader's tuning variables
(MINIVM_LOAD_READERS, MINIVM_LOAD_POPULATE; docs/devel/migration/multifd.rst)
compare its levers. The results print as a table; nothing is written into
docs/.
"""

import argparse
import mmap
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402


def dd_fresh(path, nbytes):
    """O_DIRECT 1 MiB reads of path into fresh THP-advised memory."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    m = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    try:
        if hasattr(m, 'madvise') and hasattr(mmap, 'MADV_HUGEPAGE'):
            m.madvise(mmap.MADV_HUGEPAGE)
        view = memoryview(m)
        t = time.time()
        off = 0
        while off < nbytes:
            n = os.preadv(fd, [view[off:off + B.MiB]], off)
            if n <= 0:
                break
            off += n
        secs = time.time() - t
        view.release()
    finally:
        m.close()
        os.close(fd)
    return secs


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--build', default=os.environ.get('BUILD', 'build'))
    p.add_argument('--size', default='1G')
    p.add_argument('--runs', type=int, default=3)
    p.add_argument('--channels', type=int, default=2)
    p.add_argument('--modes', default='mapped-ram,multifd-N,multifd-N-dio',
                   help='restore modes (multifd-N uses --channels)')
    p.add_argument('--save-mode', default='multifd-2-dio',
                   help='the mode of the one save')
    p.add_argument('--dir', default='',
                   help='target directory (default: bench.py\'s loop ext4)')
    p.add_argument('--verify-all', action='store_true')
    p.add_argument('--env', action='append', default=[],
                   help='NAME=VALUE for the restoring minivm (repeatable)')
    args = p.parse_args(argv)

    repo = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    build = args.build if os.path.isabs(args.build) else \
        os.path.join(repo, args.build)
    size = B.parse_size(args.size)
    modes = []
    for spec in args.modes.split(','):
        # MODE or MODE:NAME=VALUE+NAME=VALUE (environment of that row)
        name, _, env = spec.partition(':')
        name = name.replace('-N', '-%d' % args.channels)
        mode = B.MODE_BY_NAME[name]
        env = dict(kv.split('=', 1) for kv in env.split('+') if kv)
        modes.append(B.Mode(spec.replace('-N', '-%d' % args.channels),
                            mode.label, mode.mapped_ram, mode.channels,
                            mode.dio))
        modes[-1].env = env
    loop = None
    if args.dir:
        dirpath = os.path.abspath(args.dir)
        os.makedirs(dirpath, exist_ok=True)
    else:
        loop = B.LoopDisk(os.path.join(build, 'bench-data'),
                          max(12 * B.GiB, 2 * size + 4 * B.GiB))
        dirpath = loop.setup()
    for kv in args.env:
        k, _, v = kv.partition('=')
        os.environ[k] = v
    ns = argparse.Namespace(
        minivm=os.path.join(build, 'minivm'), out=os.path.join(
            build, 'bench-results', 'restore-%d' % os.getpid()),
        timeout=0, downtime_limit=300, verify='mem',
        memcpy_helper=os.path.join(build, 'tests', 'bench', 'bench-memcpy'))
    bench = B.Bench(ns)
    path = os.path.join(dirpath, 'minivm-restore-bench.mig')
    ddfile = os.path.join(dirpath, 'minivm-restore-bench.dd')
    results = {}
    try:
        src = bench.fill_source(size)
        srow = bench.save(src, size, B.MODE_BY_NAME[args.save_mode], path,
                          False)
        nbytes = srow['normal_bytes']
        count = (nbytes + B.MiB - 1) // B.MiB
        B.log('saved %s in %.1f s, %d normal bytes, file %d bytes, %d '
              'allocated' % (args.save_mode, srow['wall_s'], nbytes,
                             srow['file_apparent_bytes'],
                             srow['file_alloc_bytes']))
        B.run_cmd(['dd', 'if=/dev/urandom', 'of=' + ddfile, 'bs=1M',
                   'count=%d' % count, 'oflag=direct', 'status=none'])
        verified = set()
        for run in range(args.runs):
            items = ['dd', 'dd-fresh'] + modes
            k = run % len(items)
            for item in items[k:] + items[:k]:
                B.Caches.drop()
                if item == 'dd':
                    secs = bench.dd(['if=' + ddfile, 'of=/dev/null', 'bs=1M',
                                     'iflag=direct'])
                    results.setdefault('dd-read-direct', []).append(
                        {'wall_s': secs})
                    continue
                if item == 'dd-fresh':
                    secs = dd_fresh(ddfile, count * B.MiB)
                    results.setdefault('dd-fresh', []).append(
                        {'wall_s': secs})
                    continue
                mode = item
                bench.args.verify = 'mem'
                saved_env = dict(os.environ)
                saved_bin = bench.args.minivm
                os.environ.update(mode.env)
                # MINIVM_BIN=PATH: that row restores with another binary
                bench.args.minivm = mode.env.get('MINIVM_BIN', saved_bin)
                row = bench.restore(src, size, mode, path, 'fill,zero=25',
                                    srow) if (
                    args.verify_all or mode.name not in verified) else \
                    restore_noverify(bench, size, mode, path, srow)
                os.environ.clear()
                os.environ.update(saved_env)
                bench.args.minivm = saved_bin
                verified.add(mode.name)
                results.setdefault(mode.name, []).append(row)
                B.log('run %d %s: %.2f s, cache+ %.0f MiB (file %s MiB), '
                      'rss+ %.1f MiB, cpu %.2f s' % (
                          run + 1, mode.name, row['wall_s'],
                          row['cache_growth_mib'], row['file_cached_mib'],
                          row['rss_extra_mib'], row['cpu_s']))
        fresh, warm = bench.memcpy(count * B.MiB)
        results['memcpy-fresh'] = [{'wall_s': fresh}]
        results['memcpy-warm'] = [{'wall_s': warm}]
        src.quit()
    finally:
        bench.cleanup()
        for f in (path, ddfile):
            if os.path.exists(f):
                os.unlink(f)
        if loop:
            loop.teardown()
    # Per run ratios against the same run's dd rows.
    dd = [r['wall_s'] for r in results['dd-read-direct']]
    fr = [r['wall_s'] for r in results['dd-fresh']]
    print('\n%s guest, %d normal bytes (%.2f GiB), dir %s' % (
        B.size_label(size), nbytes, nbytes / B.GiB, dirpath))
    print('%-16s %8s %8s %8s %8s %8s %8s %8s %8s' % (
        'row', 'wall s', 'GiB/s', 'x dd', 'x fresh', 'cpu s', 'rss+', 'cache+',
        'file$'))
    for name, rows in results.items():
        walls = [r['wall_s'] for r in rows]
        med = statistics.median(walls)
        x_dd = [dd[i] / r['wall_s'] for i, r in enumerate(rows)
                if i < len(dd)]
        x_fr = [fr[i] / r['wall_s'] for i, r in enumerate(rows)
                if i < len(fr)]

        def m(key):
            v = [r[key] for r in rows if r.get(key) is not None]
            return '%8.1f' % statistics.median(v) if v else '%8s' % '-'
        print('%-16s %8.2f %8.2f %8.2f %8.2f %s %s %s %s   (min %.2f max '
              '%.2f)' % (name, med, nbytes / B.GiB / med,
                         statistics.median(x_dd) if x_dd else 0,
                         statistics.median(x_fr) if x_fr else 0,
                         m('cpu_s'), m('rss_extra_mib'),
                         m('cache_growth_mib'), m('file_cached_mib'),
                         min(walls), max(walls)))
    return 0


def restore_noverify(bench, size, mode, path, srow):
    saved = bench.verify
    bench.verify = lambda *a: 'skipped'
    try:
        return bench.restore(None, size, mode, path, 'fill,zero=25', srow)
    finally:
        bench.verify = saved


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
