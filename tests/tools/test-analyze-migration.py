#!/usr/bin/env python3
#
# Tests for tools/analyze-migration: it must read the file QEMU 10.0.2 wrote
# (mapped-ram), extract guest RAM from it byte-exact, refuse corrupted copies
# with a reason that names the problem, and read the legacy page stream,
# which the test writes itself from the format description.
#
# Usage: test-analyze-migration.py TOOL QEMU10_MIG_GZ WORKDIR
# Python 3 standard library only.

import gzip
import hashlib
import json
import os
import struct
import subprocess
import sys
import unittest

TOOL = None
QEMU_GZ = None
WORKDIR = None

PAGE = 4096
MEM0_SHA256 = "2bb545bb444f9d9a6d0881b45fad17a362b9993c1c9d81022a241ebba3151f58"
QEMU_FILE_SHA256 = \
    "14ff9acfb99743d1d28c972847ab72ed60536221f97d54b3c002c7b80a2c3b15"
QEMU_BLOCKS = [("mem0", 64 << 20), ("/rom@etc/acpi/tables", 128 << 10),
               ("pc.bios", 256 << 10), ("pc.rom", 128 << 10),
               ("/rom@etc/table-loader", 4 << 10),
               ("/rom@etc/acpi/rsdp", 4 << 10)]


def run(*args):
    """Runs the tool; returns (exit code, stdout, stderr)."""
    p = subprocess.run([TOOL] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=300)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def write_sparse(dst, chunks):
    """Writes the byte chunks to dst, leaving all-zero pages as holes."""
    zero = bytes(PAGE)
    size = 0
    with open(dst, "wb") as out:
        for chunk in chunks:
            for i in range(0, len(chunk), PAGE):
                piece = chunk[i:i + PAGE]
                if piece == zero[:len(piece)]:
                    out.seek(len(piece), os.SEEK_CUR)
                else:
                    out.write(piece)
            size += len(chunk)
        out.truncate(size)


def read_chunks(src, chunk=1 << 20):
    with open(src, "rb") as f:
        while True:
            data = f.read(chunk)
            if not data:
                return
            yield data


def gz_chunks(src, chunk=1 << 20):
    with gzip.open(src, "rb") as f:
        while True:
            data = f.read(chunk)
            if not data:
                return
            yield data


def sha256_file(path):
    h = hashlib.sha256()
    for data in read_chunks(path):
        h.update(data)
    return h.hexdigest()


def mem0_page(i):
    """mem0's page i as the interop README describes it."""
    if i % 7 == 3:
        return bytes(PAGE)
    return struct.pack("<Q", i) + b"QEMUPAGE" + bytes([i & 0xff]) * (PAGE - 16)


# ---- A writer for the legacy stream, from the format description ----

class Stream:
    def __init__(self):
        self.b = bytearray()

    def u8(self, v):
        self.b += struct.pack(">B", v)

    def be16(self, v):
        self.b += struct.pack(">H", v)

    def be32(self, v):
        self.b += struct.pack(">I", v)

    def be64(self, v):
        self.b += struct.pack(">Q", v)

    def name(self, s):
        self.u8(len(s))
        self.b += s.encode()

    def header(self):
        self.be32(0x5145564d)
        self.be32(3)

    def configuration(self, machine, caps=()):
        self.u8(0x07)
        self.be32(len(machine))
        self.b += machine.encode()
        if caps:
            self.u8(0x05)
            self.name("configuration/capabilities")
            self.be32(1)
            self.be32(len(caps))
            for c in caps:
                self.name(c)

    def start(self, type_, sid, idstr, instance, version):
        self.u8(type_)
        self.be32(sid)
        self.name(idstr)
        self.be32(instance)
        self.be32(version)

    def part(self, type_, sid):
        self.u8(type_)
        self.be32(sid)

    def footer(self, sid):
        self.u8(0x7e)
        self.be32(sid)

    def page(self, block, offset, data, cont=False):
        self.be64(offset | 0x08 | (0x20 if cont else 0))
        if not cont:
            self.name(block)
        assert len(data) == PAGE
        self.b += data

    def zero(self, block, offset, cont=False, value=0):
        self.be64(offset | 0x02 | (0x20 if cont else 0))
        if not cont:
            self.name(block)
        self.u8(value)

    def eos(self):
        self.be64(0x10)

    def vmdesc(self, desc):
        text = json.dumps(desc).encode()
        self.u8(0x00)
        self.u8(0x06)
        self.be32(len(text))
        self.b += text


def legacy_page_data(tag):
    return bytes([tag]) * 16 + bytes(range(256)) * 15 + bytes([tag]) * 240


COUNTER_DESC = {
    "name": "counter", "instance_id": 0, "vmsd_name": "counter",
    "version": 1,
    "fields": [
        {"name": "count", "type": "uint32", "size": 4},
        {"name": "delta", "type": "int16", "size": 2},
        {"name": "enabled", "type": "bool", "size": 1},
        {"name": "label", "type": "buffer", "size": 8},
        {"name": "regs", "array_len": 3, "type": "uint8", "size": 1},
        {"name": "ticks", "type": "timer", "size": 8},
        {"name": "pos", "type": "struct", "size": 12,
         "struct": {"vmsd_name": "pos", "version": 1, "fields": [
             {"name": "x", "type": "int64", "size": 8},
             {"name": "y", "type": "uint32", "size": 4}]}},
    ],
    "subsections": [{"vmsd_name": "counter/extra", "version": 2,
                     "fields": [{"name": "extra", "type": "uint16",
                                 "size": 2}]}],
}

GLOBALSTATE_DESC = {
    "name": "globalstate", "instance_id": 0, "vmsd_name": "globalstate",
    "version": 1,
    "fields": [{"name": "size", "type": "uint32", "size": 4},
               {"name": "runstate", "type": "buffer", "size": 32}],
}


def legacy_stream(ram_pages=16, zero_value=0, page1_offset=PAGE,
                  counter_desc=COUNTER_DESC, break_last_footer=False):
    """A legacy (non-mapped-ram) stream: pc.ram (ram_pages) and rom (2)."""
    s = Stream()
    s.header()
    s.configuration("minivm-1.0")
    # ram START: MEM_SIZE and the block list, then EOS
    s.start(0x01, 0, "ram", 0, 4)
    s.be64(((ram_pages + 2) * PAGE) | 0x04)
    s.name("pc.ram")
    s.be64(ram_pages * PAGE)
    s.name("rom")
    s.be64(2 * PAGE)
    s.eos()
    s.footer(0)
    # PART: first pass
    s.part(0x02, 0)
    s.page("pc.ram", 0, legacy_page_data(1))
    s.page("pc.ram", page1_offset, legacy_page_data(2), cont=True)
    s.zero("pc.ram", 2 * PAGE, cont=True, value=zero_value)
    s.page("rom", PAGE, legacy_page_data(9))
    s.page("pc.ram", 5 * PAGE, legacy_page_data(5))
    s.eos()
    s.footer(0)
    # END: pages dirtied again; page 0 became zero, page 1 changed
    s.part(0x03, 0)
    s.page("pc.ram", PAGE, legacy_page_data(3))
    s.zero("pc.ram", 0, cont=True)
    s.be64(0x200)  # MULTIFD_FLUSH: legal in a legacy stream
    s.eos()
    s.footer(0)
    # devices
    s.start(0x04, 1, "counter", 0, 1)
    s.be32(123456)
    s.be16(0xfffe)  # -2
    s.u8(1)
    s.b += b"counter\0"
    s.b += bytes([7, 8, 9])
    s.be64(0x1122334455667788)
    s.be64(0xffffffffffffff9c)  # -100
    s.be32(42)
    s.u8(0x05)
    s.name("counter/extra")
    s.be32(2)
    s.be16(0xbeef)
    s.footer(1)
    s.start(0x04, 2, "globalstate", 0, 1)
    s.be32(8)
    s.b += b"running".ljust(32, b"\0")
    s.footer(0xdead if break_last_footer else 2)
    s.vmdesc({"page_size": PAGE, "devices": [counter_desc, GLOBALSTATE_DESC]})
    return bytes(s.b)


def mapped_ram_stream(prefix=4096, pages=8, set_pages=(0, 2, 3)):
    """A mapped-ram stream starting at byte prefix of the file, with one
    block "pc.ram"; set pages hold legacy_page_data(i + 1), except page 3,
    which is set but all zero."""
    s = Stream()
    s.b += b"X" * prefix
    s.header()
    s.configuration("minivm-1.0", ["mapped-ram"])
    s.start(0x01, 0, "ram", 0, 4)
    s.be64((pages * PAGE) | 0x04)
    s.name("pc.ram")
    s.be64(pages * PAGE)
    bitmap_offset = len(s.b) + 28
    bitmap_size = (pages + 63) // 64 * 8
    pages_offset = (bitmap_offset + bitmap_size + (1 << 20) - 1) \
        & ~((1 << 20) - 1)
    s.be32(1)
    s.be64(PAGE)
    s.be64(bitmap_offset)
    s.be64(pages_offset)
    bitmap = bytearray(bitmap_size)
    for i in set_pages:
        bitmap[i // 8] |= 1 << (i % 8)
    s.b += bitmap
    s.b += bytes(pages_offset + pages * PAGE - len(s.b))
    for i in set_pages:
        if i != 3:
            at = pages_offset + i * PAGE
            s.b[at:at + PAGE] = legacy_page_data(i + 1)
    s.eos()
    s.footer(0)
    s.part(0x03, 0)
    s.eos()
    s.footer(0)
    s.start(0x04, 1, "globalstate", 0, 1)
    s.be32(8)
    s.b += b"running".ljust(32, b"\0")
    s.footer(1)
    s.vmdesc({"page_size": PAGE, "devices": [GLOBALSTATE_DESC]})
    return bytes(s.b)


class MappedRamAtOffset(unittest.TestCase):
    def setUp(self):
        self.path = os.path.join(WORKDIR, "mapped-ram-offset.mig")
        write_sparse(self.path, [mapped_ram_stream()])
        self.addCleanup(os.unlink, self.path)

    def test_check_and_extract(self):
        rc, _, err = run("--check", self.path)
        self.assertEqual(rc, 1)
        self.assertIn("Not a migration stream", err)
        rc, out, err = run("--check", "--offset", "4096", self.path)
        self.assertEqual(rc, 0, err)
        rc, out, err = run("--dump-json", "--offset", "4096", self.path)
        info = json.loads(out)
        self.assertEqual(info["stream_offset"], 4096)
        block = info["sections"][0]["ram"]["blocks"][0]
        self.assertEqual(block["mapped_ram"]["offset"], 4096 + 0x6e)
        self.assertEqual(block["mapped_ram"]["pages_offset"], 1 << 20)
        self.assertEqual(block["mapped_ram"]["bitmap_set"], 3)
        out = os.path.join(WORKDIR, "mr.bin")
        self.addCleanup(os.unlink, out)
        rc, _, err = run("--extract", "pc.ram", "--output", out,
                         "--offset", "4096", self.path)
        self.assertEqual(rc, 0, err)
        with open(out, "rb") as f:
            data = f.read()
        expect = bytearray(8 * PAGE)
        expect[0:PAGE] = legacy_page_data(1)
        expect[2 * PAGE:3 * PAGE] = legacy_page_data(3)
        self.assertEqual(data, bytes(expect))


# ---- The file QEMU 10.0.2 wrote ----

class Qemu10File(unittest.TestCase):
    path = None
    info = None

    @classmethod
    def setUpClass(cls):
        # gunzip at test time, sparse like the original
        cls.path = os.path.join(WORKDIR, "qemu10-pc-64M-mapped-ram.mig")
        write_sparse(cls.path, gz_chunks(QEMU_GZ))
        assert sha256_file(cls.path) == QEMU_FILE_SHA256
        rc, out, err = run("--dump-json", cls.path)
        assert rc == 0, err
        cls.info = json.loads(out)

    @classmethod
    def tearDownClass(cls):
        os.unlink(cls.path)

    def ram_start(self):
        s = self.info["sections"][0]
        self.assertEqual((s["type"], s["idstr"]), ("START", "ram"))
        return s

    def block(self, name):
        for b in self.ram_start()["ram"]["blocks"]:
            if b["name"] == name:
                return b
        self.fail("no block " + name)

    def test_check_passes(self):
        rc, out, err = run("--check", self.path)
        self.assertEqual(rc, 0, err)
        self.assertTrue(out.startswith("OK "), out)

    def test_configuration(self):
        self.assertEqual(self.info["header"], {"magic": "QEVM", "version": 3})
        conf = self.info["configuration"]
        self.assertEqual(conf["machine_type"], "pc-i440fx-10.0")
        self.assertEqual(conf["capabilities"], ["mapped-ram"])
        self.assertTrue(self.info["mapped_ram"])

    def test_blocks(self):
        ram = self.ram_start()
        self.assertEqual(ram["version_id"], 4)
        self.assertEqual(ram["ram"]["mem_size"], 0x4082000)
        self.assertEqual([(b["name"], b["used_length"])
                          for b in ram["ram"]["blocks"]], QEMU_BLOCKS)
        for b in ram["ram"]["blocks"]:
            h = b["mapped_ram"]
            self.assertEqual(h["version"], 1)
            self.assertEqual(h["page_size"], PAGE)
            self.assertEqual(h["bitmap_offset"], h["offset"] + 28)
            self.assertEqual(h["pages_offset"] % (1 << 20), 0)

    def test_mem0_header(self):
        h = self.block("mem0")["mapped_ram"]
        self.assertEqual(h["offset"], 0x70)
        self.assertEqual(h["bitmap_offset"], 0x8c)
        self.assertEqual(h["bitmap_size"], 2048)
        self.assertEqual(h["pages_offset"], 0x100000)
        self.assertEqual(h["bitmap_set"], 14043)
        self.assertEqual(self.block("mem0")["pages"], 16384)

    def test_sections(self):
        types = [s["type"] for s in self.info["sections"]]
        self.assertEqual(types[:5], ["START", "PART", "PART", "COMMAND",
                                     "END"])
        cmd = self.info["sections"][3]
        self.assertEqual((cmd["command"], cmd["command_name"],
                          cmd["payload_length"]),
                         (0x0b, "switchover-start", 0))
        self.assertEqual(types.count("FULL"), 30)
        self.assertEqual(self.info["device_sections"], 30)
        self.assertEqual(types[5:], ["FULL"] * 30)
        for s in self.info["sections"][5:]:
            self.assertNotIn("decode_error", s)
        self.assertIsNotNone(self.info["eof"])
        self.assertEqual(self.info["vmdesc"]["size"], 99119)
        self.assertEqual(self.info["vmdesc"]["devices"], 30)
        self.assertEqual(self.info["errors"], [])

    def test_device_fields(self):
        devs = {s["idstr"]: s for s in self.info["sections"]
                if s["type"] == "FULL"}
        self.assertEqual(devs["timer"]["vmsd_name"], "timer")
        self.assertIn("cpu_ticks_offset", devs["timer"]["fields"])
        fw = devs["fw_cfg"]["fields"]["subsections"]["fw_cfg/acpi_mr"]
        self.assertEqual(fw["table_mr_size"], 128 << 10)
        self.assertEqual(fw["rsdp_mr_size"], 20)
        gs = devs["globalstate"]["fields"]
        self.assertEqual(bytes.fromhex(gs["runstate"]).rstrip(b"\0"),
                         b"prelaunch")
        self.assertEqual(len(devs["cpu"]["fields"]["env.regs"]), 16)

    def test_text_output(self):
        rc, out, err = run(self.path)
        self.assertEqual(rc, 0, err)
        for needle in ('machine type "pc-i440fx-10.0"', "mapped-ram",
                       "MappedRamHeader at 0x70", "bitmap: 14043/16384",
                       "0x000b (switchover-start)", '"globalstate"',
                       "VMDESCRIPTION 99119 bytes"):
            self.assertIn(needle, out)

    def test_extract_mem0(self):
        out = os.path.join(WORKDIR, "mem0.bin")
        try:
            rc, _, err = run("--extract", "mem0", "--output", out, self.path)
            self.assertEqual(rc, 0, err)
            self.assertEqual(os.path.getsize(out), 64 << 20)
            self.assertEqual(sha256_file(out), MEM0_SHA256)
            with open(out, "rb") as f:
                for i in (0, 1, 2, 3, 10, 255, 256, 7 * 1000 + 3, 16382,
                          16383):
                    f.seek(i * PAGE)
                    self.assertEqual(f.read(PAGE), mem0_page(i), "page %d" % i)
            # zero pages stay holes
            st = os.stat(out)
            self.assertLess(st.st_blocks * 512, 64 << 20)
        finally:
            if os.path.exists(out):
                os.unlink(out)

    def test_extract_small_block(self):
        out = os.path.join(WORKDIR, "rsdp.bin")
        try:
            rc, _, err = run("--extract", "/rom@etc/acpi/rsdp", "--output",
                             out, self.path)
            self.assertEqual(rc, 0, err)
            with open(out, "rb") as f:
                self.assertEqual(f.read(8), b"RSD PTR ")
        finally:
            if os.path.exists(out):
                os.unlink(out)

    def test_extract_unknown_block(self):
        out = os.path.join(WORKDIR, "none.bin")
        rc, _, err = run("--extract", "nope", "--output", out, self.path)
        os.unlink(out)
        self.assertEqual(rc, 1)
        self.assertIn('no RAM block named "nope"', err)

    # -- corrupted copies: --check must fail and name the problem --

    def corrupt(self, patches=(), truncate=None):
        dst = os.path.join(WORKDIR, "corrupt.mig")
        write_sparse(dst, read_chunks(self.path))
        with open(dst, "r+b") as f:
            for off, data in patches:
                f.seek(off)
                f.write(data)
            if truncate is not None:
                f.truncate(truncate)
        return dst

    def check_fails(self, needle, **kw):
        dst = self.corrupt(**kw)
        try:
            rc, out, err = run("--check", dst)
            self.assertEqual(rc, 1, out + err)
            self.assertIn(needle, err)
            self.assertNotIn("OK", out)
            # the other modes survive it too
            rc, out, _ = run("--dump-json", dst)
            self.assertIn(rc, (0, 1))
            json.loads(out)
        finally:
            os.unlink(dst)

    def test_bad_magic(self):
        self.check_fails("Not a migration stream", patches=[(0, b"QEVN")])

    def test_version_2(self):
        self.check_fails("SaveVM v2 format is obsolete",
                         patches=[(4, struct.pack(">I", 2))])

    def test_version_4(self):
        self.check_fails("Unsupported migration stream version",
                         patches=[(4, struct.pack(">I", 4))])

    def test_truncated_block_list(self):
        # in the middle of mem0's used_length
        self.check_fails("RAM block list", truncate=0x68)

    def test_bitmap_offset_changed(self):
        self.check_fails("bitmap_offset 0x8d is not the end of its "
                         "MappedRamHeader",
                         patches=[(0x70 + 12, struct.pack(">Q", 0x8d))])

    def test_pages_offset_unaligned(self):
        self.check_fails("region has bad alignment",
                         patches=[(0x70 + 20, struct.pack(">Q", 0x100800))])

    def test_pages_offset_not_rounded(self):
        self.check_fails("is not round_up(bitmap_offset + bitmap_size",
                         patches=[(0x70 + 20, struct.pack(">Q", 0x200000))])

    def test_header_version(self):
        self.check_fails("version not supported (expected <= 1, got 2)",
                         patches=[(0x70, struct.pack(">I", 2))])

    def test_page_size(self):
        self.check_fails("page_size is 8192",
                         patches=[(0x70 + 4, struct.pack(">Q", 8192))])

    def test_set_bit_beyond_eof(self):
        # cut mem0's page area: set pages now lie past the end of the file
        self.check_fails("lie beyond the end of the file",
                         truncate=0x100000 + 8000 * PAGE)

    def test_bitmap_bits_beyond_block(self):
        b = self.block("/rom@etc/table-loader")["mapped_ram"]
        self.check_fails("bitmap bits beyond the block's 1 pages are set",
                         patches=[(b["bitmap_offset"], b"\x03")])

    def test_broken_ram_footer(self):
        s = self.ram_start()
        self.check_fails("Missing section footer for ram",
                         patches=[(s["offset"] + s["length"] - 5, b"\x7f")])

    def test_mismatched_footer_id(self):
        s = self.info["sections"][1]
        self.check_fails("Mismatched section id in footer for ram",
                         patches=[(s["offset"] + s["length"] - 1, b"\x09")])

    def test_broken_device_footer(self):
        s = [s for s in self.info["sections"]
             if s.get("idstr") == "timer"][0]
        self.check_fails("Missing section footer for timer",
                         patches=[(s["offset"] + s["length"] - 5, b"\x00")])

    def test_page_record_in_mapped_ram(self):
        # turn the first PART's EOS into a ZERO record... which the tool
        # then reads as such: flags 0x02 on a mapped-ram stream
        s = self.info["sections"][1]
        self.check_fails("Unexpected RAM flags",
                         patches=[(s["offset"] + 5,
                                   struct.pack(">Q", 0x02))])

    def test_vmdesc_invalid_json(self):
        v = self.info["vmdesc"]
        with open(self.path, "rb") as f:
            f.seek(v["offset"] + 5)
            text = f.read(v["size"])
        colon = text.index(b'": ', 1000) + 1
        self.check_fails("is not valid JSON",
                         patches=[(v["offset"] + 5 + colon, b"!")])

    def test_vmdesc_missing(self):
        v = self.info["vmdesc"]
        self.check_fails("VMDESCRIPTION", truncate=v["offset"] + 1)

    def test_eof_missing(self):
        self.check_fails("EOF missing", truncate=self.info["eof"]["offset"])

    def test_description_mismatch_is_a_warning(self):
        # describe cpu_clock_offset as 4 bytes: same JSON length, wrong
        # description; --check warns and still passes
        v = self.info["vmdesc"]
        with open(self.path, "rb") as f:
            f.seek(v["offset"] + 5)
            text = f.read(v["size"])
        old = b'"cpu_clock_offset", "type": "int64", "size": 8'
        self.assertEqual(text.count(old), 1)
        at = v["offset"] + 5 + text.index(old) + len(old) - 1
        dst = self.corrupt(patches=[(at, b"4")])
        try:
            rc, out, err = run("--check", dst)
            self.assertEqual(rc, 0, err)
            self.assertIn('warning: section "timer" instance 0', err)
            self.assertIn("could not be decoded", err)
            rc, out, err = run("--dump-json", dst)
            info = json.loads(out)
            timer = [s for s in info["sections"]
                     if s.get("idstr") == "timer"][0]
            self.assertIn("decode_error", timer)
            self.assertIn("cpu_ticks_offset", timer["fields"])
            self.assertEqual(info["device_sections"], 30)
        finally:
            os.unlink(dst)


# ---- The legacy stream ----

class LegacyStream(unittest.TestCase):
    def write(self, data, name="legacy.mig", prefix=b""):
        path = os.path.join(WORKDIR, name)
        with open(path, "wb") as f:
            f.write(prefix + data)
        self.addCleanup(os.unlink, path)
        return path

    def test_check_and_dump(self):
        path = self.write(legacy_stream())
        rc, out, err = run("--check", path)
        self.assertEqual(rc, 0, err)
        self.assertIn('machine "minivm-1.0"', out)
        rc, out, err = run("--dump-json", path)
        self.assertEqual(rc, 0, err)
        info = json.loads(out)
        self.assertFalse(info["mapped_ram"])
        self.assertEqual(info["configuration"]["capabilities"], [])
        types = [s["type"] for s in info["sections"]]
        self.assertEqual(types, ["START", "PART", "END", "FULL", "FULL"])
        blocks = {b["name"]: b for b in
                  info["sections"][0]["ram"]["blocks"]}
        self.assertEqual(blocks["pc.ram"]["used_length"], 16 * PAGE)
        self.assertEqual(blocks["pc.ram"]["legacy_pages"], 4)
        self.assertEqual(blocks["pc.ram"]["legacy_zero_pages"], 2)
        self.assertEqual(blocks["rom"]["legacy_pages"], 1)
        self.assertNotIn("mapped_ram", blocks["rom"])
        part = info["sections"][1]["ram"]
        self.assertEqual((part["pages"], part["zero_pages"]), (4, 1))
        end = info["sections"][2]["ram"]
        self.assertEqual((end["pages"], end["zero_pages"],
                          end["multifd_flushes"]), (1, 1, 1))
        counter = info["sections"][3]["fields"]
        self.assertEqual(counter["count"], 123456)
        self.assertEqual(counter["delta"], -2)
        self.assertIs(counter["enabled"], True)
        self.assertEqual(counter["label"], b"counter\0".hex())
        self.assertEqual(counter["regs"], [7, 8, 9])
        self.assertEqual(counter["ticks"], "1122334455667788")
        self.assertEqual(counter["pos"], {"x": -100, "y": 42})
        self.assertEqual(counter["subsections"]["counter/extra"],
                         {"version_id": 2, "extra": 0xbeef})
        gs = info["sections"][4]["fields"]
        self.assertEqual(bytes.fromhex(gs["runstate"]).rstrip(b"\0"),
                         b"running")
        self.assertEqual(info["errors"], [])
        self.assertEqual(info["warnings"], [])

    def test_extract(self):
        path = self.write(legacy_stream())
        out = os.path.join(WORKDIR, "legacy-ram.bin")
        self.addCleanup(os.unlink, out)
        rc, _, err = run("--extract", "pc.ram", "--output", out, path)
        self.assertEqual(rc, 0, err)
        with open(out, "rb") as f:
            data = f.read()
        expect = bytearray(16 * PAGE)
        # page 0 was written, then zeroed; page 1 rewritten: last wins
        expect[PAGE:2 * PAGE] = legacy_page_data(3)
        expect[5 * PAGE:6 * PAGE] = legacy_page_data(5)
        self.assertEqual(data, bytes(expect))
        rc, _, err = run("--extract", "rom", "--output", out, path)
        self.assertEqual(rc, 0, err)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), bytes(PAGE) + legacy_page_data(9))

    def test_offset(self):
        path = self.write(legacy_stream(), prefix=b"X" * 4096)
        rc, out, err = run("--check", path)
        self.assertEqual(rc, 1)
        self.assertIn("Not a migration stream", err)
        for offset in ("4096", "4K", "0x1000"):
            rc, out, err = run("--check", "--offset", offset, path)
            self.assertEqual(rc, 0, offset + err)
        rc, out, err = run("--check", "--offset", "4X", path)
        self.assertEqual(rc, 2)
        self.assertIn("bad offset", err)

    def test_zero_page_value(self):
        path = self.write(legacy_stream(zero_value=7))
        rc, _, err = run("--check", path)
        self.assertEqual(rc, 1)
        self.assertIn("Found a zero page with value 7", err)

    def test_page_outside_block(self):
        path = self.write(legacy_stream(page1_offset=16 * PAGE))
        rc, _, err = run("--check", path)
        self.assertEqual(rc, 1)
        self.assertIn("page outside of ramblock pc.ram range", err)

    def test_mem_size_mismatch(self):
        data = bytearray(legacy_stream())
        # MEM_SIZE record right after the ram START header
        at = data.index(b"\x03ram") + 4 + 8
        data[at:at + 8] = struct.pack(">Q", (10 * PAGE) | 0x04)
        path = self.write(bytes(data))
        rc, _, err = run("--check", path)
        self.assertEqual(rc, 1)
        self.assertIn("RAM block list inconsistent with MEM_SIZE", err)

    def test_footer_id(self):
        path = self.write(legacy_stream(break_last_footer=True))
        rc, _, err = run("--check", path)
        self.assertEqual(rc, 1)
        self.assertIn("Mismatched section id in footer for globalstate - "
                      "read 0xdead expected 0x2", err)

    def test_description_mismatch(self):
        desc = json.loads(json.dumps(COUNTER_DESC))
        desc["fields"][0]["size"] = 8
        desc["fields"][0]["type"] = "uint64"
        path = self.write(legacy_stream(counter_desc=desc))
        rc, out, err = run("--check", path)
        self.assertEqual(rc, 0, err)
        self.assertIn('warning: section "counter"', err)

    def test_truncated_everywhere(self):
        # every prefix of the stream is refused cleanly, never a crash
        data = legacy_stream()
        path = os.path.join(WORKDIR, "cut.mig")
        try:
            for cut in list(range(0, 200)) + list(range(200, len(data), 97)):
                with open(path, "wb") as f:
                    f.write(data[:cut])
                rc, out, err = run("--check", path)
                self.assertEqual(rc, 1, "cut at %d" % cut)
                self.assertIn("error:", err)
        finally:
            os.unlink(path)


def main():
    global TOOL, QEMU_GZ, WORKDIR
    if len(sys.argv) != 4:
        sys.exit("usage: %s TOOL QEMU10_MIG_GZ WORKDIR" % sys.argv[0])
    TOOL, QEMU_GZ, WORKDIR = sys.argv[1:]
    WORKDIR = os.path.join(WORKDIR, "analyze-migration-test")
    os.makedirs(WORKDIR, exist_ok=True)
    unittest.main(argv=[sys.argv[0], "-v"])


if __name__ == "__main__":
    main()
