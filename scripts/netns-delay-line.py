#!/usr/bin/env python3
"""A delay line between two network interfaces, for scripts/netns-spread on kernels without
sch_netem: every Ethernet frame that arrives on one interface leaves by the other after a delay
drawn from a normal distribution (like `tc qdisc add dev X root netem delay MEAN SD
distribution normal`). The frames carry real TCP, so connection set-up pays real, jittered
round trips. TCP checksums are filled in: veth leaves them to an offload that raw sockets skip.

    netns-delay-line.py IFACE_A IFACE_B MEAN_MS SD_MS
"""
import heapq
import random
import select
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def with_tcp_checksum(frame: bytes) -> bytes:
    """The frame with its TCP checksum computed, if it is IPv4 TCP."""
    if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
        return frame
    ihl = (frame[14] & 0x0F) * 4
    (total,) = struct.unpack("!H", frame[16:18])
    ip, tcp = frame[14 : 14 + ihl], bytearray(frame[14 + ihl : 14 + total])
    tcp[16:18] = b"\0\0"
    pseudo = ip[12:20] + struct.pack("!BBH", 0, 6, len(tcp))
    tcp[16:18] = struct.pack("!H", checksum(pseudo + bytes(tcp)))
    return frame[: 14 + ihl] + bytes(tcp) + frame[14 + total :]


def main() -> None:
    a, b, mean_ms, sd_ms = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    socks = []
    for name in (a, b):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.bind((name, 0))
        socks.append(s)
    other = {socks[0]: socks[1], socks[1]: socks[0]}
    queue, seq = [], 0
    while True:
        timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else None
        ready, _, _ = select.select(socks, [], [], timeout)
        for s in ready:
            frame, addr = s.recvfrom(65535)
            if addr[2] == PACKET_OUTGOING:  # our own sends, seen on the way out
                continue
            due = time.monotonic() + max(0.0, random.gauss(mean_ms, sd_ms)) / 1000
            heapq.heappush(queue, (due, seq, other[s], with_tcp_checksum(frame)))
            seq += 1
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, out, frame = heapq.heappop(queue)
            try:
                out.send(frame)
            except OSError:
                pass  # larger than the MTU: dropped, as a real link would


if __name__ == "__main__":
    main()
