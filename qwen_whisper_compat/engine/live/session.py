"""A live session: audio that is still arriving, cut into segments at pauses and decoded as it comes.

:meth:`LiveSession.feed` takes samples of any length and returns the events they cause; :meth:`finish`
closes the stream. Work happens inside those calls, on the caller's thread, so a caller that falls behind
(its audio queue grows while a step runs) simply feeds more at once: every segment closed by that audio
gets its final, and the open segment gets at most one partial for all of it. Partials are skipped under
load; finals never are. A partial is due at each whole ``step_seconds`` of the segment, unless partials
would then take more than ``partial_load`` of real time (the next one waits for the audio that keeps them
within it), and not while a pause is going on (the segment may be closing: its final comes first).

Cost per step does not grow with the stream or with a backlog: audio fed at once is taken in slices of
:data:`FEED_SLICE_SECONDS`, so the open segment (at most ``max_segment_seconds``, or ``max_silence_seconds``
of silence) is all the session ever holds, and each log-mel frame is computed once. A partial runs the
encoder in its streaming mode (attention windows of ``partial_window_seconds``, 2 s by default; AuT is
trained with windows of 1 to 8 s): each completed short window is encoded once, and the decoder's KV cache
keeps the prompt up to the last completed one, so a step encodes and prefills only the open short window,
the prompt's suffix and the text. A partial forces the previous partial's text except its last
``rollback_tokens`` tokens, which it checks again in the same batch.

A final uses the offline 8 s windows (encoded once each while the segment goes on, see :mod:`.features`,
and prefilled as they complete in a KV sequence of its own, so that the final evaluates only the rows after
the last completed window) and is decoded by the offline pipeline's own span decoder (:mod:`..spans`: same
prompt, context carried from the previous finals, same fallback of temperatures), with the last partial as a
draft that the decode only verifies where it is right. So a final equals what the offline pipeline gives for
that span. With ``partial_window_seconds=8`` partials use the offline windows too, and the final reuses their
KV cache up to the last completed window.

The session leases its KV sequences from the model's decoder (released by :meth:`LiveSession.close`), so
other callers of the model (offline transcriptions, other streams) never touch them; every step takes a
live turn on the decoder (see :mod:`..turns`), ahead of waiting offline work.
"""

from __future__ import annotations

import dataclasses
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from qwen_whisper_compat.engine.chunking import quiet_point
from qwen_whisper_compat.engine.decoder import Part
from qwen_whisper_compat.engine.encoder import WINDOW_FRAMES
from qwen_whisper_compat.engine.fallback import LoopGuard
from qwen_whisper_compat.engine.live.features import SegmentFeatures
from qwen_whisper_compat.engine.live.segmenter import Segmenter
from qwen_whisper_compat.engine.live.types import Final, LiveEvent, LiveOptions, Partial
from qwen_whisper_compat.engine.mel import HOP_LENGTH, SAMPLE_RATE
from qwen_whisper_compat.engine.pipeline import Transcriber, chunk_context
from qwen_whisper_compat.engine.prompt import parse_output
from qwen_whisper_compat.engine.spans import SpanCache, SpanGeneration
from qwen_whisper_compat.engine.turns import LIVE
from qwen_whisper_compat.engine.types import ChunkResult, EncodedChunk, PipelineStats, TranscribeOptions
from qwen_whisper_compat.errors import AudioLoadError

#: The shortest open segment a partial is decoded for.
_MIN_PARTIAL_SAMPLES = SAMPLE_RATE // 4
#: Audio fed at once is taken in slices this long (the most a backlog adds to what the session holds).
FEED_SLICE_SECONDS = 1.0


class SpeechDetector(Protocol):
    """A stateful voice activity detector over one stream (the package's ``SileroVad.stream()``)."""

    #: Samples per probability.
    window: int

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """Speech probabilities of the windows completed by ``samples``."""


@dataclass
class LiveStats:
    """Counts and times of a session (seconds of wall time spent in each kind of step)."""

    partials: int = 0
    partial_seconds: float = 0.0
    finals: int = 0
    final_seconds: float = 0.0
    silent: int = 0
    #: Rows evaluated by the decoder in prompt batches, and rows kept in its cache instead.
    prompt_rows: int = 0
    kept_rows: int = 0
    #: Of those, the rows finals found in the cache (the prompt's prefix and completed 8 s windows).
    final_kept_rows: int = 0
    #: Draft tokens accepted without a decoding step of their own.
    accepted_tokens: int = 0
    generated_tokens: int = 0
    #: Log-mel frames computed (each once, but for the few at the open end of a span, computed per step).
    mel_frames: int = 0


class LiveSession:
    """Live transcription of one stream over a loaded :class:`Transcriber`.

    Several sessions, and offline transcriptions, may use one transcriber at once, from any threads: each
    session decodes in KV sequences of its own, and every step takes its turn on the decoder. One session's
    own calls must come one at a time (the faces serialise them).

    Args:
        transcriber: The loaded model.
        detector: A fresh voice activity detector for this stream.
        options: Decoding options, as for the offline pipeline (``chunk_seconds`` is not used: segments end
            at pauses or at ``live.max_segment_seconds``).
        live: How the stream is cut and how often partials are decoded.
        clock: Seconds of a monotonic clock (what a partial costs decides when the next one is due).
    """

    def __init__(
        self,
        transcriber: Transcriber,
        detector: SpeechDetector,
        options: TranscribeOptions | None = None,
        live: LiveOptions | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        options = transcriber.resolve_options(options)
        self.options, self.live = options, live or LiveOptions()
        self._t = transcriber
        self._detector = detector
        self._clock = clock
        manifest = transcriber.model_dir.manifest
        self._window_rows = manifest.encoder.window_tokens
        self._piece_frames = int(self.live.partial_window_seconds * 100)
        self._piece_rows = manifest.encoder.output_length(self._piece_frames)
        longest = self.live.max_segment_seconds + 1.0
        self._features = SegmentFeatures(
            transcriber.encoder, manifest.encoder.n_mels, self._window_rows, int(longest * SAMPLE_RATE)
        )
        self._segmenter = Segmenter(self.live, detector.window, SAMPLE_RATE, self._quietest)
        self._eos = transcriber.spans.eos(options)
        transcriber.fit_context(options, longest)
        # the final's KV sequence: its own, unless the partials use the final's windows (then they share one)
        decoder = transcriber.decoder
        self._seqs = decoder.lease(2 if self._piece_frames < WINDOW_FRAMES else 1)
        self._release = weakref.finalize(self, decoder.release, self._seqs)
        self.stats = LiveStats()
        #: Where the finals' time went, as the offline pipeline counts it.
        self.pipeline_stats = PipelineStats()
        self._start = 0  # first sample of the open segment, in the stream
        self._fed = 0
        self._index = 0  # segments closed
        self._spoken = 0  # speech segments decoded (the offline pipeline's chunk index, for the context)
        self._previous = ""
        self._draft: list[int] = []
        self._step = max(1, int(self.live.step_seconds * SAMPLE_RATE))
        self._next_partial = self._step  # samples of the open segment the next partial waits for
        self._prefilled: tuple[Part, ...] = ()  # the windows prefilled for the final
        self._finished = False

    # ------------------------------------------------------------------------------------- public
    @property
    def position(self) -> float:
        """Seconds of audio fed so far."""
        return self._fed / SAMPLE_RATE

    @property
    def open_speech(self) -> tuple[int, float] | None:
        """The open segment's index and start (seconds of the stream) once speech was heard in it, else
        ``None``: the moment a host's "speech started" is due (the start includes ``pad_seconds``)."""
        if self._finished or not self._segmenter.has_speech:
            return None
        return self._index, self._start / SAMPLE_RATE

    @property
    def held_samples(self) -> int:
        """Samples the session's audio buffer can hold now (its memory; bounded by one segment plus a slice)."""
        return self._features.buffer_samples

    def feed(self, samples: np.ndarray) -> list[LiveEvent]:
        """Add 16 kHz mono float32 samples (any length); return the events they cause, in order.

        Raises:
            AudioLoadError: Samples that are not finite float values of one channel, or a finished session.
        """
        if self._finished:
            raise AudioLoadError("this live session is finished: start a new stream for more audio")
        x = _checked(samples)
        if x.size == 0:
            return []
        events: list[LiveEvent] = []
        size = int(FEED_SLICE_SECONDS * SAMPLE_RATE)
        for i in range(0, x.size, size):
            piece = np.ascontiguousarray(x[i : i + size], dtype=np.float32)
            self._features.append(piece)
            self._fed += piece.size
            cuts = self._segmenter.push(self._detector.feed(piece).tolist())
            events += [self._close(c.position, c.speech) for c in cuts]
        try:
            return events + self._step_after_feed()
        finally:
            self.stats.mel_frames = self._features.frames_computed

    def _step_after_feed(self) -> list[LiveEvent]:
        """The open segment's partial, when one is due; else the final's windows prefilled."""
        if (
            self.live.partials
            and self._segmenter.has_speech
            and self._features.n >= max(self._next_partial, _MIN_PARTIAL_SAMPLES)
            and self._segmenter.quiet_since is None
        ):  # (in a pause the segment may be about to close: its final comes first)
            return [self._partial()]
        if self._segmenter.has_speech and self._seqs[-1] != self._seqs[0]:
            # the final's 8 s windows and their prefill, while the segment goes on, in a call that has no
            # partial to deliver (so that no partial waits for them)
            self._prefill_windows()
        return []

    def finish(self) -> list[LiveEvent]:
        """End the stream: the open segment's final (nothing when no audio was fed). Idempotent; the
        session's KV sequences are released."""
        if self._finished:
            return []
        self._finished = True
        try:
            if self._features.n == 0:
                return []
            return [self._close(self._start + self._features.n, self._segmenter.has_speech)]
        finally:
            self.close()

    def close(self) -> None:
        """Give the session's KV sequences back to the model (idempotent); a closed session decodes nothing more."""
        self._finished = True
        self._release()

    # ----------------------------------------------------------------------------------- segments
    def _close(self, position: int, speech: bool) -> Final:
        n = position - self._start
        if speech and n >= HOP_LENGTH:
            final = Final(self._final(n), speech=True)
            self.stats.finals += 1
        else:
            final = Final(_silent(self._index, self._start, position), speech=False)
            self.stats.silent += 1
        self.stats.mel_frames = self._features.frames_computed
        self._features.reset(n)
        self._start = position
        self._index += 1
        self._draft = []
        self._next_partial = self._step
        self._prefilled = ()
        return final

    def _quietest(self, left: int, right: int) -> int:
        return self._start + quiet_point(self._features.audio, left - self._start, right - self._start, SAMPLE_RATE // 10)

    def _context(self) -> str:
        return chunk_context(self.options, self._spoken, self._previous)

    def _windows(self, stable: int) -> tuple[Part, ...]:
        """The completed 8 s windows among the first ``stable`` rows, as KV cache parts."""
        versions = self._features.window_versions()[: stable // self._window_rows]
        return tuple(Part(("window", v), self._window_rows) for v in versions)

    def _count(self, run: SpanGeneration) -> None:
        self.stats.prompt_rows += run.prompt_rows
        self.stats.kept_rows += run.kept_rows
        self.stats.generated_tokens += run.steps
        self.stats.accepted_tokens += max(0, len(run.generation.tokens) - run.steps)

    def _prefill_windows(self) -> None:
        """Encode the 8 s windows completed so far and evaluate the final's prompt up to their end in the
        final's KV sequence (each window once), so that the final later evaluates only what follows them."""
        self._features.complete_windows()
        windows = self._features.window_embeddings()
        parts = self._windows(len(windows) * self._window_rows)
        if not parts or parts == self._prefilled:
            return
        cache = SpanCache(self._seqs[-1], parts)
        self.stats.prompt_rows += self._t.spans.prefill(np.concatenate(windows), self._context(), cache, LIVE)
        self._prefilled = parts

    def _partial(self) -> Partial:
        t = self._clock()
        n = self._features.n
        if self._piece_frames < WINDOW_FRAMES:
            embeds, versions = self._features.partial_embeddings(self._piece_frames)
            windows = tuple(Part(("piece", v), self._piece_rows) for v in versions)
        else:
            embeds, stable = self._features.embeddings(n)
            windows = self._windows(stable)
        forced = max(0, len(self._draft) - self.live.rollback_tokens)
        cap = self.options.token_cap(n / SAMPLE_RATE)
        forced = min(forced, cap)
        guard = LoopGuard(self.options.loop_window, self.options.loop_distinct)
        run = self._t.spans.generate(
            embeds, self._context(), self.options.language, SpanCache(self._seqs[0], windows), cap=cap - forced,
            eos=self._eos, stop=guard, draft=self._draft, forced=forced, priority=LIVE,
        )  # fmt: skip
        self._count(run)
        tokens = self._draft[:forced] + run.generation.tokens
        self._draft = tokens
        parsed = parse_output(self._t.spans.text(tokens), self.options.language)
        first = 0
        if self.options.language is None and self._t.tokens.asr_text in tokens:
            first = tokens.index(self._t.tokens.asr_text) + 1
        cost = self._clock() - t
        self.stats.partials += 1
        self.stats.partial_seconds += cost
        wait = max(self._step, int(cost / self.live.partial_load * SAMPLE_RATE))
        self._next_partial = max(round((n + wait) / self._step), n // self._step + 1) * self._step
        return Partial(
            index=self._index,
            start=self._start / SAMPLE_RATE,
            end=(self._start + n) / SAMPLE_RATE,
            text="" if parsed.no_speech else parsed.text,
            tokens=tuple(tokens[first:]),
            language=parsed.language,
        )

    def _final(self, n: int) -> ChunkResult:
        t = self._clock()
        embeds, stable = self._features.embeddings(n)
        enc = EncodedChunk(self._spoken, self._start, self._start + n, embeds, self._clock() - t)
        windows = self._windows(stable)
        cache = SpanCache(self._seqs[-1], windows)
        self.pipeline_stats.encode_seconds += enc.seconds

        def counted(attempt: int, run: SpanGeneration) -> None:
            self._count(run)
            if attempt == 0:
                self.stats.final_kept_rows += run.kept_rows

        result = self._t.spans.decode(enc, self.options, self._context(), self.pipeline_stats, cache=cache,
                                      draft=self._draft, priority=LIVE, on_run=counted)  # fmt: skip
        result = dataclasses.replace(result, index=self._index)
        if self.options.word_timestamps:
            audio = self._features.audio[:n].copy()
            result = self._t.align(result, audio, self._start, self.options, self.pipeline_stats, priority=LIVE)
        self._previous = result.text
        self._spoken += 1
        self.stats.final_seconds += self._clock() - t
        return result


def _checked(samples: np.ndarray) -> np.ndarray:
    """The samples, checked to be finite floats of one channel (not copied: the session converts slices)."""
    x = np.asarray(samples)
    if x.dtype.kind in "iu":
        raise AudioLoadError(
            f"live audio must be float samples in [-1, 1], got {x.dtype}: divide 16-bit PCM by 32768 "
            "(np.frombuffer(data, np.int16).astype(np.float32) / 32768)"
        )
    if x.dtype.kind != "f":
        raise AudioLoadError(f"live audio must be float samples in [-1, 1], got an array of {x.dtype}")
    if x.ndim != 1:
        raise AudioLoadError(f"live audio must be 1-D mono 16 kHz samples, got shape {x.shape}: mix the channels down")
    step = int(FEED_SLICE_SECONDS * SAMPLE_RATE)
    if not all(np.isfinite(x[i : i + step]).all() for i in range(0, x.size, step)):
        raise AudioLoadError("the live audio holds NaN or infinite samples: check the source (a broken decoder?)")
    return x


def _silent(index: int, start: int, end: int) -> ChunkResult:
    """The final of a span without speech."""
    return ChunkResult(
        index=index, start=start / SAMPLE_RATE, end=end / SAMPLE_RATE, text="", tokens=(), language="",
        avg_logprob=0.0, compression_ratio=0.0, no_speech_prob=1.0, temperature=0.0, truncated=False,
        repetitive=False, words=None, audio_start=start / SAMPLE_RATE, audio_end=end / SAMPLE_RATE,
    )  # fmt: skip
