"""A workaround for lost wake-ups between nbclient and the kernel: poll in one-second slices.

Measured on this project's CPU machines: about one notebook execution in three inside the book's
build (myst-nb and jupyter-cache run nbclient in-process) sat idle for most of the 300 s cell
timeout, then went on without an error. While it waited, ``py-spy`` showed the kernel idle in its
event loop, its reply already sent, and the client inside nbclient's wait for that reply:
``await socket.poll(timeout)`` on a ``zmq.asyncio`` socket. The same wait ended a standalone
``jupyter nbconvert --execute`` of the grokking chapter on 2026-12-06 (kernel idle from its
widget cell onwards). pyzmq's asyncio poll learns of a message from the socket's edge-triggered
file descriptor; when that edge is missed, the poll wakes only at its timeout, and then finds the
message waiting (it runs a real ``zmq_poll`` on the way out), so the cell "succeeds" late.

:func:`install` replaces ``get_msg`` of jupyter_client's asyncio channels with one that polls in
slices of at most :data:`SLICE_S` seconds until the caller's timeout, so a missed edge costs at
most one slice. Messages, their order and the timeouts callers see are unchanged. The build
installs it (``lensbox_book.setup``), and so does the test session (``conftest.py``) for the
chapters it executes through nbclient. No library does this: it stays until jupyter_client or
pyzmq stops missing the edge.
"""

from __future__ import annotations

import time
from queue import Empty
from typing import Any

#: The longest a missed wake-up can delay a message, in seconds.
SLICE_S = 1.0


async def get_msg(self, timeout: float | None = None) -> dict[str, Any]:
    """Jupyter_client's ``get_msg``, polling in slices: the next message, or :class:`queue.Empty`
    once ``timeout`` seconds (``None``: no limit) pass without one."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        step = SLICE_S if left is None else min(SLICE_S, left)
        if await self.socket.poll(int(step * 1000)):
            return await self._recv()
        if left is not None and left <= SLICE_S:
            raise Empty


def install() -> None:
    """Use :func:`get_msg` in jupyter_client's asyncio channels (idempotent)."""
    from jupyter_client.channels import AsyncZMQSocketChannel

    AsyncZMQSocketChannel.get_msg = get_msg
