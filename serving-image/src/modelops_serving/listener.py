"""Closing a listening socket without resetting connections the kernel already completed.

Closing a listener resets every connection still in its accept queue, and those clients have usually
sent their request already: lost requests, not refused ones. So, first, a socket filter makes the
listener drop new SYNs (their clients retry, then are refused once it closes: nothing was sent); then
the server keeps accepting until the queue is empty; only then is it closed. Linux only, as the pods are.
"""
from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import socket
import struct
import time
from typing import Iterable, Protocol

log = logging.getLogger("modelops_serving")
SO_ATTACH_FILTER = 26
TCP_FLAGS_OFFSET = 13            # the TCP header is where a TCP socket's filter starts reading
SYN, ACK = 0x02, 0x10
# Classic BPF: load the flags byte; SYN without ACK (a new handshake) -> drop; anything else -> keep.
# Handshakes already under way complete (their ACK passes) and join the accept queue, which is drained.
DROP_NEW_HANDSHAKES = [
    (0x30, 0, 0, TCP_FLAGS_OFFSET),   # ldb [13]
    (0x54, 0, 0, SYN | ACK),          # and #0x12
    (0x15, 1, 0, SYN),                # jeq #0x02 -> drop
    (0x06, 0, 0, 0xFFFFFFFF),         # ret #-1 (keep the whole packet)
    (0x06, 0, 0, 0),                  # drop: ret #0
]
TCPI_UNACKED_OFFSET = 24         # struct tcp_info: 8 one-byte fields, then rto, ato, snd_mss, rcv_mss, unacked
SETTLE_S = 0.05                  # handshakes in flight when the filter went on: a few round trips


class Listener(Protocol):
    def fileno(self) -> int: ...


def stop_new_handshakes(sock: Listener) -> None:
    program = b"".join(struct.pack("HBBI", *insn) for insn in DROP_NEW_HANDSHAKES)
    buffer = ctypes.create_string_buffer(program)
    fprog = struct.pack("HL", len(DROP_NEW_HANDSHAKES), ctypes.addressof(buffer))
    with socket.socket(fileno=_dup(sock)) as dup:   # a filter belongs to the socket, not to this descriptor
        dup.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def accept_queue_length(sock: Listener) -> int:
    """Connections the kernel completed that nobody accepted yet (tcpi_unacked of a listening socket)."""
    with socket.socket(fileno=_dup(sock)) as dup:
        info = dup.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return struct.unpack_from("I", info, TCPI_UNACKED_OFFSET)[0]


def _dup(sock: Listener) -> int:
    return os.dup(sock.fileno())


async def quiesce(listeners: Iterable[Listener], timeout_s: float = 2.0) -> None:
    """Stop new handshakes on `listeners`, then wait (the event loop accepting) until their queues are empty."""
    listeners = list(listeners)
    for sock in listeners:
        try:
            stop_new_handshakes(sock)
        except OSError as e:   # not Linux, or not permitted: fall back to a plain close
            log.warning("could not stop new connections before closing the listener: %s", e)
            return
    await asyncio.sleep(SETTLE_S)
    deadline = time.monotonic() + timeout_s
    while any(accept_queue_length(s) for s in listeners) and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    # Accepted connections read their request in the next loop turns; a close now would reset them.
    await asyncio.sleep(SETTLE_S)
