"""An httpcore network backend on plain asyncio streams.

httpcore's default async backend goes through anyio, which wraps every read
and write in a cancel scope and looks up socket attributes through several
layers; at ``--concurrency 16`` that was about a quarter of bulksync's CPU per
request, and CPU per request is what bounds throughput (bench/RESULTS.md). This
backend implements httpcore's documented ``AsyncNetworkBackend`` interface with
``asyncio.open_connection`` and ``asyncio.timeout``; HTTP itself is still
httpcore's (h11), and errors are mapped to httpcore's exceptions the way its own
backends map them, so httpx raises what it always raises: a refused or timed-out
connection is a ``ConnectError``/``ConnectTimeout`` (nothing was sent), anything
after that is a read or write error.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
from httpcore._utils import is_socket_readable  # the same check httpcore's own backends use

__all__ = ["AsyncioBackend"]

SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError as e:
            raise httpcore.ReadTimeout("timed out reading the answer") from e
        except OSError as e:
            raise httpcore.ReadError(str(e) or type(e).__name__) from e

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            async with asyncio.timeout(timeout):
                self._writer.write(buffer)
                await self._writer.drain()
        except TimeoutError as e:
            raise httpcore.WriteTimeout("timed out sending the request") from e
        except OSError as e:
            raise httpcore.WriteError(str(e) or type(e).__name__) from e

    async def aclose(self) -> None:
        self._writer.close()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except TimeoutError as e:
            self._writer.close()
            raise httpcore.ConnectTimeout("timed out in the TLS handshake") from e
        except OSError as e:  # ssl.SSLError (a failed certificate check among them) is an OSError
            self._writer.close()
            raise httpcore.ConnectError(str(e) or type(e).__name__) from e
        return self

    def get_extra_info(self, info: str) -> Any:
        writer = self._writer
        if info == "is_readable":
            # An idle keep-alive connection that is readable was closed (or spoken to) by the server.
            return self._reader.at_eof() or is_socket_readable(writer.get_extra_info("socket"))
        if info == "ssl_object":
            return writer.get_extra_info("ssl_object")
        if info == "client_addr":
            return writer.get_extra_info("sockname")
        if info == "server_addr":
            return writer.get_extra_info("peername")
        if info == "socket":
            return writer.get_extra_info("socket")
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """TCP connections for httpcore through asyncio streams (TLS by ``StreamWriter.start_tls``)."""

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[SocketOption] | None = None) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, local_addr=(local_address, 0) if local_address else None,
                    happy_eyeballs_delay=0.25, limit=2 ** 16)
        except TimeoutError as e:
            raise httpcore.ConnectTimeout(f"timed out connecting to {host}:{port}") from e
        except OSError as e:
            raise httpcore.ConnectError(str(e) or type(e).__name__) from e
        sock = writer.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)  # asyncio already sets TCP_NODELAY
        return _Stream(reader, writer)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[SocketOption] | None = None,
                                  ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("bulksync talks to the API over TCP only")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
