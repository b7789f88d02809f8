"""Turns on one native context: who may run inside a llama.cpp context now, and who goes next.

A llama.cpp context is not thread-safe: two ``llama_decode`` calls at once on one context corrupt its KV
cache or its output buffer (seen: ``row 0 of the last batch has no logits``, ``llama_decode returned -1``, a
SIGABRT, a thread hung inside ``llama_decode``). Every :class:`~.decoder.GGUFDecoder` therefore owns a
:class:`Turns`, and every call that touches its context runs inside a turn. A caller that needs several calls
to stay together (a chunk's prefill, decode and retries, which keep state in the context between calls) takes
one turn around all of them; the decoder's own calls inside it re-enter the turn at no cost.

Scheduling: one turn at a time; waiting turns go by priority, then in the order they asked. Live steps
(:data:`LIVE`) go before offline work (:data:`OFFLINE`), and offline work takes one turn per chunk, so a live
step waits for at most the chunk in progress. A turn is re-entrant on its thread.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

#: A live stream's step (a partial, a final, its prefill): goes before any waiting offline work.
LIVE = 0
#: Offline work: a chunk of a transcription, a language detection, a batch, an alignment.
OFFLINE = 1


@dataclass
class TurnStats:
    """What the turns of one context cost their callers (for tests and benchmarks)."""

    #: Turns taken (re-entries not counted).
    turns: int = 0
    #: Turns that had to wait for another thread, and the longest such wait per priority (seconds).
    waited: int = 0
    longest_wait: dict[int, float] = field(default_factory=dict)
    #: The longest time a turn was held, per priority (seconds).
    longest_hold: dict[int, float] = field(default_factory=dict)


class Turns:
    """A re-entrant lock whose waiters are served by priority, then first come first served."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._owner: int | None = None
        self._depth = 0
        self._waiting: list[tuple[int, int]] = []  # heap of (priority, ticket)
        self._tickets = itertools.count()
        self.stats = TurnStats()
        self._since = 0.0
        self._priority = OFFLINE

    @property
    def held(self) -> bool:
        """Whether the calling thread holds the turn."""
        return self._owner == threading.get_ident()

    @contextmanager
    def turn(self, priority: int = OFFLINE) -> Iterator[None]:
        """Run the block alone on the context; wait for the turn first unless this thread holds it."""
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
            else:
                self._acquire(me, priority)
        try:
            yield
        finally:
            with self._cond:
                self._depth -= 1
                if self._depth == 0:
                    held = time.perf_counter() - self._since
                    hold = self.stats.longest_hold
                    hold[self._priority] = max(hold.get(self._priority, 0.0), held)
                    self._owner = None
                    self._cond.notify_all()

    def _acquire(self, me: int, priority: int) -> None:
        """Take the turn (the condition's lock is held)."""
        ticket = (priority, next(self._tickets))
        heapq.heappush(self._waiting, ticket)
        start = time.perf_counter()
        waited = False
        try:
            while self._owner is not None or self._waiting[0] != ticket:
                waited = True
                self._cond.wait()
        except BaseException:  # interrupted while waiting: leave the queue, let the next one in
            self._waiting.remove(ticket)
            heapq.heapify(self._waiting)
            self._cond.notify_all()
            raise
        heapq.heappop(self._waiting)
        self._owner, self._depth = me, 1
        self._since, self._priority = time.perf_counter(), priority
        self.stats.turns += 1
        if waited:
            self.stats.waited += 1
            longest = self.stats.longest_wait
            longest[priority] = max(longest.get(priority, 0.0), self._since - start)
