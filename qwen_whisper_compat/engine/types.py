"""The plain values passed between the engine's stages and out of it: options, chunk results, word
timings, statistics. Frozen dataclasses (the statistics excepted); nothing here imports a runtime."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from qwen_whisper_compat.engine.sampling import SamplingOptions
from qwen_whisper_compat.errors import UnsupportedOptionError

#: The fallback temperatures of whisper; the first one is greedy decoding.
DEFAULT_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass(frozen=True)
class WordTiming:
    """One word of the transcript with its time span (seconds, in the input's time)."""

    #: The word as it appears in the transcript, with its leading space and attached punctuation.
    word: str
    start: float
    end: float
    #: Confidence: geometric mean of the head's top probabilities at the word's two slots.
    probability: float


@dataclass(frozen=True)
class TranscribeOptions:
    """Everything that shapes one transcription. Validated on creation."""

    #: Language to force, as a prompt name (``"English"``) or whisper code (``"en"``); ``None`` lets the
    #: model detect it per chunk. Checked against the model's languages when a transcription starts.
    language: str | None = None
    #: Free text for the system turn: hot words, names, background.
    context: str = ""
    #: Put ``context`` into every chunk's prompt (else only the first chunk's).
    carry_initial_context: bool = True
    #: Put the end of the previous chunk's text into the next chunk's prompt.
    carry_previous_text: bool = True
    #: How many characters of the previous chunk's text to carry.
    previous_text_chars: int = 200
    temperatures: tuple[float, ...] = DEFAULT_TEMPERATURES
    top_k: int = 0
    top_p: float = 1.0
    seed: int | None = 0
    #: Retry when the text's gzip compression ratio is above this (``None`` = never).
    compression_ratio_threshold: float | None = 2.4
    #: Retry when the average token log-probability is below this (``None`` = never).
    logprob_threshold: float | None = None
    #: A decode whose last ``loop_window`` tokens hold at most ``loop_distinct`` distinct ids is looping.
    loop_window: int = 15
    loop_distinct: int = 3
    #: Token cap per chunk; ``None`` = ``token_cap_base + tokens_per_second * chunk seconds``.
    max_new_tokens: int | None = None
    tokens_per_second: float = 12.0
    token_cap_base: int = 16
    #: Target chunk length and how far around it to look for a quiet point. 30 s measured fastest on the
    #: 0.6B shape (20 s carries more context per audio second, 60 s decodes slower over a longer cache).
    chunk_seconds: float = 30.0
    search_seconds: float = 5.0
    #: Encode the next chunk while the current one decodes. ``None``: only when the encoder runs on an
    #: accelerator; on a 2-core CPU both runtimes compete for the same cores and it measured no faster.
    overlap: bool | None = None
    #: Time every word with the forced aligner (the Transcriber needs one); chunk times then snap to the
    #: first and last word.
    word_timestamps: bool = False
    #: With ``word_timestamps``: a chunk the aligner cannot handle (a language it was not trained on, or
    #: one whose word splitter needs a missing extra) gets ``words=None`` and a logged warning instead of
    #: an error.
    align_best_effort: bool = False
    #: Benchmarks only: decode exactly the token cap, ignoring end-of-sequence tokens.
    ignore_eos: bool = False

    def __post_init__(self) -> None:
        if not self.temperatures or any(t < 0 for t in self.temperatures):
            raise UnsupportedOptionError(f"temperatures must be a non-empty sequence of values >= 0, got {self.temperatures}")
        if self.chunk_seconds <= 0 or self.search_seconds < 0 or self.search_seconds >= self.chunk_seconds:
            raise UnsupportedOptionError("chunk_seconds must be > 0 and 0 <= search_seconds < chunk_seconds")
        if self.loop_window < 2 or self.loop_distinct < 1:
            raise UnsupportedOptionError("loop_window must be >= 2 and loop_distinct >= 1")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise UnsupportedOptionError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        SamplingOptions(top_k=self.top_k, top_p=self.top_p)  # validates both

    def token_cap(self, seconds: float) -> int:
        """The token budget of a chunk of ``seconds``."""
        return self.max_new_tokens or max(1, self.token_cap_base + math.ceil(self.tokens_per_second * seconds))


@dataclass(frozen=True)
class ChunkResult:
    """One transcribed chunk of the input."""

    index: int
    #: Position in the input, in seconds.
    start: float
    end: float
    text: str
    #: Token ids of ``text`` (the language header and end-of-sequence excluded).
    tokens: tuple[int, ...]
    #: Prompt language name detected (or forced); ``""`` for no speech or no header.
    language: str
    avg_logprob: float
    compression_ratio: float
    #: Probability the model gave to "no speech" (``language None``; with a forced language, an
    #: immediate end of sequence).
    no_speech_prob: float
    #: Temperature of the decode that was kept.
    temperature: float
    #: The decode hit the token cap: the text may be incomplete.
    truncated: bool
    #: The kept decode still failed the repetition checks (every temperature was tried).
    repetitive: bool
    #: Word timings (``word_timestamps=True``), else ``None``.
    words: tuple[WordTiming, ...] | None = None
    #: The chunk's audio span in seconds (``start``/``end`` snap to the words when they are timed).
    audio_start: float = 0.0
    audio_end: float = 0.0


@dataclass
class PipelineStats:
    """Where the time of the last transcription went (seconds; stages overlap when ``overlap`` is on)."""

    audio_seconds: float = 0.0
    chunks: int = 0
    encode_seconds: float = 0.0
    #: Audio rows and text tokens of the prompts built (once per chunk).
    prompt_audio_tokens: int = 0
    prompt_text_tokens: int = 0
    #: Tokens llama.cpp actually evaluated in prompt batches (retries reuse the prompt's cache).
    prompt_tokens: int = 0
    prefill_seconds: float = 0.0
    generated_tokens: int = 0
    generate_seconds: float = 0.0
    decode_wall_seconds: float = 0.0
    align_seconds: float = 0.0
    wall_seconds: float = 0.0
    attempts: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class EncodedChunk:
    """A chunk of the input after the audio encoder: its position (samples) and its audio embeddings."""

    index: int
    start: int
    end: int
    embeds: np.ndarray
    seconds: float
