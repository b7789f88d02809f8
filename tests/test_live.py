"""Live transcription on tiny models: finals equal the offline pipeline on the same bounds, reused encoder
windows and kept KV caches equal fresh computation, bad input, the whisper and faster-whisper faces, and
the audio sources (a consumer that stops reading leaves no thread behind; the microphone with its stream
injected, and without its extra)."""

from __future__ import annotations

import dataclasses
import itertools
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from qwen_whisper_compat import live_sources
from qwen_whisper_compat.engine.live import Final, LiveOptions, LiveSession, Partial
from qwen_whisper_compat.engine.live.features import SegmentFeatures
from qwen_whisper_compat.engine.mel import log_mel_spectrogram
from qwen_whisper_compat.engine.pipeline import Transcriber, chunk_context
from qwen_whisper_compat.engine.sampling import SamplingOptions
from qwen_whisper_compat.engine.types import TranscribeOptions
from qwen_whisper_compat.errors import AudioLoadError, MissingDependencyError, UnsupportedOptionError
from qwen_whisper_compat.vad.silero import SileroVad

SR = 16000


@pytest.fixture(scope="module")
def transcriber(asr_ckpt: Path, converted: Callable[..., Path]) -> Iterator[Transcriber]:
    with Transcriber(converted(asr_ckpt, "fp32", "f32"), exact=True) as t:
        yield t


@pytest.fixture(scope="module")
def talk(jfk: np.ndarray, shared_audio: Path) -> np.ndarray:
    """About 50 s: speech with pauses, a second of digital silence, a long stretch that hits the maximum
    segment length, and several completed 8 s encoder windows."""
    from qwen_whisper_compat.audio import load_audio

    libri = load_audio(shared_audio / "librispeech_1995-1837-0001.wav")
    multi = load_audio(shared_audio / "multilingual.mp3")[: 28 * SR]
    return np.concatenate([jfk, np.zeros(SR, np.float32), libri, multi])


def uneven_pieces(audio: np.ndarray, seed: int = 0) -> Iterator[np.ndarray]:
    """The audio in pieces of 10 ms to 3 s."""
    rng = np.random.default_rng(seed)
    i = 0
    while i < audio.size:
        n = int(rng.integers(SR // 100, 3 * SR + 1))
        yield audio[i : i + n]
        i += n


def run_session(t: Transcriber, audio: np.ndarray, options: TranscribeOptions, live: LiveOptions | None = None) -> list[Any]:
    session = LiveSession(t, SileroVad().stream(), options, live)
    events: list[Any] = []
    for piece in uneven_pieces(audio):
        events += session.feed(piece)
    return events + session.finish()


def blocks(audio: np.ndarray) -> Iterator[np.ndarray]:
    """The audio in 100 ms blocks, as a microphone gives it."""
    for i in range(0, audio.size, SR // 10):
        yield audio[i : i + SR // 10]


@pytest.mark.parametrize(
    ("window", "pieces"),
    [(2, uneven_pieces), (8, uneven_pieces), (2, blocks)],
    ids=["streaming-window-partials", "offline-window-partials", "streaming-window-partials-100ms-blocks"],
)
def test_finals_equal_the_offline_pipeline_on_the_same_bounds(
    transcriber: Transcriber, talk: np.ndarray, window: int, pieces: Callable[[np.ndarray], Iterator[np.ndarray]]
) -> None:
    options = TranscribeOptions()  # language detected, whisper's fallback temperatures
    session = LiveSession(transcriber, SileroVad().stream(), options, LiveOptions(partial_window_seconds=window))
    events = [e for piece in pieces(talk) for e in session.feed(piece)] + session.finish()
    if pieces is blocks:  # calls without a partial due: the final's windows were prefilled in its own sequence
        assert session.stats.final_kept_rows >= 2 * transcriber.model_dir.manifest.encoder.window_tokens
    finals = [e for e in events if isinstance(e, Final)]
    partials = [e for e in events if isinstance(e, Partial)]
    assert partials and sum(f.speech for f in finals) >= 4 and not all(f.speech for f in finals)
    # the finals tile the stream: every sample lies in exactly one
    assert finals[0].start == 0.0 and finals[-1].end == talk.size / SR
    assert all(a.end == b.start for a, b in itertools.pairwise(finals))
    assert all(f.end > f.start for f in finals)
    assert max(f.end - f.start for f in finals) <= LiveOptions().max_segment_seconds + 0.05
    # times never go backwards: events start in order, a segment's partials hear more and more, and no
    # event comes for a segment already closed (a final may end before what its last partial heard: the
    # silence after the cut belongs to the next segment)
    heard: dict[int, float] = {}
    closed, start = -1, 0.0
    for e in events:
        assert e.index > closed, "an event for a segment already closed"
        assert e.start >= start
        start = e.start
        if isinstance(e, Partial):
            assert e.end >= heard.get(e.index, 0.0)
            heard[e.index] = e.end
        else:
            closed = e.index
    # each speech final is token-identical to the offline pipeline on its span, with the same context
    previous, spoken, retried = "", 0, 0
    for f in finals:
        if not f.speech:
            assert f.text == "" and f.chunk.tokens == ()
            continue
        a, b = round(f.start * SR), round(f.end * SR)
        context = chunk_context(options, spoken, previous)
        offline = transcriber.transcribe(talk[a:b], dataclasses.replace(options, context=context, chunk_seconds=60.0))
        assert len(offline) == 1
        # the same fallback: the greedy attempt is judged the same way; a greedy final is token-identical
        # (a sampled retry draws from logits that differ by float rounding, so only its choice is compared)
        assert f.chunk.temperature == offline[0].temperature
        if f.chunk.temperature == 0:
            assert f.chunk.tokens == offline[0].tokens and f.text == offline[0].text
            assert f.chunk.language == offline[0].language
        retried += f.chunk.temperature > 0
        previous, spoken = f.text, spoken + 1
    assert retried, "no final went through the fallback: the test does not cover it"


def test_two_sessions_on_one_model_interleaved_give_their_finals_alone(
    transcriber: Transcriber, talk: np.ndarray, jfk: np.ndarray
) -> None:
    """Two live streams open at once on one model (KV sequences of their own), fed in turn: each gets the
    finals it gets alone; the other's decodes in between do not leak into its kept cache."""
    options = TranscribeOptions(language="English")
    a_audio, b_audio = talk[: 22 * SR], jfk
    alone = [[e for e in run_session(transcriber, audio, options) if isinstance(e, Final)] for audio in (a_audio, b_audio)]
    a = LiveSession(transcriber, SileroVad().stream(), options)
    b = LiveSession(transcriber, SileroVad().stream(), options)
    assert transcriber.decoder.n_seq >= 4 and len(transcriber.decoder.leased) >= 4
    events: list[list[Any]] = [[], []]
    pieces = [list(uneven_pieces(a_audio, seed=1)), list(blocks(b_audio))]
    for k in range(max(map(len, pieces))):
        for s, session in enumerate((a, b)):
            if k < len(pieces[s]):
                events[s] += session.feed(pieces[s][k])
    events[0] += a.finish()
    events[1] += b.finish()
    assert sum(isinstance(e, Partial) for e in events[0]) and sum(isinstance(e, Partial) for e in events[1])
    assert sum(s.stats.kept_rows for s in (a, b)) > 0, "the sessions must have kept their caches between calls"
    for got, want in zip(events, alone, strict=True):
        finals = [e for e in got if isinstance(e, Final)]
        assert [(f.start, f.end, f.speech) for f in finals] == [(f.start, f.end, f.speech) for f in want]
        for f, w in zip(finals, want, strict=True):
            assert f.chunk.temperature == w.chunk.temperature
            if f.chunk.temperature == 0:
                assert f.chunk.tokens == w.chunk.tokens


def test_forced_language_and_draft_free_finals(transcriber: Transcriber, jfk: np.ndarray) -> None:
    """With partials off the finals are decoded without a draft: the same tokens as with one."""
    options = TranscribeOptions(language="en", temperatures=(0.0,))
    with_partials = [e for e in run_session(transcriber, jfk, options) if isinstance(e, Final)]
    without = [e for e in run_session(transcriber, jfk, options, LiveOptions(partials=False)) if isinstance(e, Final)]
    assert [f.chunk.tokens for f in with_partials] == [f.chunk.tokens for f in without]
    assert all(f.chunk.language == "English" for f in with_partials if f.speech)


def test_a_segment_near_its_maximum_ends_at_its_first_short_pause() -> None:
    """Within ``search_seconds`` of the maximum a 0.1 s pause ends the segment as soon as it is heard (in
    its middle); earlier, such a pause does not; speech with no pause is cut at the maximum, at the
    quietest point of its last second."""
    from qwen_whisper_compat.engine.live.segmenter import Segmenter

    window = 512
    pauses = [(10.0, 10.2), (13.0, 13.2)]  # the maximum is 15 s, its search 3 s: only the second counts
    quietest: list[tuple[int, int]] = []
    segmenter = Segmenter(LiveOptions(), window, SR, lambda left, right: quietest.append((left, right)) or right)
    decided: list[tuple[float, float, bool]] = []  # (when, where, speech)
    for k in range(int(32 * SR / window)):
        at = k * window / SR
        p = 0.05 if any(a <= at < b for a, b in pauses) else 0.9
        decided += [((k + 1) * window / SR, c.position / SR, c.speech) for c in segmenter.push([p])]
    (when1, where1, speech1), (when2, where2, speech2) = decided  # nothing else: 0.2 s pauses close nothing
    assert speech1 and speech2
    assert 13.0 < where1 < 13.2 and when1 - 13.0 <= 0.1 + 2 * window / SR  # promptly, inside the pause
    assert quietest == [(round(where2 * SR) - SR, round(where2 * SR))]  # no pause: the quietest of the last 1 s
    assert where2 == pytest.approx(where1 + 15.0, abs=window / SR) and when2 == pytest.approx(where2)


def test_partials_come_at_whole_steps_within_their_share_of_time_and_not_in_pauses(
    transcriber: Transcriber, talk: np.ndarray
) -> None:
    """Each partial costs 0.25 s on a fake clock: with ``partial_load=1`` one comes at every whole second
    of its segment; with 0.1 about every 3 s. None is decoded while a pause goes on."""
    options = TranscribeOptions(language="en", temperatures=(0.0,))
    probabilities = SileroVad().stream().feed(talk)
    neg = LiveOptions().effective_neg_threshold

    def partials(load: float) -> list[Partial]:
        clock = itertools.count(step=0.25)
        session = LiveSession(
            transcriber, SileroVad().stream(), options, LiveOptions(partial_load=load), clock=lambda: next(clock)
        )
        events = [e for block in blocks(talk) for e in session.feed(block)]
        found = [e for e in events if isinstance(e, Partial)]
        for e in found:
            assert e.end - e.start >= 1.0 - 1e-6
            assert probabilities[round(e.end * SR) // 512 - 1] >= neg, "a partial during a pause"
        # on the grid of whole steps, unless a pause held it back (then at the first block after the pause)
        on_grid = [(e.end - e.start) % 1.0 < 0.1 + 1e-6 for e in found]
        assert sum(on_grid) >= 0.7 * len(found)
        return found

    def gaps(found: list[Partial]) -> list[float]:
        return [b.end - a.end for a, b in itertools.pairwise(found) if a.index == b.index]

    def median(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    # the next partial is due at the whole step nearest to "cost / load" after the last one
    every, sparse = partials(1.0), partials(0.1)
    assert gaps(every) and min(gaps(every)) >= 0.5 - 1e-6 and median(gaps(every)) < 1.05
    assert gaps(sparse) and min(gaps(sparse)) >= 2.0 - 1e-6 and median(gaps(sparse)) >= 2.5
    assert len(sparse) < len(every) / 2


def test_reused_encoder_windows_equal_a_fresh_encode(transcriber: Transcriber, talk: np.ndarray) -> None:
    # digital silence first, then speech that gets louder: the clamp of completed windows changes
    audio = np.concatenate([np.zeros(3 * SR, np.float32), 0.2 * talk[: 12 * SR], talk[12 * SR : 26 * SR]])
    window_rows = transcriber.model_dir.manifest.encoder.window_tokens
    features = SegmentFeatures(transcriber.encoder, 128, window_rows, audio.size)
    kept_before: np.ndarray | None = None
    reencoded_before = 0
    for piece in uneven_pieces(audio, seed=3):
        features.append(piece)
        if features.n < 160:
            continue
        embeds, stable = features.embeddings()
        if kept_before is not None and stable >= kept_before.shape[0]:
            same = embeds[: kept_before.shape[0]]
            if features.reencoded == reencoded_before:
                assert np.array_equal(same, kept_before), "a completed window changed without being re-encoded"
        kept_before, reencoded_before = embeds[:stable].copy(), features.reencoded
    assert stable >= 3 * window_rows  # three completed windows were reused
    fresh = transcriber.encoder(log_mel_spectrogram(audio))
    assert embeds.shape == fresh.shape
    assert np.abs(embeds - fresh).max() / np.abs(fresh).max() < 1e-5
    assert features.reencoded >= 1  # the louder speech changed the clamp of the quiet first window
    # a prefix that ends inside the last second of a window, and one just past a window
    for n in (8 * SR + 800, 16 * SR + 500, 16 * SR + 3 * SR // 2):
        part, _ = features.embeddings(n)
        fresh = transcriber.encoder(log_mel_spectrogram(audio[:n]))
        assert part.shape == fresh.shape and np.abs(part - fresh).max() / np.abs(fresh).max() < 1e-5


def test_kept_kv_cache_gives_the_logits_of_a_fresh_prefill(transcriber: Transcriber, jfk: np.ndarray) -> None:
    d = transcriber.decoder
    embeds = transcriber.encoder(log_mel_spectrogram(jfk))
    from qwen_whisper_compat.engine.prompt import asr_prompt

    prompt = asr_prompt(transcriber.tokens, d.tokenize, len(embeds), "context words", "English")
    rows = prompt.embed(d.token_embeddings, embeds)
    kept = prompt.audio_offset + 60
    seen: dict[str, list[np.ndarray]] = {"fresh": [], "kept": []}

    def capture(name: str) -> Callable[[int, int, np.ndarray, float], None]:
        return lambda step, token, logits, norm: seen[name].append(logits.copy())

    d.ensure_context(rows.shape[0] + 64)
    fresh = d.generate(rows, 12, (), SamplingOptions(), on_step=capture("fresh"))
    other = rows.copy()
    other[kept:] = rows[kept:][::-1]  # the same prefix, another tail: what a partial step leaves behind
    d.generate_after(0, other, 5, (), SamplingOptions())
    again = d.generate_after(kept, rows[kept:], 12, (), SamplingOptions(), on_step=capture("kept"))
    assert again.tokens == fresh.tokens
    for a, b in zip(seen["fresh"], seen["kept"], strict=True):
        assert np.abs(a - b).max() <= 1e-4 * np.abs(a).max()
    # a draft is only verified: right, half right, or wrong, the result is the plain decode's
    for draft in (fresh.tokens, fresh.tokens[:5] + [7] * 7, [3, 4, 5]):
        checked = d.generate_after(kept, rows[kept:], 12, (), SamplingOptions(), draft=draft)
        assert checked.tokens == fresh.tokens
        assert np.allclose(checked.logprobs, fresh.logprobs, atol=1e-4)
    forced = d.generate_after(kept, rows[kept:], 6, (), SamplingOptions(), draft=fresh.tokens, forced=6)
    assert forced.tokens == fresh.tokens[6:12]
    # a second sequence (the final's): its prefix evaluated without outputs, then sequence 0 used for
    # something else, then the decode on the kept prefix of sequence 1 is the fresh one
    d.ensure_context(rows.shape[0] + 64, n_seq=2)
    d.keep(0, seq=1)
    d.eval_embeddings(rows[:kept], 0, [], seq=1)
    d.generate_after(0, other, 5, (), SamplingOptions())
    seen["kept"] = []
    second = d.generate_after(kept, rows[kept:], 12, (), SamplingOptions(), on_step=capture("kept"), seq=1)
    assert second.tokens == fresh.tokens
    for a, b in zip(seen["fresh"], seen["kept"], strict=True):
        assert np.abs(a - b).max() <= 1e-4 * np.abs(a).max()
    with pytest.raises(ValueError, match=f"sequence {d.n_seq} is not in this context"):
        d.generate_after(kept, rows[kept:], 1, (), SamplingOptions(), seq=d.n_seq)


@pytest.mark.parametrize(
    ("samples", "message"),
    [
        (np.full(1600, np.nan, np.float32), "NaN"),
        ((np.ones(1600) * 1000).astype(np.int16), "32768"),
        (np.zeros((1600, 2), np.float32), "mono"),
        (np.array(["a"]), "float"),
    ],
    ids=["nan", "int16", "stereo", "strings"],
)
def test_bad_samples_are_a_clear_error(transcriber: Transcriber, samples: np.ndarray, message: str) -> None:
    session = LiveSession(transcriber, SileroVad().stream())
    with pytest.raises(AudioLoadError, match=message):
        session.feed(samples)


def test_nothing_fed_gives_nothing_and_a_finished_stream_takes_no_more(transcriber: Transcriber) -> None:
    session = LiveSession(transcriber, SileroVad().stream())
    assert session.feed(np.zeros(0, np.float32)) == []
    assert session.finish() == [] and session.finish() == []
    with pytest.raises(AudioLoadError, match="finished"):
        session.feed(np.zeros(160, np.float32))
    silence = LiveSession(transcriber, SileroVad().stream())
    events = silence.feed(np.zeros(25 * SR, np.float32)) + silence.finish()
    assert events and all(isinstance(e, Final) and not e.speech for e in events)
    assert events[-1].end == 25.0 and silence.stats.finals == 0  # nothing decoded


def test_live_options_are_checked() -> None:
    with pytest.raises(UnsupportedOptionError):
        LiveOptions(step_seconds=0)
    with pytest.raises(UnsupportedOptionError, match="partial_load"):
        LiveOptions(partial_load=0)
    with pytest.raises(UnsupportedOptionError):
        LiveOptions(pad_seconds=1.0, min_silence_seconds=0.5)


# ------------------------------------------------------------------------------------------------ faces
def test_whisper_face_stream(tiny_whisper: Any, jfk: np.ndarray, tmp_path: Path) -> None:
    from qwen_whisper_compat.utils import get_writer

    with tiny_whisper.stream(language="en") as stream:
        with pytest.raises(UnsupportedOptionError, match="already transcribing"):
            tiny_whisper.stream()
        events = list(stream.events(uneven_pieces(jfk)))
    assert {e.type for e in events} == {"partial", "final"} and events[-1].type == "final"
    segments = stream.result()["segments"]
    assert segments and [s["id"] for s in segments] == list(range(len(segments)))
    assert set(segments[0]) >= {"id", "seek", "start", "end", "text", "tokens", "avg_logprob", "no_speech_prob"}
    assert stream.result()["language"] == "en"
    get_writer("srt", str(tmp_path))(stream.result(), "live.wav")
    assert (tmp_path / "live.srt").read_text(encoding="utf-8").startswith("1\n00:00:")
    with tiny_whisper.stream(language="en", partials=False) as again:  # the model is free again
        assert all(e.type == "final" for e in again.events([jfk]))
    with pytest.raises(TypeError, match="step_second"):
        tiny_whisper.stream(step_second=2)


def test_more_live_streams_at_once_when_the_model_allows(tiny_whisper: Any, jfk: np.ndarray) -> None:
    assert tiny_whisper.max_live_streams == 1
    with pytest.raises(UnsupportedOptionError, match="max_live_streams"):
        tiny_whisper.max_live_streams = 0
    tiny_whisper.max_live_streams = 2
    try:
        first, second = tiny_whisper.stream(language="en", partials=False), tiny_whisper.stream(language="en")
        with pytest.raises(UnsupportedOptionError, match="2 live streams"):
            tiny_whisper.stream()
        second.feed(jfk[:SR])
        second.close()
        with pytest.raises(AudioLoadError, match="closed"):
            second.feed(jfk[:SR])
        assert second.finish() == []
        with tiny_whisper.stream(language="en", partials=False) as third:  # the freed slot
            third_finals = list(third.events([jfk]))
        first_finals = list(first.events([jfk]))
        assert [e.text for e in first_finals] == [e.text for e in third_finals]
    finally:
        tiny_whisper.max_live_streams = 1


def test_faster_whisper_face_stream(under_model_env: Callable[..., Any], jfk: np.ndarray) -> None:
    from qwen_whisper_compat import WhisperModel
    from qwen_whisper_compat.faster import Segment

    model = under_model_env(WhisperModel, "base")
    try:
        with model.stream(language="en", word_timestamps=True) as stream:
            finals = [e for e in stream.events(uneven_pieces(jfk)) if e.type == "final"]
        segments = [s for e in finals for s in e.segments]
        assert segments and all(isinstance(s, Segment) for s in segments)
        assert [s.id for s in segments] == list(range(1, len(segments) + 1))
        assert all(s.words for s in segments)  # the aligner timed the finals' words
    finally:
        model.model.close()


# ---------------------------------------------------------------------------------------------- sources
def test_a_consumer_that_stops_reading_leaves_no_thread(tiny_whisper: Any, shared_audio: Path) -> None:
    before = set(threading.enumerate())
    source = live_sources.realtime_file(str(shared_audio / "jfk.flac"), speed=4.0)
    with tiny_whisper.stream(language="en") as stream:
        for event in stream.events(source):
            if event.type == "partial":
                break
    deadline = time.monotonic() + 5
    while set(threading.enumerate()) - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert set(threading.enumerate()) - before == set()
    with tiny_whisper.stream() as stream:  # and the model was released
        assert stream.position == 0.0


def test_realtime_file_keeps_the_pace(shared_audio: Path) -> None:
    source = live_sources.realtime_file(str(shared_audio / "hotwords.mp3"), speed=4.0)  # 4 s of audio
    t0 = time.monotonic()
    total = sum(block.size for block in source)
    assert total == 4 * SR and time.monotonic() - t0 >= 0.9


def test_pcm_stream_converts_s16le(tmp_path: Path) -> None:
    samples = (np.sin(np.arange(4801) / 10) * 20000).astype("<i2")
    path = tmp_path / "pcm.raw"
    path.write_bytes(samples.tobytes() + b"\x01")  # an odd trailing byte is not a sample
    with path.open("rb") as f:
        got = np.concatenate(list(live_sources.pcm_stream(f, block_bytes=999)))
    assert np.array_equal(got, samples.astype(np.float32) / 32768)


class FakeInputStream:
    """sounddevice.InputStream's signature; delivers a clip through the callback from its own thread."""

    clip: ClassVar[np.ndarray] = np.zeros(0, np.float32)
    instances: ClassVar[list[FakeInputStream]] = []

    def __init__(self, samplerate: int, channels: int, dtype: str, blocksize: int, device: Any, callback: Any) -> None:
        assert (samplerate, channels, dtype) == (16000, 1, "float32")
        self.blocksize, self.callback, self.stopped, self.closed = blocksize, callback, threading.Event(), False
        FakeInputStream.instances.append(self)

    def start(self) -> None:
        self.thread = threading.Thread(target=self._play, daemon=True)
        self.thread.start()

    def _play(self) -> None:
        for i in range(0, self.clip.size - self.blocksize + 1, self.blocksize):
            if self.stopped.is_set():
                return
            self.callback(self.clip[i : i + self.blocksize, None], self.blocksize, None, None)
            time.sleep(0.002)

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()

    def close(self) -> None:
        self.closed = True


def test_microphone_with_its_stream_injected(tiny_whisper: Any, jfk: np.ndarray) -> None:
    FakeInputStream.clip = np.concatenate([jfk, np.zeros(2 * SR, np.float32)])
    mic = live_sources.microphone(input_stream=FakeInputStream)
    finals = []
    with tiny_whisper.stream(language="en") as stream:
        for event in stream.events(mic):
            if event.type == "final" and event.segments:
                finals.append(event)
            if event.end >= 11.0:
                break  # a user's Ctrl-C: the microphone is closed
    fake = FakeInputStream.instances[-1]
    assert finals and fake.stopped.is_set() and fake.closed


def test_microphone_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    with pytest.raises(MissingDependencyError, match=r"qwen-whisper-compat\[mic\]"):
        live_sources.microphone()


@pytest.mark.slow
def test_ten_minutes_at_once_or_in_10_ms_pieces_cost_only_what_is_new(transcriber: Transcriber, talk: np.ndarray) -> None:
    """A consumer that falls 10 minutes behind feeds them in one call; another feeds 10 ms at a time. Either way
    the session holds one segment (its buffer does not grow with the backlog), computes each log-mel frame about
    once, allocates little beyond the caller's own array, and the second half of the stream costs what the first
    did: flat memory, linear time. Both cut the stream at the same places."""
    import tracemalloc

    audio = np.tile(talk, -(-600 * SR // talk.size))[: 600 * SR]
    options = TranscribeOptions(language="en", temperatures=(0.0,), max_new_tokens=8)
    live = LiveOptions()
    bound = 2 * int((live.max_segment_seconds + 1.0 + 1.0) * SR)  # a segment and a slice, grown by doubling

    def peak_while_fed(session: LiveSession, samples: np.ndarray) -> tuple[int, list[Any]]:
        """What feeding ``samples`` at once allocates at most beyond what was allocated before (bytes)."""
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            fed = session.feed(samples)
            return tracemalloc.get_traced_memory()[1] - before, fed
        finally:
            tracemalloc.stop()

    one_minute, _ = peak_while_fed(LiveSession(transcriber, SileroVad().stream(), options, live), audio[: 60 * SR])
    at_once = LiveSession(transcriber, SileroVad().stream(), options, live)
    peak, events = peak_while_fed(at_once, audio)
    events += at_once.finish()
    # flat: ten minutes of backlog need what one minute does (the caller's own array aside)
    assert peak < one_minute + (2 << 20), f"10 minutes at once took {peak >> 20} MiB, one minute {one_minute >> 20}"
    assert peak < audio.nbytes / 2
    assert at_once.held_samples <= bound
    frames = audio.size // 160
    # each frame once; frames after a cut that were computed in the cut segment are computed again in the next
    assert 0.95 * frames <= at_once.stats.mel_frames <= 1.25 * frames

    pieces = LiveSession(transcriber, SileroVad().stream(), options, live)
    piece_events: list[Any] = []
    halves: list[float] = []
    held = 0
    for half in np.split(audio, 2):
        t = time.perf_counter()
        for i in range(0, half.size, SR // 100):
            piece_events += pieces.feed(half[i : i + SR // 100])
            held = max(held, pieces.held_samples)
        halves.append(time.perf_counter() - t)
    piece_events += pieces.finish()
    assert held <= bound
    assert 0.95 * frames <= pieces.stats.mel_frames <= 1.25 * frames + 10 * pieces.stats.partials
    assert halves[1] < 2.0 * halves[0] + 5.0, f"the second five minutes took {halves[1]:.1f} s, the first {halves[0]:.1f} s"
    assert pieces.stats.partials > 100 and at_once.stats.partials <= 1

    def bounds(found: list[Any]) -> list[tuple[float, float, bool]]:
        return [(e.start, e.end, e.speech) for e in found if isinstance(e, Final)]

    assert len(bounds(events)) > 40
    assert bounds(events) == bounds(piece_events)
