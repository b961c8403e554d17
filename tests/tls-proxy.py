#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A TCP proxy for tests/integration/tls.sh: what an attacker on the path does.

usage: tls-proxy.py proxy PORT TARGET_PORT [--flip OFFSET] [--record FILE]
       tls-proxy.py replay TARGET_PORT FILE

proxy: listens on 127.0.0.1:PORT and forwards every connection to
127.0.0.1:TARGET_PORT, both ways; --flip flips one bit of the byte at
OFFSET of the first connection's client-to-server bytes; --record writes
the first MiB of the first connection's client-to-server bytes to FILE (a
capture).
replay: connects to TARGET_PORT, sends FILE's bytes as they were captured,
and prints what came back.
"""
import socket
import sys
import threading

RECORD_MAX = 1 << 20     # the handshake and the stream's first records: enough to replay


def pipe(a, b, flip=None, record=None):
    seen = 0
    while True:
        try:
            d = a.recv(65536)
        except OSError:
            break
        if not d:
            break
        if flip is not None and seen <= flip < seen + len(d):
            d = bytearray(d)
            d[flip - seen] ^= 0x20
            d = bytes(d)
            print(f"flipped a byte at {flip}", flush=True)
        if record and seen < RECORD_MAX:
            record.write(d[:RECORD_MAX - seen])
            record.flush()
        seen += len(d)
        try:
            b.sendall(d)
        except OSError:
            break
    try:
        b.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def proxy(port, target, flip, record):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(8)
    print("proxy listening", flush=True)
    first = True
    while True:
        c, _ = ls.accept()
        s = socket.create_connection(("127.0.0.1", target))
        rec = open(record, "wb") if record and first else None
        threading.Thread(target=pipe, args=(c, s, flip if first else None, rec), daemon=True).start()
        threading.Thread(target=pipe, args=(s, c), daemon=True).start()
        print("proxy: a connection", flush=True)
        first = False


def replay(target, path):
    data = open(path, "rb").read()
    s = socket.create_connection(("127.0.0.1", target))
    s.settimeout(30)
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        back = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            back += d
    except OSError as e:
        print(f"replay: {e}")
    else:
        print(f"replay: sent {len(data)} bytes, {len(back)} came back")


def main():
    a = sys.argv[1:]
    if len(a) >= 3 and a[0] == "proxy":
        flip = int(a[a.index("--flip") + 1]) if "--flip" in a else None
        record = a[a.index("--record") + 1] if "--record" in a else None
        proxy(int(a[1]), int(a[2]), flip, record)
    elif len(a) == 3 and a[0] == "replay":
        replay(int(a[1]), a[2])
    else:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
