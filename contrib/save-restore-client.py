#!/usr/bin/env python3
"""Save a minivm guest to a file and restore it, the way libvirt's
virDomainSave / virDomainRestore drive QEMU (docs/user/save-restore.md).

The client starts nothing: it talks to a running minivm's QMP socket.

save:    stop the guest, open FILE twice (a plain descriptor for the
         migration stream's headers and device state, an O_DIRECT one for
         the multifd channels' page data), write our own header into the
         first HEADER_SIZE bytes, pass both descriptors with add-fd
         (SCM_RIGHTS), turn on mapped-ram + multifd (+ events), set
         multifd-channels and direct-io, migrate to
         file:/dev/fdset/ID,offset=HEADER_SIZE, wait for completion,
         remove-fd, quit minivm.
restore: against a minivm started with "-incoming defer": check our header,
         open FILE read-only twice (plain and O_DIRECT), add-fd, the same
         capabilities and parameters, migrate-incoming, wait, remove-fd,
         and "cont" if asked. A failed load leaves minivm up (exit-on-error
         false) so its error can be read; the caller then ends it.

Python 3 standard library only (socket with sendmsg SCM_RIGHTS, json).
"""

import argparse
import array
import errno
import json
import os
import socket
import struct
import sys
import time

# Our own header at the start of the save file; minivm's stream starts at
# HEADER_SIZE, and minivm never touches the bytes before it.
HEADER_MAGIC = b"MinivmSaveImage\n"  # 16 bytes
HEADER_VERSION = 1
# magic, be32 version, be32 header size, be32 JSON length, then the JSON
HEADER_FIXED = struct.Struct(">16sIII")
DEFAULT_HEADER_SIZE = 4096


class ClientError(Exception):
    """A failure to report on one line and exit non-zero."""


class QMPClient:
    """A small synchronous QMP client over a UNIX socket."""

    def __init__(self, path, timeout, trace=False):
        self.trace = trace
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except OSError as e:
            raise ClientError(f"cannot connect to QMP socket {path}: {e}")
        self.buf = b""
        self.events = []
        self.next_id = 1
        greeting = self._read_message()
        if "QMP" not in greeting:
            raise ClientError(f"not a QMP greeting: {greeting}")
        self.execute("qmp_capabilities")

    def close(self):
        self.sock.close()

    def _log(self, direction, obj, fds=()):
        if self.trace:
            text = json.dumps(obj)
            if fds:
                text += f"   [+ {len(fds)} fd via SCM_RIGHTS]"
            print(f"{direction} {text}", file=sys.stderr)

    def _read_message(self):
        """The next JSON object from the socket (reply or event): minivm,
        like QEMU, ends every message with a newline."""
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise ClientError("timed out waiting for minivm")
            except OSError as e:
                raise ClientError(f"lost the QMP connection: {e}")
            if not chunk:
                raise ClientError("minivm closed the QMP connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        try:
            obj = json.loads(line.decode("utf-8"))
        except ValueError:
            raise ClientError(f"bad JSON from minivm: {line[:200]!r}")
        self._log("<-", obj)
        return obj

    def execute(self, command, arguments=None, fds=(), check=True):
        """Runs a command; returns its "return" value (or the error
        object when check is False). fds go with SCM_RIGHTS."""
        request = {"execute": command, "id": self.next_id}
        self.next_id += 1
        if arguments is not None:
            request["arguments"] = arguments
        self._log("->", request, fds)
        data = json.dumps(request).encode("utf-8") + b"\n"
        try:
            if fds:
                ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                              array.array("i", fds).tobytes())]
                sent = self.sock.sendmsg([data], ancillary)
                if sent < len(data):
                    self.sock.sendall(data[sent:])
            else:
                self.sock.sendall(data)
        except OSError as e:
            raise ClientError(f"cannot send {command} to minivm: {e}")
        while True:
            msg = self._read_message()
            if "event" in msg:
                self.events.append(msg)
                continue
            if msg.get("id") != request["id"]:
                continue
            if "error" in msg:
                if check:
                    raise ClientError(
                        f"{command} failed: {msg['error'].get('desc')}")
                return msg["error"]
            return msg.get("return")

    def wait_event(self, name, timeout):
        """The next event called name, or None after timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self.events):
                if ev["event"] == name:
                    return self.events.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                msg = self._read_message()
            except ClientError as e:
                if "timed out" in str(e):
                    return None
                raise
            finally:
                self.sock.settimeout(self.timeout)
            if "event" in msg:
                self.events.append(msg)


def log(args, text):
    if not args.quiet:
        print(f"save-restore-client: {text}", file=sys.stderr)


def open_direct(path, flags, mode=0o600):
    """os.open with O_DIRECT, turning EINVAL into a clear message."""
    try:
        return os.open(path, flags | os.O_DIRECT, mode)
    except OSError as e:
        if e.errno == errno.EINVAL:
            raise ClientError(
                f"{path}: the file system does not support O_DIRECT "
                "(use --no-direct-io)")
        raise ClientError(f"cannot open {path} with O_DIRECT: {e}")


def build_header(size, note, args):
    meta = {
        "format": "minivm-save",
        "version": HEADER_VERSION,
        "stream_offset": size,
        "multifd_channels": args.channels,
        "direct_io": not args.no_direct_io,
        "saved_at": int(time.time()),
    }
    if note:
        meta["note"] = note
    body = json.dumps(meta, sort_keys=True).encode("utf-8")
    fixed = HEADER_FIXED.pack(HEADER_MAGIC, HEADER_VERSION, size, len(body))
    if len(fixed) + len(body) > size:
        raise ClientError(f"--header-size {size} is too small for the header")
    return (fixed + body).ljust(size, b"\0")


def parse_header(path):
    """Checks our header; returns (header size, metadata dict)."""
    try:
        with open(path, "rb") as f:
            head = f.read(HEADER_FIXED.size)
            if len(head) < HEADER_FIXED.size:
                raise ClientError(f"{path}: too short for a save header")
            magic, version, size, json_len = HEADER_FIXED.unpack(head)
            if magic != HEADER_MAGIC:
                raise ClientError(f"{path}: not a minivm save image "
                                  "(bad header magic)")
            if version != HEADER_VERSION:
                raise ClientError(f"{path}: header version {version} is not "
                                  f"supported (expected {HEADER_VERSION})")
            if size < HEADER_FIXED.size + json_len or size % 512:
                raise ClientError(f"{path}: corrupt header (size {size}, "
                                  f"metadata {json_len} bytes)")
            body = f.read(json_len)
    except OSError as e:
        raise ClientError(f"cannot read {path}: {e}")
    try:
        meta = json.loads(body.decode("utf-8"))
    except ValueError:
        raise ClientError(f"{path}: corrupt header metadata")
    return size, meta


def add_fds(qmp, fds, opaque):
    """add-fd each descriptor into one new fdset; returns its id."""
    fdset_id = None
    for fd, what in fds:
        arguments = {"opaque": f"{opaque}:{what}"}
        if fdset_id is not None:
            arguments["fdset-id"] = fdset_id
        ret = qmp.execute("add-fd", arguments, fds=[fd])
        fdset_id = ret["fdset-id"]
    return fdset_id


def set_migration_options(qmp, args):
    caps = [{"capability": c, "state": True}
            for c in ("mapped-ram", "multifd", "events")]
    qmp.execute("migrate-set-capabilities", {"capabilities": caps})
    qmp.execute("migrate-set-parameters", {
        "multifd-channels": args.channels,
        "direct-io": not args.no_direct_io,
    })


FINAL_STATES = ("completed", "failed", "cancelled")


def wait_migration(qmp, args):
    """Waits for a final status: MIGRATION events, and query-migrate in
    between (in case an event was missed). Returns query-migrate's reply."""
    deadline = time.monotonic() + args.timeout if args.timeout else None
    while True:
        info = qmp.execute("query-migrate")
        if info.get("status") in FINAL_STATES:
            return info
        if deadline is not None and time.monotonic() > deadline:
            raise ClientError(
                f"migration still '{info.get('status')}' after "
                f"{args.timeout} s")
        ev = qmp.wait_event("MIGRATION", 1.0)
        if ev and ev["data"].get("status") in FINAL_STATES:
            return qmp.execute("query-migrate")


def remove_fdset(qmp, fdset_id):
    err = qmp.execute("remove-fd", {"fdset-id": fdset_id}, check=False)
    if err and "desc" in err:
        raise ClientError(f"remove-fd failed: {err['desc']}")


def close_all(fds):
    for fd, _ in fds:
        os.close(fd)


def do_save(args):
    qmp = QMPClient(args.qmp, args.qmp_timeout, args.trace)
    fds = []
    fdset_id = None
    was_running = qmp.execute("query-status")["status"] == "running"
    try:
        if was_running:
            qmp.execute("stop")
            log(args, "guest stopped")
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        fd = os.open(args.file, flags, 0o600)
        fds.append((fd, "plain"))
        header = build_header(args.header_size, args.note, args)
        os.pwrite(fd, header, 0)
        os.fsync(fd)
        if not args.no_direct_io:
            fds.append((open_direct(args.file, os.O_WRONLY), "direct"))
        fdset_id = add_fds(qmp, fds, "save")
        # minivm holds its own references now.
        close_all(fds)
        fds = []
        set_migration_options(qmp, args)
        uri = f"file:/dev/fdset/{fdset_id},offset={args.header_size}"
        start = time.monotonic()
        qmp.execute("migrate", {"uri": uri})
        log(args, f"migrate {uri}")
        info = wait_migration(qmp, args)
        elapsed = time.monotonic() - start
        if info.get("status") != "completed":
            raise ClientError(
                f"save failed: {info.get('error-desc', info.get('status'))}")
        remove_fdset(qmp, fdset_id)
        fdset_id = None
        ram = info.get("ram", {})
        log(args, f"saved in {elapsed:.2f} s: "
                  f"{ram.get('normal-bytes', 0)} bytes of pages, "
                  f"{ram.get('duplicate', 0)} zero pages, "
                  f"total-time {info.get('total-time')} ms")
        if not args.no_quit:
            qmp.execute("quit")
            log(args, "minivm told to quit")
    except ClientError:
        # As libvirt: the guest goes on where it was; no fd stays behind.
        close_all(fds)
        try:
            if fdset_id is not None:
                qmp.execute("remove-fd", {"fdset-id": fdset_id}, check=False)
            if was_running:
                qmp.execute("cont", check=False)
        except ClientError as e:
            log(args, f"cleanup after the failure: {e}")
        raise
    finally:
        qmp.close()


def do_restore(args):
    header_size, meta = parse_header(args.file)
    if args.header_size and args.header_size != header_size:
        raise ClientError(f"{args.file}: header says {header_size} bytes, "
                          f"--header-size says {args.header_size}")
    log(args, f"header ok: {json.dumps(meta, sort_keys=True)}")
    qmp = QMPClient(args.qmp, args.qmp_timeout, args.trace)
    fds = []
    fdset_id = None
    try:
        status = qmp.execute("query-status")["status"]
        if status != "inmigrate":
            raise ClientError(f"minivm is '{status}'; start it with "
                              "-incoming defer")
        fds.append((os.open(args.file, os.O_RDONLY), "plain"))
        if not args.no_direct_io:
            fds.append((open_direct(args.file, os.O_RDONLY), "direct"))
        fdset_id = add_fds(qmp, fds, "restore")
        close_all(fds)
        fds = []
        set_migration_options(qmp, args)
        uri = f"file:/dev/fdset/{fdset_id},offset={header_size}"
        start = time.monotonic()
        # minivm stays up on failure so that we can read why (error-desc).
        qmp.execute("migrate-incoming", {"uri": uri, "exit-on-error": False})
        log(args, f"migrate-incoming {uri}")
        info = wait_migration(qmp, args)
        elapsed = time.monotonic() - start
        if info.get("status") != "completed":
            raise ClientError(f"restore failed: "
                              f"{info.get('error-desc', info.get('status'))}")
        remove_fdset(qmp, fdset_id)
        fdset_id = None
        log(args, f"restored in {elapsed:.2f} s")
        if args.cont:
            qmp.execute("cont")
            log(args, "guest resumed")
    except ClientError:
        close_all(fds)
        if fdset_id is not None:
            try:
                qmp.execute("remove-fd", {"fdset-id": fdset_id}, check=False)
            except ClientError:
                pass  # a failed load may have ended minivm (exit-on-error)
        raise
    finally:
        qmp.close()


def main():
    # The options every action takes, accepted after the action's name.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--qmp", required=True, metavar="PATH",
                        help="minivm's QMP UNIX socket "
                             "(-qmp unix:PATH,server=on,wait=off)")
    common.add_argument("--channels", type=int, default=2, metavar="N",
                        help="multifd-channels (default 2)")
    common.add_argument("--no-direct-io", action="store_true",
                        help="do not open an O_DIRECT descriptor nor set "
                             "direct-io")
    common.add_argument("--timeout", type=float, default=0, metavar="S",
                        help="give up when the migration takes longer "
                             "(default: wait for ever)")
    common.add_argument("--qmp-timeout", type=float, default=60,
                        metavar="S", help="time to wait for one QMP reply "
                                          "(default 60)")
    common.add_argument("--trace", action="store_true",
                        help="print every QMP message on stderr")
    common.add_argument("--quiet", action="store_true",
                        help="print only errors")

    parser = argparse.ArgumentParser(
        description="Save a running minivm guest to a file, or restore one "
                    "into a minivm started with '-incoming defer', through "
                    "its QMP socket, passing the file as descriptors "
                    "(add-fd) the way libvirt does: mapped-ram + multifd "
                    "with an O_DIRECT descriptor for the page data. "
                    "'%(prog)s save --help' and '%(prog)s restore --help' "
                    "list the options.",
        epilog="Examples:\n"
               "  %(prog)s save --qmp /run/vm.qmp /var/lib/vm.save\n"
               "  minivm -m 4G -incoming defer -qmp unix:/run/vm2.qmp,"
               "server=on,wait=off &\n"
               "  %(prog)s restore --qmp /run/vm2.qmp --cont "
               "/var/lib/vm.save\n"
               "Exit status: 0 on success, 1 on failure (the message says "
               "why), 2 on bad usage.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action", required=True,
                                metavar="{save,restore}")
    save = sub.add_parser("save", parents=[common],
                          help="stop the guest and save it to FILE",
                          description="Stop the guest, save it to FILE "
                                      "after our own header, and quit "
                                      "minivm.")
    save.add_argument("file", metavar="FILE")
    save.add_argument("--header-size", type=int,
                      default=DEFAULT_HEADER_SIZE, metavar="BYTES",
                      help="bytes of our own header before the stream "
                           "(a multiple of 4096, default 4096)")
    save.add_argument("--note", default="",
                      help="free text stored in the header")
    save.add_argument("--no-quit", action="store_true",
                      help="leave minivm running (paused) after the save")
    restore = sub.add_parser("restore", parents=[common],
                             help="load FILE into a minivm waiting with "
                                  "-incoming defer",
                             description="Load FILE (written by 'save') "
                                         "into a minivm started with "
                                         "'-incoming defer'.")
    restore.add_argument("file", metavar="FILE")
    restore.add_argument("--header-size", type=int, default=0,
                         metavar="BYTES",
                         help="expected header size (default: as the "
                              "header says)")
    restore.add_argument("--cont", action="store_true",
                         help="resume the guest once it is loaded")
    args = parser.parse_args()
    if args.action == "save" and (args.header_size <= 0 or
                                  args.header_size % 4096):
        parser.error("--header-size must be a positive multiple of 4096")
    if not 1 <= args.channels <= 255:
        parser.error("--channels must be between 1 and 255")
    try:
        if args.action == "save":
            do_save(args)
        else:
            do_restore(args)
    except ClientError as e:
        print(f"save-restore-client: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
