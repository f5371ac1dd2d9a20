"""The build's workaround for lost wake-ups (book/_ext/kernel_wakeups.py): nbclient's wait for a
kernel message polls in one-second slices, so a missed edge costs a second, not the cell timeout."""

import asyncio
import sys
import time
from pathlib import Path
from queue import Empty

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "book" / "_ext"))
import kernel_wakeups  # noqa: E402


class MissedWakeups:
    """A socket whose message is there from the start but whose first ``missed`` polls time out
    without seeing it (what a missed edge does to pyzmq's asyncio poll)."""

    def __init__(self, missed, has_message=True):
        self.missed, self.has_message, self.polls = missed, has_message, []

    async def poll(self, timeout_ms):
        self.polls.append(timeout_ms)
        if len(self.polls) <= self.missed or not self.has_message:
            await asyncio.sleep(
                timeout_ms / 1000 / 100
            )  # the slice "passes" (scaled down)
            return 0
        return 1


class Channel:
    def __init__(self, socket):
        self.socket = socket

    async def _recv(self):
        return {"msg": "execute_reply"}


def test_a_missed_wakeup_costs_one_slice_not_the_whole_timeout():
    socket = MissedWakeups(missed=2)
    msg = asyncio.run(kernel_wakeups.get_msg(Channel(socket), timeout=300))
    assert msg == {"msg": "execute_reply"}
    assert socket.polls == [
        1000,
        1000,
        1000,
    ]  # one-second slices, never the 300 s at once


def test_no_message_still_raises_empty_at_the_callers_timeout():
    socket = MissedWakeups(missed=0, has_message=False)
    started = time.monotonic()
    with pytest.raises(Empty):
        asyncio.run(kernel_wakeups.get_msg(Channel(socket), timeout=0.25))
    assert time.monotonic() - started < 1.0
    assert len(socket.polls) == 1 and socket.polls[0] <= 250
    with pytest.raises(Empty):  # timeout 0: one immediate look
        asyncio.run(kernel_wakeups.get_msg(Channel(MissedWakeups(0, False)), timeout=0))


def test_without_a_timeout_it_waits_slice_after_slice():
    socket = MissedWakeups(missed=5)
    assert asyncio.run(kernel_wakeups.get_msg(Channel(socket), timeout=None))
    assert socket.polls == [1000] * 6


def test_install_replaces_jupyter_clients_asyncio_get_msg():
    from jupyter_client.channels import AsyncZMQSocketChannel

    kernel_wakeups.install()
    assert AsyncZMQSocketChannel.get_msg is kernel_wakeups.get_msg
