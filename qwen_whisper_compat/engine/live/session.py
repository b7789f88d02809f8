"""A live session: audio that is still arriving, cut into segments at pauses and decoded as it comes.

:meth:`LiveSession.feed` takes samples of any length and returns the events they cause; :meth:`finish`
closes the stream. Work happens inside those calls, on the caller's thread, so a caller that falls behind
(its audio queue grows while a step runs) simply feeds more at once: every segment closed by that audio
gets its final, and the open segment gets at most one partial for all of it. Partials are skipped under
load; finals never are. A partial is due at each whole ``step_seconds`` of the segment, unless partials
would then take more than ``partial_load`` of real time (the next one waits for the audio that keeps them
within it), and not while a pause is going on (the segment may be closing: its final comes first).

Cost per step does not grow with the stream: a step works on the open segment only (at most
``max_segment_seconds``). A partial runs the encoder in its streaming mode (attention windows of
``partial_window_seconds``, 2 s by default; AuT is trained with windows of 1 to 8 s): each completed short
window is encoded once, and the decoder's KV cache keeps the prompt up to the last completed one
(:meth:`GGUFDecoder.generate_after` drops the rest and evaluates the new rows), so a step encodes and
prefills only the open short window, the prompt's suffix and the text. A partial forces the previous
partial's text except its last ``rollback_tokens`` tokens, which it checks again in the same batch.

A final uses the offline 8 s windows (encoded once each while the segment goes on, see :mod:`.features`,
and prefilled as they complete in a KV sequence of its own, so that the final evaluates only the rows after
the last completed window) and is decoded by the offline pipeline's own decode (same prompt, context carried
from the previous finals, same fallback of temperatures), with the last partial as a draft that the decode
only verifies where it is right. So a final equals what the offline pipeline gives for that span. With
``partial_window_seconds=8`` partials use the offline windows too, and the final reuses their KV cache up to
the last completed window.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from qwen_whisper_compat.engine.chunking import quiet_point
from qwen_whisper_compat.engine.encoder import WINDOW_FRAMES
from qwen_whisper_compat.engine.fallback import LoopGuard, NoSpeechProbe
from qwen_whisper_compat.engine.generation import Generation
from qwen_whisper_compat.engine.live.features import SegmentFeatures
from qwen_whisper_compat.engine.live.segmenter import Segmenter
from qwen_whisper_compat.engine.live.types import Final, LiveEvent, LiveOptions, Partial
from qwen_whisper_compat.engine.mel import HOP_LENGTH, SAMPLE_RATE
from qwen_whisper_compat.engine.pipeline import Transcriber, chunk_context
from qwen_whisper_compat.engine.prompt import asr_prompt, parse_output
from qwen_whisper_compat.engine.sampling import SamplingOptions
from qwen_whisper_compat.engine.types import ChunkResult, EncodedChunk, PipelineStats, TranscribeOptions
from qwen_whisper_compat.errors import AudioLoadError

logger = logging.getLogger("qwen_whisper_compat.live")

#: The shortest open segment a partial is decoded for.
_MIN_PARTIAL_SAMPLES = SAMPLE_RATE // 4


class SpeechDetector(Protocol):
    """A stateful voice activity detector over one stream (the package's ``SileroVad.stream()``)."""

    #: Samples per probability.
    window: int

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """Speech probabilities of the windows completed by ``samples``."""


@dataclass(frozen=True)
class _Cache:
    """What the decoder's KV cache holds for the open segment: the prompt's prefix for ``context``, then
    the rows of the completed windows whose encoder output had these identities."""

    epoch: int
    context: str
    windows: tuple[int, ...]
    #: ``"offline"`` (8 s windows, as the finals) or ``"streaming"`` (the partials' short windows).
    mode: str = "offline"


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


class LiveSession:
    """Live transcription of one stream over a loaded :class:`Transcriber`.

    The session uses the transcriber's decoder between calls (its KV cache holds the open segment's
    prompt); another transcription on the same transcriber in between is detected and only costs a fresh
    prefill. Sessions open at once on one transcriber need KV sequences of their own (``seq_base``), and
    their calls must not overlap (the decoder is not thread-safe).

    Args:
        transcriber: The loaded model.
        detector: A fresh voice activity detector for this stream.
        options: Decoding options, as for the offline pipeline (``chunk_seconds`` is not used: segments end
            at pauses or at ``live.max_segment_seconds``).
        live: How the stream is cut and how often partials are decoded.
        seq_base: The first of the two decoder KV sequences the session uses (``seq_base``, ``seq_base + 1``).
    """

    def __init__(
        self,
        transcriber: Transcriber,
        detector: SpeechDetector,
        options: TranscribeOptions | None = None,
        live: LiveOptions | None = None,
        seq_base: int = 0,
    ) -> None:
        if seq_base < 0:
            raise ValueError(f"seq_base must be >= 0, got {seq_base}")
        options = transcriber.resolve_options(options)
        self.options, self.live = options, live or LiveOptions()
        self._t = transcriber
        self._detector = detector
        manifest = transcriber.model_dir.manifest
        self._window_rows = manifest.encoder.window_tokens
        self._piece_frames = int(self.live.partial_window_seconds * 100)
        longest = self.live.max_segment_seconds + 1.0
        self._features = SegmentFeatures(
            transcriber.encoder, manifest.encoder.n_mels, self._window_rows, int(longest * SAMPLE_RATE)
        )
        self._segmenter = Segmenter(self.live, detector.window, SAMPLE_RATE, self._quietest)
        self._eos: tuple[int, ...] = () if options.ignore_eos else tuple(transcriber.tokens.eos)
        self._special = frozenset(transcriber.tokens.special)
        transcriber.stats = PipelineStats()
        transcriber._fit_context(dataclasses.replace(options, chunk_seconds=longest, search_seconds=0.0))
        # the final's KV sequence: its own, unless the partials use the final's windows (then they share one)
        self._final_seq = 1 if self._piece_frames < WINDOW_FRAMES else 0
        #: The decoder's KV sequences this session's two (partials', final's) stand for.
        self._seq_ids = (seq_base, seq_base + 1)
        transcriber.decoder.ensure_context(transcriber.decoder.n_ctx, n_seq=seq_base + 1 + self._final_seq)
        self.stats = LiveStats()
        self._start = 0  # first sample of the open segment, in the stream
        self._fed = 0
        self._index = 0  # segments closed
        self._spoken = 0  # speech segments decoded (the offline pipeline's chunk index, for the context)
        self._previous = ""
        self._draft: list[int] = []
        self._step = max(1, int(self.live.step_seconds * SAMPLE_RATE))
        self._next_partial = self._step  # samples of the open segment the next partial waits for
        self._caches: list[_Cache | None] = [None, None]  # what each KV sequence holds
        self._pending = [_Cache(-1, "", ()), _Cache(-1, "", ())]
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
        self._features.append(x)
        self._fed += x.size
        events: list[LiveEvent] = [self._close(c.position, c.speech) for c in self._segmenter.push(self._detector.feed(x).tolist())]
        if (
            self.live.partials
            and self._segmenter.has_speech
            and self._features.n >= max(self._next_partial, _MIN_PARTIAL_SAMPLES)
            and self._segmenter.quiet_since is None
        ):  # (in a pause the segment may be about to close: its final comes first)
            events.append(self._partial())
        elif self._segmenter.has_speech and self._final_seq:
            # the final's 8 s windows and their prefill, while the segment goes on, in a call that has no
            # partial to deliver (so that no partial waits for them)
            self._prefill_windows()
        return events

    def finish(self) -> list[LiveEvent]:
        """End the stream: the open segment's final (nothing when no audio was fed). Idempotent."""
        if self._finished:
            return []
        self._finished = True
        if self._features.n == 0:
            return []
        return [self._close(self._start + self._features.n, self._segmenter.has_speech)]

    # ----------------------------------------------------------------------------------- segments
    def _close(self, position: int, speech: bool) -> Final:
        n = position - self._start
        if speech and n >= HOP_LENGTH:
            final = Final(self._final(n), speech=True)
            self.stats.finals += 1
        else:
            final = Final(_silent(self._index, self._start, position), speech=False)
            self.stats.silent += 1
        self._features.reset(n)
        self._start = position
        self._index += 1
        self._draft = []
        self._next_partial = self._step
        self._caches = [None, None]
        return final

    def _quietest(self, left: int, right: int) -> int:
        return self._start + quiet_point(self._features.audio, left - self._start, right - self._start, SAMPLE_RATE // 10)

    def _prompt(
        self, embeds: np.ndarray, parts: Sequence[tuple[int, int]], mode: str, seq: int = 0
    ) -> tuple[np.ndarray, int, str, int]:
        """The prompt rows of the open segment whose audio rows are ``embeds``, how many leading rows KV
        sequence ``seq`` still holds, the context, and where the audio rows end. ``parts`` are (identity,
        rows) of the completed windows at the start of ``embeds``, whose rows stay the same from one step to
        the next; ``mode`` names the encoder windows they come from (a cache of one mode is no use to the
        other beyond the prompt's prefix)."""
        context = chunk_context(self.options, self._spoken, self._previous)
        prompt = asr_prompt(self._t.tokens, self._t.decoder.tokenize, len(embeds), context, self.options.language)
        rows = prompt.embed(self._t.decoder.token_embeddings, embeds)
        kept = 0
        cache = self._caches[seq]
        if cache is not None and cache.epoch == self._t.decoder.cache_epoch and cache.context == context:
            kept = prompt.audio_offset
            if cache.mode == mode:
                for (identity, size), cached in zip(parts, cache.windows, strict=False):
                    if identity != cached:
                        break
                    kept += size
        self._caches[seq] = None  # until the decode below has run
        self._pending[seq] = _Cache(self._t.decoder.cache_epoch, context, tuple(i for i, _ in parts), mode)
        return rows, kept, context, prompt.audio_offset + prompt.n_audio

    def _windows(self, stable: int) -> list[tuple[int, int]]:
        """(identity, rows) of the completed 8 s windows among the first ``stable`` rows."""
        ids = self._features.window_version()[: stable // self._window_rows]
        return [(i, self._window_rows) for i in ids]

    def _generate(self, kept: int, rows: np.ndarray, cap: int, sampling: SamplingOptions,
                  stop: LoopGuard | None, probe: NoSpeechProbe | None, draft: Sequence[int], forced: int,
                  seq: int = 0) -> Generation:  # fmt: skip
        kept = min(kept, rows.shape[0] - 1)
        before = self._t.decoder.perf()
        gen = self._t.decoder.generate_after(
            kept, rows[kept:], cap, self._eos, sampling, stop, probe, draft=draft, forced=forced,
            seq=self._seq_ids[seq],
        )
        after = self._t.decoder.perf()
        self.stats.prompt_rows += rows.shape[0] - kept
        self.stats.kept_rows += kept
        steps = int(after["eval_tokens"] - before["eval_tokens"])
        self.stats.generated_tokens += steps
        self.stats.accepted_tokens += max(0, len(gen.tokens) - steps)
        self._commit(seq)
        return gen

    def _commit(self, seq: int) -> None:
        """Sequence ``seq`` now holds what the last :meth:`_prompt` for it described."""
        self._caches[seq] = dataclasses.replace(self._pending[seq], epoch=self._t.decoder.cache_epoch)

    def _prefill_windows(self) -> None:
        """Encode the 8 s windows completed so far and evaluate the final's prompt up to their end in the
        final's KV sequence (each window once), so that the final later evaluates only what follows them."""
        self._features.complete_windows()
        windows = self._features.window_embeddings()
        parts = self._windows(len(windows) * self._window_rows)
        seq, cache = self._final_seq, self._caches[self._final_seq]
        if not parts or (
            cache is not None and cache.epoch == self._t.decoder.cache_epoch
            and cache.windows == tuple(i for i, _ in parts)
        ):  # fmt: skip
            return
        rows, kept, _, end = self._prompt(np.concatenate(windows), parts, "offline", seq)
        if kept < end:
            self._t.decoder.keep(kept, self._seq_ids[seq])
            self._t.decoder.eval_embeddings(rows[kept:end], kept, [], seq=self._seq_ids[seq])
            self.stats.prompt_rows += end - kept
        self._commit(seq)

    def _partial(self) -> Partial:
        t = time.perf_counter()
        n = self._features.n
        if self._piece_frames < WINDOW_FRAMES:
            embeds, ids = self._features.partial_embeddings(self._piece_frames)
            size = self._t.model_dir.manifest.encoder.output_length(self._piece_frames)
            rows, kept, _, _ = self._prompt(embeds, [(i, size) for i in ids], "streaming")
        else:
            embeds, stable = self._features.embeddings(n)
            rows, kept, _, _ = self._prompt(embeds, self._windows(stable), "offline")
        forced = max(0, len(self._draft) - self.live.rollback_tokens)
        cap = self.options.token_cap(n / SAMPLE_RATE)
        forced = min(forced, cap)
        guard = LoopGuard(self.options.loop_window, self.options.loop_distinct)
        gen = self._generate(kept, rows, cap - forced, SamplingOptions(), guard, None, self._draft, forced)
        tokens = self._draft[:forced] + gen.tokens
        self._draft = tokens
        parsed = parse_output(self._t.decoder.text(tokens, self._special), self.options.language)
        first = 0
        if self.options.language is None and self._t.tokens.asr_text in tokens:
            first = tokens.index(self._t.tokens.asr_text) + 1
        cost = time.perf_counter() - t
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
        t = time.perf_counter()
        embeds, stable = self._features.embeddings(n)
        enc = EncodedChunk(self._spoken, self._start, self._start + n, embeds, time.perf_counter() - t)
        seq = self._final_seq
        rows, kept, context, _ = self._prompt(embeds, self._windows(stable), "offline", seq)
        self.stats.final_kept_rows += min(kept, rows.shape[0] - 1)
        self._t.stats.encode_seconds += enc.seconds
        draft = self._draft

        def attempt(index: int, cap: int, eos: tuple[int, ...], sampling: SamplingOptions,
                    stop: LoopGuard | None, probe: NoSpeechProbe) -> Generation:  # fmt: skip
            # the first attempt verifies the last partial; a retry keeps the whole prompt in the cache
            start = kept if index == 0 else rows.shape[0] - 1
            return self._generate(start, rows, cap, sampling, stop, probe, draft if index == 0 else (), 0, seq)

        result = self._t._decode(enc, self.options, context, run=attempt)
        result = dataclasses.replace(result, index=self._index)
        if self.options.word_timestamps:
            result = self._t._align(result, self._features.audio[:n].copy(), self._start, self.options)
        self._previous = result.text
        self._spoken += 1
        self.stats.final_seconds += time.perf_counter() - t
        return result


def _checked(samples: np.ndarray) -> np.ndarray:
    """The samples as contiguous float32, or a clear error."""
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
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise AudioLoadError("the live audio holds NaN or infinite samples: check the source (a broken decoder?)")
    return x


def _silent(index: int, start: int, end: int) -> ChunkResult:
    """The final of a span without speech."""
    return ChunkResult(
        index=index, start=start / SAMPLE_RATE, end=end / SAMPLE_RATE, text="", tokens=(), language="",
        avg_logprob=0.0, compression_ratio=0.0, no_speech_prob=1.0, temperature=0.0, truncated=False,
        repetitive=False, words=None, audio_start=start / SAMPLE_RATE, audio_end=end / SAMPLE_RATE,
    )  # fmt: skip
