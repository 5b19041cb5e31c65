#!/usr/bin/env python3
"""QAPI generator: qapi/qapi-schema.json -> C code and the QMP reference.

  qapi-gen.py -o OUTDIR SCHEMA
      writes qapi-types.{h,c}, qapi-commands.{h,c}, qapi-events.{h,c} and
      qmp-reference.md into OUTDIR (meson runs this into build/qapi/).
  qapi-gen.py --doc FILE SCHEMA
      writes only the QMP reference (make qapi-doc uses this for
      docs/interop/qmp-reference.md).
  qapi-gen.py --check-doc COMMITTED GENERATED
      fails with a diff when the committed reference is stale.

Standard library only. The schema syntax and the generated C follow QEMU's
conventions; the code is minivm's own (see scripts/qapi/).
"""

import argparse
import difflib
import os
import sys

sys.dont_write_bytecode = True  # keep scripts/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from qapi.parser import QAPIError  # noqa: E402
from qapi.schema import Schema  # noqa: E402
from qapi.gen_c import CommandsGen, EventsGen, TypesGen  # noqa: E402
from qapi.gen_doc import DocGen  # noqa: E402


def write_file(path, content):
    """Writes through a temporary file so a failed run leaves no half file.
    (Always writes: ninja expects the outputs to be newer than the inputs.)"""
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        f.write(content)
    os.replace(tmp, path)


def check_doc(committed, generated):
    with open(generated, encoding='utf-8') as f:
        want = f.read()
    try:
        with open(committed, encoding='utf-8') as f:
            have = f.read()
    except FileNotFoundError:
        have = ''
    if have == want:
        return 0
    sys.stdout.writelines(difflib.unified_diff(
        have.splitlines(True), want.splitlines(True), committed, generated))
    print(f'\n{committed} is stale: run `make qapi-doc` and commit it.')
    return 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('-o', '--output-dir')
    ap.add_argument('--doc', metavar='FILE')
    ap.add_argument('--check-doc', nargs=2,
                    metavar=('COMMITTED', 'GENERATED'))
    ap.add_argument('schema', nargs='?')
    args = ap.parse_args()

    if args.check_doc:
        return check_doc(*args.check_doc)
    if not args.schema or not (args.output_dir or args.doc):
        ap.error('need SCHEMA and -o OUTDIR or --doc FILE')
    try:
        schema = Schema(args.schema)
    except QAPIError as e:
        print(f'{sys.argv[0]}: {e}', file=sys.stderr)
        return 1
    doc = DocGen(schema).generate()
    if args.doc:
        write_file(args.doc, doc)
    if args.output_dir:
        out = args.output_dir
        os.makedirs(out, exist_ok=True)
        files = {'qmp-reference.md': doc}
        for prefix, gen in (('qapi-types', TypesGen),
                            ('qapi-commands', CommandsGen),
                            ('qapi-events', EventsGen)):
            g = gen(schema)
            files[prefix + '.h'] = g.header()
            files[prefix + '.c'] = g.source()
        for name, content in files.items():
            write_file(os.path.join(out, name), content)
    return 0


if __name__ == '__main__':
    sys.exit(main())
