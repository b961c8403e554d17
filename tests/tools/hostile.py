#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Hostile and dead peers, for tests/integration/hostile_peers.sh.

  hostile.py dest MODE PORT          a fake destination on 127.0.0.1:PORT
      no-ack        reads everything, never acknowledges the header
      half-record   acknowledges the header, then sends half a record's
                    header and goes silent (still reading)
      wrong-acks    acknowledges the header; once the source has sent END,
                    a wrong acknowledgement every second, never the right one
      slow-ack      acknowledges the header; after END, the right ACK(RUNNING)
                    one byte every SECS seconds (hostile.py dest slow-ack PORT SECS;
                    default 1.5): 20 bytes in all
      error-escapes acknowledges the header, then an ERROR whose text has an
                    escape sequence, a NUL and bytes that are not UTF-8
  hostile.py source MODE PORT [MIB CPUS]   a fake source for a destination
      silent        connects and sends nothing
      ten-bytes     sends 10 bytes of a header and goes silent
      trickle       sends a header 5 bytes a second
      header-only   a valid header (for MIB MiB of RAM, CPUS vCPUs), then silence
      big-record    a valid header, then a RAM_PAGES record declared 2 MiB
                    long (511 pages) and the first 1000 bytes of its entries
      fdt-old       a valid header, then a MACHINE_STATE whose device tree
                    says version 2, last compatible 0 (crashed libfdt 1.6.1)
                    and END

A destination prints "ready" once listening; every mode prints "done: ..."
when it has done its part, and then holds its connection open until killed.
The layout is docs/design.md's.
"""
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wire import STREAM_VERSION, crc32c, record  # noqa: E402

REC_RAM_PAGES, REC_MACHINE_STATE, REC_END = 1, 2, 4
REC_ACK, REC_ERROR = 0x81, 0x82



def header(mib, cpus):
    """A stream header for MIB MiB of RAM in one slot at 0 (below 3 GiB)."""
    body = b'VMMIGR\r\n' + struct.pack('<IIIIQII', STREAM_VERSION, 64 + 16 + 4, 0, 4096, mib << 20, cpus, 1)
    body += b'\0' * 24 + struct.pack('<QQ', 0, mib << 20)
    return body + struct.pack('<I', crc32c(body))


def say(what):
    print('done: ' + what, flush=True)


def hold(conn):
    """Keep the connection open, reading whatever comes, until killed."""
    try:
        while conn.recv(1 << 20):
            pass
    except OSError:
        pass
    time.sleep(3600)


def read_header(conn):
    fixed = conn.recv(16, socket.MSG_WAITALL)
    hlen = struct.unpack_from('<I', fixed, 12)[0]
    conn.recv(hlen - 16, socket.MSG_WAITALL)


def read_until_end(conn):
    """Read records (header, payload) until END; False if the source went away first."""
    while True:
        head = conn.recv(16, socket.MSG_WAITALL)
        if len(head) < 16:
            return False
        rtype, length = struct.unpack_from('<II', head)
        while length:
            chunk = conn.recv(min(length, 1 << 20))
            if not chunk:
                return False
            length -= len(chunk)
        if rtype == REC_END:
            return True


def dest(mode, port, secs_per_byte):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(('127.0.0.1', port))
    srv.listen(4)
    print('ready', flush=True)
    conn, _ = srv.accept()
    read_header(conn)
    if mode == 'no-ack':
        say('header read, never acknowledged')
        hold(conn)
    conn.sendall(record(REC_ACK, 0, struct.pack('<I', 1)))
    if mode == 'half-record':
        conn.sendall(record(REC_ACK, 1, struct.pack('<I', 1))[:8])
        say('half a record sent')
        hold(conn)
    if mode == 'error-escapes':
        conn.sendall(record(REC_ERROR, 1, b'bad \x1b[31mred\x1b[0m\x00\xff\xfe end'))
        say('ERROR sent')
        hold(conn)
    if not read_until_end(conn):
        sys.exit('the source went away before END')
    if mode == 'wrong-acks':
        say('END read; wrong acknowledgements follow')
        seq = 1
        while True:
            conn.sendall(record(REC_ACK, seq, struct.pack('<I', 3)))
            seq += 1
            time.sleep(1)
    if mode == 'slow-ack':
        say('END read; ACK(RUNNING) a byte at a time')
        for b in record(REC_ACK, 1, struct.pack('<I', 2)):
            conn.sendall(bytes([b]))
            time.sleep(secs_per_byte)
        hold(conn)
    sys.exit('unknown mode ' + mode)


def source(mode, port, mib, cpus):
    conn = socket.create_connection(('127.0.0.1', port))
    h = header(mib, cpus)
    if mode == 'silent':
        say('connected, silent')
    elif mode == 'ten-bytes':
        conn.sendall(h[:10])
        say('10 bytes sent')
    elif mode == 'trickle':
        say('trickling the header')
        for i in range(0, len(h), 5):
            try:
                conn.sendall(h[i:i + 5])
            except OSError:
                break
            time.sleep(1)
    elif mode == 'header-only':
        conn.sendall(h)
        say('header sent, silent')
    elif mode == 'big-record':
        conn.sendall(h)
        # 511 entries (8 + 8 x 511 + 511 pages: 2 MiB): the part the checksum covers is 4096
        # bytes, so the reader is still waiting for it, not checking it, when the bytes stop.
        rec = record(REC_RAM_PAGES, 0, b'\0' * 1000)
        conn.sendall(struct.pack('<III', REC_RAM_PAGES, 2 << 20, 0) + rec[12:16] +
                     struct.pack('<II', 511, 0) + b'\0' * 992)
        say('2 MiB declared, 1000 bytes sent')
    elif mode == 'fdt-old':
        conn.sendall(h)
        fdt = bytearray(64)
        struct.pack_into('>IIIIIIIII', fdt, 0, 0xd00dfeed, 64, 56, 60, 40, 2, 0, 0, 0)
        conn.sendall(record(REC_MACHINE_STATE, 0, bytes(fdt)) + record(REC_END, 1, b''))
        say('a version 2 device tree sent')
    else:
        sys.exit('unknown mode ' + mode)
    hold(conn)


def main():
    side, mode, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if side == 'dest':
        dest(mode, port, float(sys.argv[4]) if len(sys.argv) > 4 else 1.5)
    else:
        mib = int(sys.argv[4]) if len(sys.argv) > 4 else 256
        cpus = int(sys.argv[5]) if len(sys.argv) > 5 else 1
        source(mode, port, mib, cpus)


if __name__ == '__main__':
    main()
