"""Speech and silence from per-window speech scores, one window at a time: the one speech-start/speech-end
rule that every voice activity detector of the package uses (the live segmenter, and the Silero and energy
detectors behind faster-whisper's ``vad_filter``).

The rule is Silero's own (silero-vad's and faster-whisper's ``get_speech_timestamps``): speech starts at a
window scoring at least ``threshold``; a silence inside speech starts at the first window scoring below
``neg_threshold`` and lasts until a window scores at least ``threshold`` again (windows in between neither
end a silence nor start one); a silence of ``min_silence`` ends the speech where the silence began. What
each caller does with speech that goes on too long (split it at a pause it heard, at the quietest point,
...) is its own: it runs between :meth:`SpeechGate.onset` and :meth:`SpeechGate.offset`, and may
:meth:`~SpeechGate.stop` or :meth:`~SpeechGate.restart` the speech.

Knows no audio, no model and no sample rate: positions are in whatever unit the caller counts (samples,
frames), one window being ``window`` of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from qwen_whisper_compat.errors import UnsupportedOptionError

#: How far below ``threshold`` the default ``neg_threshold`` lies (Silero's and faster-whisper's rule).
NEG_THRESHOLD_GAP = 0.15
#: The lowest default ``neg_threshold`` (faster-whisper's), unless ``threshold`` itself is lower.
MIN_NEG_THRESHOLD = 0.01


def effective_neg_threshold(threshold: float, neg_threshold: float | None) -> float:
    """``neg_threshold``, or by default ``threshold - 0.15``, at least 0.01 and at most ``threshold``."""
    if neg_threshold is not None:
        return neg_threshold
    return min(threshold, max(threshold - NEG_THRESHOLD_GAP, MIN_NEG_THRESHOLD))


def check_thresholds(threshold: float, neg_threshold: float | None) -> None:
    """Check the two thresholds as the user set them; the message names the one that is out of range.

    Raises:
        UnsupportedOptionError: ``threshold`` is not within [0, 1], or ``neg_threshold`` (when set) is not
            within [0, ``threshold``].
    """
    if not 0.0 <= threshold <= 1.0:
        raise UnsupportedOptionError(f"threshold must be within [0, 1], got {threshold}")
    if neg_threshold is not None and not 0.0 <= neg_threshold <= threshold:
        raise UnsupportedOptionError(f"neg_threshold must be within [0, threshold={threshold}], got {neg_threshold}")


@dataclass(frozen=True)
class Onset:
    """Speech starts, or goes on after a silence that did not last ``min_silence``."""

    #: Where the speech (re)starts.
    position: int
    #: Where the silence that this speech ends began (``None``: speech starts, after no speech).
    pause_from: int | None


class SpeechGate:
    """Silero's speech-start/speech-end hysteresis over a stream of window scores (see the module docstring).

    Per window, call :meth:`onset` (for every window), then whatever the caller does with long speech,
    then :meth:`offset` (skip it for a window at which speech started, as Silero does).

    Args:
        threshold: Speech starts (or goes on after a silence) at a window scoring at least this.
        neg_threshold: A silence starts at a window scoring below this.
        window: Positions per window.
        min_silence: A silence ends the speech once it has lasted this long, counted from where it began to
            the end of the window being looked at (faster-whisper counts to the window's start: pass its
            ``min_silence`` plus one ``window``).
        onset_at_rise: Speech starts (or resumes) where the run of windows scoring at least
            ``neg_threshold`` that reaches ``threshold`` began, not at the window that reaches it (the energy
            detector: a soft onset belongs to the word).
    """

    def __init__(
        self, threshold: float, neg_threshold: float, window: int, min_silence: float, *, onset_at_rise: bool = False
    ) -> None:
        self.threshold, self.neg_threshold = threshold, neg_threshold
        self.window, self.min_silence, self.onset_at_rise = window, min_silence, onset_at_rise
        #: Speech is going on (a silence inside it may be too, see :attr:`silence_from`).
        self.in_speech = False
        #: Where the speech going on started.
        self.start = 0
        #: Where the silence going on inside speech began (``None`` while speech is heard, or outside speech).
        self.silence_from: int | None = None
        self._rise_from: int | None = None  # first window of the run scoring at least neg_threshold

    def onset(self, score: float, position: int) -> Onset | None:
        """Speech that starts at this window, or goes on after a silence, or ``None``."""
        if score < self.neg_threshold:
            self._rise_from = None
        elif self._rise_from is None:
            self._rise_from = position
        if score < self.threshold:
            return None
        at = self._rise_from if self.onset_at_rise and self._rise_from is not None else position
        if not self.in_speech:
            self.in_speech, self.start, self.silence_from = True, at, None
            return Onset(at, None)
        if self.silence_from is None:
            return None
        pause_from, self.silence_from = self.silence_from, None
        return Onset(at, pause_from)

    def offset(self, score: float, position: int) -> int | None:
        """Where the speech ended, when this window completes a silence of ``min_silence``; else ``None``."""
        if not self.in_speech or score >= self.neg_threshold:
            return None
        if self.silence_from is None:
            self.silence_from = position
        if position + self.window - self.silence_from < self.min_silence:
            return None
        end = self.silence_from
        self.stop()
        return end

    def heard_silence(self, position: int) -> int:
        """How long the silence going on inside speech has lasted at the end of the window at ``position``
        (0 when none is)."""
        if not self.in_speech or self.silence_from is None:
            return 0
        return position + self.window - self.silence_from

    def stop(self) -> None:
        """The speech ends here (the caller closed it); the next window scoring ``threshold`` starts speech."""
        self.in_speech, self.silence_from = False, None

    def restart(self, start: int, silence_from: int | None = None) -> None:
        """The speech goes on as new speech from ``start`` (the caller split it there), with the silence going
        on counted from ``silence_from`` (``None``: no silence is going on)."""
        self.in_speech, self.start, self.silence_from = True, start, silence_from
