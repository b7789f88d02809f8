"""The server's one model: loading, loaded, or replaced while serving (whisper.cpp's ``POST /load``).

This module owns which model the server serves and when an old one may be closed. Every user of the model
holds a lease while it uses it (an HTTP job for its run on the model thread, a Realtime connection for its
whole life); :meth:`ServedModel.replace` swaps in a new model, and the old one is closed when its last
lease ends, never under a running job. It knows nothing of HTTP.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator

from qwen_whisper_compat import Whisper
from qwen_whisper_compat.serving import BackgroundModel, LoadState

logger = logging.getLogger("qwen_whisper_server.served")


class ServedModel:
    """The model a server serves now, and the leases on it (thread-safe).

    Args:
        loading: The first model, loaded or still loading.
        name: The id it is served as (``GET /v1/models``).
    """

    def __init__(self, loading: BackgroundModel[Whisper], name: str) -> None:
        self._current = loading
        self._name = name
        self._lock = threading.Lock()
        self._leases: dict[int, int] = {}
        #: Replaced models still leased, closed when their last lease ends (by ``id``).
        self._retired: dict[int, Whisper] = {}
        self.replacements = 0

    @property
    def name(self) -> str:
        """The id the current model is served as."""
        return self._name

    @property
    def state(self) -> LoadState:
        """``"loading"``, ``"ready"`` or ``"failed"``: the current model's."""
        return self._current.state

    @property
    def model(self) -> Whisper:
        """The current model (without a lease: for checks, not for running it).

        Raises:
            ModelLoading: It is still loading, or failed to load.
        """
        return self._current.model

    @contextlib.contextmanager
    def lease(self) -> Iterator[Whisper]:
        """The current model, held for the block: a replacement closes it only after the block ends.

        Raises:
            ModelLoading: It is still loading, or failed to load.
        """
        with self._lock:
            model = self._current.model
            key = id(model)
            self._leases[key] = self._leases.get(key, 0) + 1
        try:
            yield model
        finally:
            with self._lock:
                self._leases[key] -= 1
                last = self._leases[key] == 0
                if last:
                    del self._leases[key]
                retired = self._retired.pop(key) if last and key in self._retired else None
            if retired is not None:
                logger.info("closing the replaced model %s: its last user has finished", retired.name)
                retired.close()

    def replace(self, load: Callable[[], Whisper], name: str) -> Whisper:
        """Load a model with ``load`` (on the caller's thread: the server's model thread, so that no offline
        job runs meanwhile) and serve it from now on; the old one is closed once nobody leases it. When the
        load fails, the old model stays and the error propagates.
        """
        model = load()
        with self._lock:
            old = self._current
            self._current = BackgroundModel.loaded(model, name)
            self._name = name
            self.replacements += 1
            close_now: Whisper | None = None
            unfinished: BackgroundModel[Whisper] | None = None
            if old.state != "ready":
                unfinished = old  # still loading (closed when its load ends) or failed
            else:
                previous = old.model
                if self._leases.get(id(previous), 0) == 0:
                    close_now = previous
                else:
                    self._retired[id(previous)] = previous
        if close_now is not None:
            close_now.close()
        if unfinished is not None:
            unfinished.close()
        logger.info("now serving %s", name)
        return model

    def close(self) -> None:
        """Close the current model (now if loaded, else when its load ends) and any replaced one."""
        with self._lock:
            retired, self._retired = list(self._retired.values()), {}
            current = self._current
        current.close()
        for model in retired:
            model.close()


__all__ = ["ServedModel"]
