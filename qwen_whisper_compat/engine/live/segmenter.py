"""Where a live stream's segments end: at pauses the voice activity detector hears, at a maximum length,
and around long silences. Works on speech probabilities per detector window; knows no model.

A segment nearing its maximum length (within its last ``search_seconds``) ends at the first short pause
(:data:`SHORT_PAUSE_SECONDS`, as Silero's own splitting of over-long speech), in the middle of it, as soon
as the pause is heard; only speech without such a pause is cut at the maximum, at the quietest point of its
last :data:`FORCED_CUT_SEARCH_SECONDS` (a cut further back would hold the final back by as much). So a long
segment's final is not held back until the maximum.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from qwen_whisper_compat.engine.live.types import LiveOptions

#: A pause this long ends a segment that is within ``search_seconds`` of its maximum length.
SHORT_PAUSE_SECONDS = 0.1
#: A segment that reaches its maximum without such a pause is cut at the quietest point of this last stretch.
FORCED_CUT_SEARCH_SECONDS = 1.0


@dataclass(frozen=True)
class Cut:
    """The open segment ends at sample ``position`` (of the stream); ``speech``: it holds detected speech."""

    position: int
    speech: bool


class Segmenter:
    """Turns speech probabilities into cuts.

    Args:
        options: Thresholds and durations.
        window: Samples per probability.
        sample_rate: Samples per second.
        quietest: ``(left, right) -> position`` of the quietest point of the stream in ``[left, right)``,
            where a segment at its maximum length is cut.
    """

    def __init__(
        self, options: LiveOptions, window: int, sample_rate: int, quietest: Callable[[int, int], int]
    ) -> None:
        self.window, self.quietest = window, quietest
        s = sample_rate
        self.threshold, self.neg_threshold = options.threshold, options.effective_neg_threshold
        self.min_silence = int(options.min_silence_seconds * s)
        self.pad = int(options.pad_seconds * s)
        self.max_segment = int(options.max_segment_seconds * s)
        self.search = int(options.search_seconds * s)
        self.short_pause = min(int(SHORT_PAUSE_SECONDS * s), self.min_silence)
        self.forced_search = min(int(FORCED_CUT_SEARCH_SECONDS * s), self.search)
        self.max_silence = int(options.max_silence_seconds * s)
        #: Start of the open segment, and whether it holds speech.
        self.start = 0
        self.has_speech = False
        self._in_speech = False
        self._silence_from: int | None = None
        self._windows = 0  # windows seen

    @property
    def quiet_since(self) -> int | None:
        """Where the silence that is going on inside speech began (``None`` while speech is heard)."""
        return self._silence_from if self._in_speech else None

    def push(self, probabilities: list[float]) -> list[Cut]:
        """Cuts decided by the next windows' probabilities, in order."""
        cuts: list[Cut] = []
        for prob in probabilities:
            position = self._windows * self.window
            self._windows += 1
            end = position + self.window
            if not self._in_speech:
                if prob >= self.threshold:
                    self._in_speech, self._silence_from = True, None
                    if not self.has_speech:
                        lead = position - self.pad
                        if lead - self.start >= self.pad:  # a silence of its own before the speech
                            cuts.append(self._cut(lead, speech=False))
                        self.has_speech = True
                elif not self.has_speech and end - self.start >= self.max_silence:
                    cuts.append(self._cut(end - self.pad, speech=False))
                continue
            if prob < self.neg_threshold:
                if self._silence_from is None:
                    self._silence_from = position
                paused = end - self._silence_from
                at: int | None = None
                if paused >= self.min_silence:
                    at = min(self._silence_from + self.pad, end)
                elif paused >= self.short_pause and end - self.start >= self.max_segment - self.search:
                    at = self._silence_from + paused // 2  # near the maximum: in the middle of this short pause
                if at is not None:  # the segment ends in the pause; what follows starts as silence
                    cuts.append(self._cut(at, speech=True))
                    self.has_speech = self._in_speech = False
                    self._silence_from = None
                    continue
            else:
                self._silence_from = None
            if end - self.start >= self.max_segment:
                cut = self.quietest(max(self.start + self.window, end - self.forced_search), end)
                cuts.append(self._cut(cut, speech=True))
                self.has_speech = True
                if self._silence_from is not None:
                    self._silence_from = max(self._silence_from, cut)
        return cuts

    def _cut(self, position: int, speech: bool) -> Cut:
        cut = Cut(position, speech)
        self.start = position
        return cut
