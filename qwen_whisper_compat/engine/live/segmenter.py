"""Where a live stream's segments end: at pauses the voice activity detector hears, at a maximum length,
and around long silences. Works on speech probabilities per detector window; knows no model. Speech and
the pauses in it are the package's one rule (Silero's, :class:`~qwen_whisper_compat.engine.speech.SpeechGate`).

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
from qwen_whisper_compat.engine.speech import SpeechGate

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
        min_silence = int(options.min_silence_seconds * s)
        self.pad = int(options.pad_seconds * s)
        self.max_segment = int(options.max_segment_seconds * s)
        self.search = int(options.search_seconds * s)
        self.short_pause = min(int(SHORT_PAUSE_SECONDS * s), min_silence)
        self.forced_search = min(int(FORCED_CUT_SEARCH_SECONDS * s), self.search)
        self.max_silence = int(options.max_silence_seconds * s)
        self._gate = SpeechGate(options.threshold, options.effective_neg_threshold, window, min_silence)
        #: Start of the open segment, and whether it holds speech.
        self.start = 0
        self.has_speech = False
        self._windows = 0  # windows seen

    @property
    def quiet_since(self) -> int | None:
        """Where the silence that is going on inside speech began (``None`` while speech is heard)."""
        return self._gate.silence_from

    def push(self, probabilities: list[float]) -> list[Cut]:
        """Cuts decided by the next windows' probabilities, in order."""
        cuts: list[Cut] = []
        gate = self._gate
        for prob in probabilities:
            position = self._windows * self.window
            self._windows += 1
            end = position + self.window
            if not gate.in_speech:
                if gate.onset(prob, position) is not None:
                    if not self.has_speech:
                        lead = position - self.pad
                        if lead - self.start >= self.pad:  # a silence of its own before the speech
                            cuts.append(self._cut(lead, speech=False))
                        self.has_speech = True
                elif not self.has_speech and end - self.start >= self.max_silence:
                    cuts.append(self._cut(end - self.pad, speech=False))
                continue
            gate.onset(prob, position)
            ended = gate.offset(prob, position)
            at: int | None = None
            if ended is not None:
                at = min(ended + self.pad, end)
            elif (
                gate.silence_from is not None
                and prob < gate.neg_threshold
                and (paused := gate.heard_silence(position)) >= self.short_pause
                and end - self.start >= self.max_segment - self.search
            ):
                at = gate.silence_from + paused // 2  # near the maximum: in the middle of this short pause
                gate.stop()
            if at is not None:  # the segment ends in the pause; what follows starts as silence
                cuts.append(self._cut(at, speech=True))
                self.has_speech = False
                continue
            if end - self.start >= self.max_segment:
                cut = self.quietest(max(self.start + self.window, end - self.forced_search), end)
                cuts.append(self._cut(cut, speech=True))
                self.has_speech = True
                silence_from = gate.silence_from
                gate.restart(cut, None if silence_from is None else max(silence_from, cut))
        return cuts

    def _cut(self, position: int, speech: bool) -> Cut:
        cut = Cut(position, speech)
        self.start = position
        return cut
