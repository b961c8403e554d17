#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Misbehaving peers for the migration failure tests.

  fake-dest.py silent PORT          accept, read everything, never answer
  fake-dest.py ack-header PORT      accept the header, read everything, never
                                    acknowledge the end (holds the source in
                                    its completing state)
  fake-dest.py proxy PORT TARGET    forward 127.0.0.1:PORT to 127.0.0.1:TARGET
                                    (kill it to cut the connection)

Prints "ready" once listening.  The record layout is docs/design.md's.
"""
import os
import socket
import struct
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wire import crc32c, record  # noqa: E402



def listen(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('127.0.0.1', port))
    s.listen(4)
    print('ready', flush=True)
    return s


def drain(conn):
    while conn.recv(1 << 20):
        pass


def pump(a, b):
    try:
        while True:
            data = a.recv(1 << 16)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    srv = listen(port)
    conn, _ = srv.accept()
    if mode == 'silent':
        drain(conn)
    elif mode == 'ack-header':
        fixed = conn.recv(16, socket.MSG_WAITALL)
        hlen = struct.unpack_from('<I', fixed, 12)[0]
        conn.recv(hlen - 16, socket.MSG_WAITALL)
        conn.sendall(record(0x81, 0, struct.pack('<I', 1)))
        drain(conn)
    elif mode == 'proxy':
        # Every connection (a postcopy migration opens two: the main one and
        # its urgent channel), each forwarded both ways until killed.
        while True:
            out = socket.create_connection(('127.0.0.1', int(sys.argv[3])))
            for a, b in ((out, conn), (conn, out)):
                threading.Thread(target=pump, args=(a, b), daemon=True).start()
            conn, _ = srv.accept()
    else:
        sys.exit('unknown mode ' + mode)


if __name__ == '__main__':
    main()
