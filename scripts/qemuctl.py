# SPDX-License-Identifier: GPL-2.0-or-later
"""Driving qemu-system-x86_64 through a migration, for the tools that put vmm
beside QEMU (bench/run, scripts/migration-soak): its human monitor (HMP) on a
unix socket, a word written into the guest through its gdbstub (the test
guest's ctl word, which ends its run), and `info migrate` read into numbers.

Nothing here decides a verdict: the guest's exit status through
isa-debug-exit does ((V << 1) | 1, so a PASS is QEMU exit status 1).
"""

import json
import re
import socket
import threading
import time


class QemuError(Exception):
    """QEMU or its guest did not do what was asked; the message says what."""


def argv(accel, ram_mib, cpus, kernel, append, rundir, name, incoming_port=None):
    """A command line for the test guest under QEMU, monitor and gdbstub on unix sockets in @rundir.

    -no-reboot: a triple fault ends QEMU instead of booting the guest again.
    Both sides get the same command line (the multiboot image is loaded
    through fw_cfg and a ROM); the serial console is stdout."""
    a = ["qemu-system-x86_64", "-accel", accel, "-m", f"{ram_mib}M", "-smp", str(cpus),
         "-nodefaults", "-no-reboot", "-display", "none", "-kernel", kernel,
         "-append", append, "-device", "isa-debug-exit", "-serial", "stdio",
         "-monitor", f"unix:{rundir}/{name}.mon,server=on,wait=off",
         "-qmp", f"unix:{rundir}/{name}.qmp,server=on,wait=off",
         "-chardev", f"socket,id=gdb0,path={rundir}/{name}.gdb,server=on,wait=off",
         "-gdb", "chardev:gdb0"]
    if accel == "kvm":
        a[3:3] = ["-cpu", "host"]
    if incoming_port:
        a += ["-incoming", f"tcp:127.0.0.1:{incoming_port}"]
    return a


def connect_unix(path, what, timeout=30):
    """A connected unix socket, retried until QEMU listens there (or QemuError after @timeout s)."""
    deadline = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX)
        try:
            s.settimeout(timeout)
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.monotonic() > deadline:
                raise QemuError(f"cannot connect to QEMU's {what} {path}")
            time.sleep(0.2)


class Hmp:
    """QEMU's human monitor on a unix socket."""

    PROMPT = b"(qemu) "

    def __init__(self, path, timeout=30):
        self.s = connect_unix(path, "monitor", timeout)
        self._until_prompt()

    def _until_prompt(self):
        buf = b""
        try:
            while not buf.endswith(self.PROMPT):
                chunk = self.s.recv(65536)
                if not chunk:
                    raise QemuError("QEMU's monitor closed")
                buf += chunk
        except socket.timeout:
            raise QemuError(f"QEMU's monitor does not answer: {buf[-200:]!r}")
        text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", buf.decode(errors="replace")).replace("\r", "")
        return text[:-len(self.PROMPT)]

    def cmd(self, line):
        """The command's output, without the echo of the command (its first line)."""
        self.s.sendall(line.encode() + b"\n")
        out = self._until_prompt()
        return out.split("\n", 1)[1] if "\n" in out else ""

    def capabilities(self):
        """The names of the migration capabilities this QEMU has."""
        return set(re.findall(r"^([a-z0-9-]+): (?:on|off)$", self.cmd("info migrate_capabilities"), re.M))

    def quit(self):
        try:
            self.s.sendall(b"quit\n")
        except OSError:
            pass

    def close(self):
        self.s.close()


class QmpEvents:
    """QEMU's QMP socket, read only for its events (STOP, RESUME, ...), each kept with
    QEMU's own timestamp (the wall clock, in µs): the pause of a migration read on one
    clock from the source's STOP to the destination's RESUME."""

    def __init__(self, path, timeout=30):
        self.s = connect_unix(path, "QMP socket", timeout)
        self.f = self.s.makefile("rb")
        self.events = []                # (name, µs)
        try:
            if "QMP" not in json.loads(self.f.readline() or b"{}"):
                raise QemuError(f"no QMP greeting on {path}")
            self.s.sendall(b'{"execute": "qmp_capabilities"}\n')
            while True:
                msg = json.loads(self.f.readline() or b"{}")
                if not msg:
                    raise QemuError(f"QMP on {path} closed")
                if "return" in msg or "error" in msg:
                    break
                self._keep(msg)
        except (OSError, ValueError) as e:
            raise QemuError(f"QMP on {path}: {e}")
        # Events come whenever QEMU sends them: a thread reads them until the socket ends.
        self.s.settimeout(None)
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _keep(self, msg):
        ts = msg.get("timestamp") or {}
        if "event" in msg:
            self.events.append((msg["event"], ts.get("seconds", 0) * 1000000 + ts.get("microseconds", 0)))

    def _read(self):
        try:
            for line in self.f:
                try:
                    self._keep(json.loads(line))
                except ValueError:
                    pass
        except OSError:
            pass

    def last(self, name):
        """The time (µs, wall clock) of the last event @name so far, or None."""
        times = [t for n, t in list(self.events) if n == name]
        return times[-1] if times else None

    def first(self, name, after=0):
        """The time (µs, wall clock) of the first event @name at or after @after, or None."""
        times = [t for n, t in list(self.events) if n == name and t >= after]
        return times[0] if times else None

    def close(self):
        try:
            self.s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.s.close()


def gdb_poke32(path, addr, value, timeout=30):
    """Write a 32-bit word at a guest address through QEMU's gdbstub, then detach (resumes the VM).

    The test guest maps its first 4 GiB 1:1, so its virtual addresses are physical."""
    def packet(body):
        return f"${body}#{sum(body.encode()) % 256:02x}".encode()

    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    try:
        s.connect(path)
        buf = b""

        def reply():
            """The next reply, skipping stop notifications (T.., S..: the VM stops when gdb connects)."""
            nonlocal buf
            while True:
                m = re.search(rb"\$([^#]*)#..", buf)
                if m:
                    buf = buf[m.end():]
                    s.sendall(b"+")
                    r = m.group(1).decode(errors="replace")
                    if r[:1] in ("T", "S"):
                        continue
                    return r
                chunk = s.recv(4096)
                if not chunk:
                    raise QemuError("QEMU's gdbstub closed")
                buf += chunk

        s.sendall(packet(f"M{int(addr, 16):x},4:{value.to_bytes(4, 'little').hex()}"))
        r = reply()
        if r != "OK":
            raise QemuError(f"gdbstub: writing the ctl word: {r!r}")
        s.sendall(packet("D"))
        reply()
    except (OSError, socket.timeout) as e:
        raise QemuError(f"gdbstub {path}: {e}")
    finally:
        s.close()


def info_migrate(hmp):
    """(status, fields, text) of `info migrate`: fields maps each "name: N [unit]" line to N
    (kbytes made bytes), and "postcopy vcpu blocktime" to the list of its numbers."""
    out = hmp.cmd("info migrate")
    m = re.search(r"^Migration status: (\S+)", out, re.M)
    fields = {}
    for name, rest in re.findall(r"^([a-z][a-z -]*[a-z]): (.*)$", out, re.M):
        nums = re.findall(r"[0-9]+(?:\.[0-9]+)?", rest)
        if not nums:
            continue
        if name == "postcopy vcpu blocktime":
            fields[name] = [int(float(n)) for n in nums]
            continue
        v = float(nums[0])
        if rest.strip().endswith("kbytes"):
            v *= 1024
        fields[name] = int(v) if v == int(v) else v
    return (m.group(1) if m else "?"), fields, out
