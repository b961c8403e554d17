# SPDX-License-Identifier: GPL-2.0-or-later
"""The migration stream's framing for the test tools (docs/design.md): the
CRC-32C every header and record carries (over all but RAM_PAGES' page
data), and a record.  Imported by
fake-dest.py and hostile.py."""
import os
import re
import struct

# The version this vmm speaks, from the one place it is defined.
_STREAM_H = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'migrate', 'stream.h')
with open(_STREAM_H) as _f:
    STREAM_VERSION = int(re.search(r'^#define STREAM_VERSION\s+(\d+)', _f.read(), re.M).group(1))

_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _TABLE.append(_c)


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def crc_len(rtype, payload):
    """The payload bytes the CRC covers: RAM_PAGES (type 1) leaves its page data out."""
    if rtype != 1 or len(payload) < 4:
        return len(payload)
    return min(8 + 8 * struct.unpack_from('<I', payload)[0], len(payload))


def record(rtype, seq, payload):
    head = struct.pack('<III', rtype, len(payload), seq)
    return head + struct.pack('<I', crc32c(head + payload[:crc_len(rtype, payload)])) + payload
