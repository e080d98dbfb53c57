"""Errors that become HTTP responses: a status and a message naming the problem."""
from __future__ import annotations


class HttpError(Exception):
    def __init__(self, status: int, message: str, headers: tuple[tuple[bytes, bytes], ...] = ()):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def bad_request(message: str) -> HttpError:
    return HttpError(400, message)
