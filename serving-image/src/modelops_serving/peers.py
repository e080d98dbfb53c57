"""Feedback by id across replicas: the prediction id names the replica that answered.

Behind a Service, feedback for an id lands on any replica, and only the one that answered
remembers the prediction. So an id carries the answering replica's pod address, signed with a key
the replicas share (`id_key`): a replica that does not know the id forwards the feedback to that
address (same port, one hop, bounded wait). The signature keeps a client from steering the
forwarded request at an address of its choosing.

    <process prefix>-<counter>                          no address (pod_ip unset)
    <process prefix>-<counter>@<pod ip>~<signature>     forwardable
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import os
from typing import Awaitable

FORWARDED_HEADER = b"x-modelops-forwarded"
SIGNATURE_HEX = 16          # 64 bits: guessing one by trying costs a request per guess


class PredictionIds:
    """Unique ids without uuid's cost: a random per-process prefix and a counter, plus the address."""

    def __init__(self, pod_ip: str = "", key: str = ""):
        self._prefix = os.urandom(6).hex()
        self._next = 0
        self._key = key.encode()
        self.address = _parse_ip(pod_ip) if pod_ip else None
        if pod_ip and self.address is None:
            raise ValueError(f"pod_ip: {pod_ip!r} is not an IP address")
        self._suffix = f"@{self.address}~" if self.address else ""

    def next(self) -> str:
        self._next += 1
        local = f"{self._prefix}-{self._next}"
        if not self._suffix:
            return local
        signed = local + self._suffix
        return signed + self._sign(signed)

    def _sign(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()[:SIGNATURE_HEX]

    def owner(self, prediction_id: str) -> str | None:
        """The address of the replica that answered, when the id names one with a valid signature."""
        named, sep, signature = prediction_id.rpartition("~")
        if not sep or "@" not in named:
            return None
        if not hmac.compare_digest(self._sign(named + "~").encode(), signature.encode()):
            return None
        address = _parse_ip(named.rpartition("@")[2])
        return str(address) if address else None


def _parse_ip(text: str):
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


async def forward(address: str, port: int, path: str, body: bytes, timeout_s: float) -> tuple[int, bytes] | None:
    """POST `body` to http://address:port/path as one HTTP/1.1 exchange; (status, body), or None when
    the peer cannot be reached or answers nothing parsable within `timeout_s`."""
    host = f"[{address}]" if ":" in address else address
    return await exchange(asyncio.open_connection(address, port), "POST", path, body,
                          host=f"{host}:{port}", mark=FORWARDED_HEADER, timeout_s=timeout_s)


async def exchange(connecting: Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]], method: str, path: str,
                   body: bytes, *, host: str, mark: bytes, timeout_s: float) -> tuple[int, bytes] | None:
    """One HTTP/1.1 request, marked with the header `mark` (so the receiver knows who asks) and `connection:
    close`, on the connection `connecting` opens: (status, body), or None when it cannot be reached or answers
    nothing parsable within `timeout_s`."""
    request = (f"{method} {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
               f"content-length: {len(body)}\r\n{mark.decode()}: 1\r\nconnection: close\r\n\r\n").encode()
    try:
        return await asyncio.wait_for(_exchange(connecting, request + body), timeout_s)
    except (OSError, asyncio.TimeoutError, ValueError, asyncio.IncompleteReadError):
        return None


async def _exchange(connecting, request: bytes) -> tuple[int, bytes]:
    reader, writer = await connecting
    try:
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
        length = {k.strip().lower(): v.strip() for k, v in headers.items()}.get("content-length")
        body = await (reader.readexactly(int(length)) if length is not None else reader.read())
        return status, body
    finally:
        writer.close()
