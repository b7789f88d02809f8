"""Forced alignment with Qwen3-ForcedAligner: (audio, transcript) -> word timings.

The official method (reference/qwen3_asr.md 5): the transcript is split into units (words; one unit per
CJK ideograph), the input is ``<|audio_start|> audio <|audio_end|>`` followed by each unit's tokens and two
``<timestamp>`` slots; one causal pass of the decoder gives a hidden state at every slot, the 5000-class
timestamp head turns it into a class, and class x 80 ms is the time. The slot times are repaired
(timestamps.py) and mapped back onto the transcript, so that words keep their spacing and punctuation.

The decoder pass runs in one of two engines. Where the folder has the aligner's onnxruntime graph (role
``aligner_decoder``, written by the converter), that graph computes the layer stack and the head, at the slot
rows only, and llama.cpp reads just the GGUF's vocabulary (:mod:`.aligner_onnx`; faster, and the GGUF's
weights are never loaded: benchmarks/results/aligner_fidelity.md). Otherwise (older folders, Qwen3-ASR-GGUF
exports) llama.cpp runs the pass: only the slots' hidden states are computed at its end (the decoder stops
before the vocabulary head), and the head is applied here in numpy; it is never padded to the vocabulary.
"""

from __future__ import annotations

import itertools
import os
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from qwen_whisper_compat.engine.aligner_onnx import OnnxAlignerDecoder
from qwen_whisper_compat.engine.decoder import GGUFDecoder
from qwen_whisper_compat.engine.encoder import load_encoder, select_providers
from qwen_whisper_compat.engine.mel import HOP_LENGTH, SAMPLE_RATE, log_mel_spectrogram
from qwen_whisper_compat.engine.modeldir import ModelDir, load_model_dir
from qwen_whisper_compat.engine.prompt import Prompt
from qwen_whisper_compat.engine.timestamps import fix_timestamps
from qwen_whisper_compat.engine.turns import OFFLINE
from qwen_whisper_compat.engine.types import WordTiming
from qwen_whisper_compat.engine.words import is_kept, split_words
from qwen_whisper_compat.errors import ModelFolderError

if TYPE_CHECKING:
    from typing_extensions import Self

#: The official aligner's limit per call (its head has 5000 classes of 80 ms = 400 s).
MAX_ALIGN_SECONDS = 180.0

#: Which engine runs the aligner's decoder: ``auto`` takes the onnxruntime graph when the folder has one (and,
#: with ``exact``, only an fp32 one), else llama.cpp.
AlignerEngine = Literal["auto", "onnx", "llama"]


class ForcedAligner:
    """A loaded aligner model folder (ours, or a Qwen3-ASR-GGUF export).

    Args:
        model: Folder path or :class:`ModelDir` of kind ``aligner``.
        threads: CPU threads (0 = all available).
        device: Where the encoder runs (``cpu``, ``cuda``, ``dml``, ``coreml``, ``auto``).
        exact: Parity checks: f32 KV cache and no flash attention in llama.cpp, and no int8 graph.
        engine: Which engine runs the decoder pass (see :data:`AlignerEngine`).
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | ModelDir,
        threads: int = 0,
        device: str = "cpu",
        exact: bool = False,
        engine: AlignerEngine = "auto",
    ) -> None:
        self.model_dir = model if isinstance(model, ModelDir) else load_model_dir(model, kind="aligner")
        manifest = self.model_dir.manifest
        if manifest.kind != "aligner" or manifest.tokens.timestamp is None:
            raise ModelFolderError(f"{self.model_dir.path} is not a forced-aligner model folder")
        self.tokens = manifest.tokens
        self.timestamp = manifest.tokens.timestamp
        self.segment_ms = manifest.timestamp_segment_ms or 80
        providers = select_providers(device)
        self.encoder = load_encoder(self.model_dir, providers=providers, threads=threads)
        self.decoder: GGUFDecoder | OnnxAlignerDecoder
        graph = next((f for f in manifest.files if f.role == "aligner_decoder"), None)
        if engine == "onnx" and graph is None:
            raise ModelFolderError(f"{self.model_dir.path} has no aligner decoder graph; convert the aligner again")
        if engine == "onnx" or (engine == "auto" and graph is not None and (not exact or graph.precision == "fp32")):
            assert graph is not None
            self.decoder = OnnxAlignerDecoder(
                self.model_dir.path / graph.path, self.model_dir.file_path("decoder"), providers, threads
            )
            self.head: np.ndarray | None = None
        else:
            self.decoder = GGUFDecoder(
                self.model_dir.file_path("decoder"),
                n_ctx=1024,
                n_threads=threads or None,
                exact=exact,
                capture_hidden=True,
            )
            self.head = self._load_head(self.decoder)

    @property
    def engine(self) -> Literal["onnx", "llama"]:
        """The engine that runs the decoder pass."""
        return "onnx" if isinstance(self.decoder, OnnxAlignerDecoder) else "llama"

    def _load_head(self, decoder: GGUFDecoder) -> np.ndarray:
        n_classes = self.model_dir.manifest.decoder.classify_num
        if any(f.role == "timestamp_head" for f in self.model_dir.manifest.files):
            head = np.load(self.model_dir.file_path("timestamp_head"))
        else:  # a Qwen3-ASR-GGUF export pads the head into the GGUF's output matrix: take its first rows
            try:
                head = decoder.tensor_rows("output.weight", np.arange(n_classes))
            except KeyError:
                raise ModelFolderError(f"{self.model_dir.path} has no timestamp head") from None
        if head.shape != (n_classes, decoder.n_embd):
            expected = (n_classes, decoder.n_embd)
            raise ModelFolderError(f"timestamp head has shape {head.shape}, expected {expected}")
        return np.ascontiguousarray(head, dtype=np.float32)

    def close(self) -> None:
        """Free the decoder's native memory (or the graph's vocabulary and mapped GGUF)."""
        self.decoder.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------------------------------------- api
    def align(
        self, audio: np.ndarray, text: str, language: str, offset: float = 0.0, priority: int = OFFLINE
    ) -> list[WordTiming]:
        """Word timings of ``text`` spoken in ``audio`` (16 kHz mono, at most 180 s).

        Args:
            audio: The samples the text was transcribed from.
            text: The transcript; its words come back with their spacing and punctuation.
            language: Prompt language name (decides how words are split; Japanese and Korean need extras).
            offset: Seconds added to every time (the chunk's position in a longer input).
            priority: The turn's priority on the aligner's decoder (a live stream's final goes first).
        """
        units = split_words(text, language)
        if not units:
            return []
        ms, probs = self.align_units(audio, units, priority)
        duration = len(audio) / SAMPLE_RATE
        return attach_words(text, units, ms, probs, offset, duration)

    def align_units(
        self, audio: np.ndarray, units: Sequence[str], priority: int = OFFLINE
    ) -> tuple[list[int], np.ndarray]:
        """Repaired slot times in milliseconds (two per unit) and each slot's top class probability."""
        seconds = len(audio) / SAMPLE_RATE
        if seconds > MAX_ALIGN_SECONDS:
            raise ValueError(f"align at most {MAX_ALIGN_SECONDS:.0f} s of audio per call, got {seconds:.1f} s")
        if len(audio) < HOP_LENGTH:
            raise ValueError("audio to align must hold at least 10 ms")
        feats = self.encoder(log_mel_spectrogram(np.asarray(audio, dtype=np.float32)))
        ids = [self.tokens.audio_start, *[self.tokens.audio_pad] * len(feats), self.tokens.audio_end]
        slots: list[int] = []
        for unit in units:
            ids += self.decoder.tokenize(unit)
            slots += [len(ids), len(ids) + 1]
            ids += [self.timestamp, self.timestamp]
        embeds = Prompt(ids, audio_offset=1, n_audio=len(feats)).embed(self.decoder.token_embeddings, feats)
        logits = self.slot_logits(embeds, slots, priority)
        classes = logits.argmax(axis=1)
        shifted = logits - logits.max(axis=1, keepdims=True)
        top = 1.0 / np.exp(shifted).sum(axis=1)
        return fix_timestamps((classes * self.segment_ms).tolist()), top

    def slot_logits(self, embeds: np.ndarray, slots: Sequence[int], priority: int = OFFLINE) -> np.ndarray:
        """Timestamp-class logits ``[len(slots), classes]`` of one causal pass over the prompt rows ``embeds``,
        in one turn of the decoder."""
        with self.decoder.turns.turn(priority):
            if isinstance(self.decoder, OnnxAlignerDecoder):
                return self.decoder.logits(embeds, slots)
            hidden = self.decoder.hidden_states(embeds, slots)
        assert self.head is not None
        logits: np.ndarray = hidden @ self.head.T
        return logits


def attach_words(
    text: str, units: Sequence[str], ms: Sequence[int], probs: Any, offset: float, duration: float
) -> list[WordTiming]:
    """Map unit times back onto ``text``: each word piece keeps its leading space and the punctuation that
    follows it, so the pieces concatenate to ``text``. Times are clamped to ``[0, duration]`` (plus
    ``offset``), made non-decreasing, and every word gets ``start <= end``."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for unit in units:
        first = -1
        for ch in unit:
            found = _find(text, ch, pos)
            if found < 0:  # a character no form of which is left in the text: the unit ends where it is
                continue
            first = found if first < 0 else first
            pos = found + 1
        spans.append((pos if first < 0 else first, pos))
    cuts = [0]
    for (_, prev_end), (next_start, _) in itertools.pairwise(spans):
        gap = text[prev_end:next_start]
        space = next((i for i, ch in enumerate(gap) if ch.isspace() or is_kept(ch)), len(gap))
        cuts.append(prev_end + space)
    cuts.append(len(text))
    words: list[WordTiming] = []
    last = offset
    for i in range(len(units)):
        start = min(max(ms[2 * i] / 1000.0, 0.0), duration) + offset
        end = min(max(ms[2 * i + 1] / 1000.0, 0.0), duration) + offset
        start = max(start, last)
        end = max(end, start)
        last = end
        p = float(np.sqrt(probs[2 * i] * probs[2 * i + 1]))
        words.append(WordTiming(text[cuts[i] : cuts[i + 1]], round(start, 3), round(end, 3), p))
    return words


def _find(text: str, ch: str, pos: int) -> int:
    """Where ``ch`` is in ``text`` from ``pos`` on, as it is or in a compatibility form (a word splitter may
    give "J" for the transcript's fullwidth "Ｊ"); -1 when it is not there at all."""
    found = text.find(ch, pos)
    if found >= 0:
        return found
    return next((i for i in range(pos, len(text)) if ch in unicodedata.normalize("NFKC", text[i])), -1)
