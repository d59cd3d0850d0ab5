#!/usr/bin/env python3
"""Writes the first N entries along axis 0 of a C-order .npy file as a new .npy file.

    npy_head.py IN.npy OUT.npy N

Standard library only: the deploy tests run where numpy may be absent. Used to keep emulated
(qemu) runs short: an fp32 run under qemu costs seconds per image.
"""
import ast
import struct
import sys


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: npy_head.py IN.npy OUT.npy N")
    src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    data = open(src, "rb").read()
    if data[:6] != b"\x93NUMPY" or data[6] != 1:
        sys.exit(f"npy_head.py: {src} is not a version 1 .npy file")
    hlen = struct.unpack("<H", data[8:10])[0]
    head = ast.literal_eval(data[10 : 10 + hlen].decode("latin1"))
    if head["fortran_order"] or not head["shape"] or not 0 < n <= head["shape"][0]:
        sys.exit(f"npy_head.py: cannot take {n} entries of {src} ({head})")
    item = int(head["descr"][2:])
    count = n
    for d in head["shape"][1:]:
        count *= d
    head["shape"] = (n,) + tuple(head["shape"][1:])
    text = repr(head)
    text += " " * (63 - (10 + len(text)) % 64) + "\n"  # header padded to 64 bytes
    body = data[10 + hlen : 10 + hlen + item * count]
    with open(dst, "wb") as f:
        f.write(data[:8] + struct.pack("<H", len(text)) + text.encode("latin1") + body)


main()
