"""A cap on simultaneous CLI processes, with a bounded, cancellable wait queue.

A request first takes a slot; with all slots busy it waits in a queue of bounded length for at
most `wait_timeout`; with the queue full too, or after that wait, it gets a 429 with
Retry-After. A waiting request whose client leaves is dropped without ever starting a process.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from proxy.errors import ProxyError

POLL = 0.1


class SlotCancelled(Exception):
    """The request was cancelled (its client left) while waiting for a slot."""


class ConcurrencyLimiter:
    def __init__(self, max_active: int, max_waiting: int, wait_timeout: float) -> None:
        if max_active < 1:
            raise ValueError("max_active must be at least 1")
        self.max_active = max_active
        self.max_waiting = max(0, max_waiting)
        self.wait_timeout = wait_timeout
        self.active = 0
        self.waiting = 0
        self.rejected = 0
        self._cond = threading.Condition()

    def acquire(self, is_cancelled: Callable[[], bool] = lambda: False) -> Callable[[], None]:
        """Blocks until a slot is free; returns the function that releases it (call once)."""
        with self._cond:
            if self.active < self.max_active and self.waiting == 0:
                self.active += 1
                return self._releaser()
            if self.waiting >= self.max_waiting:
                self.rejected += 1
                raise self._busy("all CLI slots are busy and the wait queue is full")
            self.waiting += 1
            deadline = time.monotonic() + self.wait_timeout
            try:
                while self.active >= self.max_active:
                    if is_cancelled():
                        raise SlotCancelled()
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        self.rejected += 1
                        raise self._busy(f"no CLI slot became free within "
                                         f"{self.wait_timeout:g} s")
                    self._cond.wait(min(POLL, remaining))
                self.active += 1
                return self._releaser()
            except BaseException:
                # This waiter may have consumed a release's notify(); pass it on so the slot
                # goes to another waiter now, not at its next poll.
                self._cond.notify()
                raise
            finally:
                self.waiting -= 1

    def _releaser(self) -> Callable[[], None]:
        released = False

        def release() -> None:
            nonlocal released
            with self._cond:
                if released:
                    return
                released = True
                self.active -= 1
                self._cond.notify()

        return release

    def _busy(self, why: str) -> ProxyError:
        return ProxyError(429, f"The proxy is at capacity ({why}); retry shortly.",
                          type="rate_limit_error", code="rate_limit_exceeded",
                          retry_after=max(1.0, min(self.wait_timeout, 5.0)))

    def stats(self) -> dict[str, int]:
        with self._cond:
            return {"active": self.active, "waiting": self.waiting, "max_active": self.max_active,
                    "max_waiting": self.max_waiting, "rejected": self.rejected}
