"""The GGUF decoder runner: generation, sampling, native log routing, lifetime."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from qwen_whisper_compat.engine.decoder import GGUFDecoder
from qwen_whisper_compat.engine.modeldir import load_model_dir
from qwen_whisper_compat.engine.sampling import Sampler, SamplingOptions


@pytest.fixture(scope="module")
def gguf_path(asr_ckpt: Path, converted: Callable[..., Path]) -> Path:
    return load_model_dir(converted(asr_ckpt, "fp32", "f32")).file_path("decoder")


@pytest.fixture(scope="module")
def decoder(gguf_path: Path):  # type: ignore[no-untyped-def]
    with GGUFDecoder(gguf_path, n_ctx=512) as dec:
        yield dec


def prompt(dec: GGUFDecoder, n: int = 40) -> np.ndarray:
    return dec.token_embeddings(list(range(1000, 1000 + n)))


def test_greedy_generation_and_logprobs(decoder: GGUFDecoder) -> None:
    emb = prompt(decoder)
    gen = decoder.generate(emb, 12, eos=())
    assert gen.stop == "max_tokens" and len(gen.tokens) == len(gen.logprobs) == 12 and gen.eos_logprob is None
    # the first token and its log-probability come from the prefill's last row
    decoder.reset()
    decoder.eval_embeddings(emb, 0, [len(emb) - 1])
    logits = decoder.logits(len(emb) - 1).astype(np.float64)
    log_softmax = logits - np.log(np.exp(logits - logits.max()).sum()) - logits.max()
    assert gen.tokens[0] == int(np.argmax(logits))
    assert gen.logprobs[0] == pytest.approx(log_softmax[gen.tokens[0]], abs=1e-4)
    assert all(lp <= 0 for lp in gen.logprobs)


def test_stops_on_eos_and_on_request(decoder: GGUFDecoder) -> None:
    emb = prompt(decoder)
    free = decoder.generate(emb, 6, eos=())
    stopped = decoder.generate(emb, 6, eos={free.tokens[2]})
    assert stopped.stop == "eos" and stopped.tokens == free.tokens[:2] and stopped.eos_logprob is not None
    aborted = decoder.generate(emb, 6, eos=(), should_stop=lambda toks: len(toks) == 3)
    assert aborted.stop == "aborted" and aborted.tokens == free.tokens[:3]


def test_step_hook_sees_every_step(decoder: GGUFDecoder) -> None:
    seen: list[tuple[int, int]] = []
    gen = decoder.generate(prompt(decoder), 5, eos=(), on_step=lambda step, tok, logits, norm: seen.append((step, tok)))
    assert [t for _, t in seen[:5]] == gen.tokens and [s for s, _ in seen] == list(range(6))


def test_context_grows_on_demand(gguf_path: Path) -> None:
    with GGUFDecoder(gguf_path, n_ctx=64) as dec:
        assert dec.n_ctx == 256  # rounded up
        with pytest.raises(ValueError, match="exceed the context"):
            dec.generate(prompt(dec, 60), 250, eos=())
        dec.ensure_context(320)
        assert dec.n_ctx == 512
        assert len(dec.generate(prompt(dec, 60), 250, eos=()).tokens) == 250


def test_native_log_goes_to_logging_not_to_the_terminal(
    gguf_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    with caplog.at_level(logging.DEBUG, logger="qwen_whisper_compat.llama"):
        GGUFDecoder(gguf_path, n_ctx=64).close()
    assert any("llama_model_loader" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if "was not control-type" in r.getMessage() and r.levelno > logging.DEBUG]
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_closed_decoder_raises_instead_of_crashing(gguf_path: Path) -> None:
    dec = GGUFDecoder(gguf_path, n_ctx=64)
    dec.close()
    dec.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        dec.tokenize("hello")
    with pytest.raises(RuntimeError, match="closed"):
        dec.generate(np.zeros((2, dec.n_embd), np.float32), 1, eos=())


#: Prefill 64 rows of a decoder with every row's logits out, in its own process; print them as .npy bytes.
BATCH_SCRIPT = """
import sys, numpy as np
from qwen_whisper_compat.engine.decoder import GGUFDecoder
with GGUFDecoder(sys.argv[1], n_ctx=256, n_threads=2) as dec:
    emb = dec.token_embeddings(list(range(1000, 1064)))
    dec.eval_embeddings(emb, 0, range(64))
    np.save(sys.stdout.buffer, np.stack([dec.logits(i) for i in range(64)]))
"""


def batch_logits(path: Path) -> np.ndarray:
    """:data:`BATCH_SCRIPT`'s logits for the decoder at ``path``; its exit status and log when it fails."""
    import io
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-c", BATCH_SCRIPT, str(path)], capture_output=True, timeout=120, check=False)
    assert run.returncode == 0, f"{path.name}: exit {run.returncode}\n{run.stderr.decode()[-2000:]}"
    return np.load(io.BytesIO(run.stdout))


@pytest.fixture(scope="module")
def f32_batch_logits(gguf_path: Path) -> np.ndarray:
    return batch_logits(gguf_path)


@pytest.mark.parametrize("precision", ["q8_0", "q4_k"])
def test_quantized_decoder_prefills_a_batch(
    asr_ckpt: Path, converted: Callable[..., Path], f32_batch_logits: np.ndarray, precision: str
) -> None:
    """llama.cpp's AMX kernels (a source build on a Sapphire Rapids or newer CPU) kill the process on a
    quantized batch: the decoder must keep them out. A fresh process, so that a crash fails this test only."""
    quantized = batch_logits(load_model_dir(converted(asr_ckpt, "fp32", precision)).file_path("decoder"))
    reference = f32_batch_logits
    cos = (quantized * reference).sum(1) / np.linalg.norm(quantized, axis=1) / np.linalg.norm(reference, axis=1)
    assert quantized.shape == reference.shape == (64, reference.shape[1])
    assert cos.min() > (0.99 if precision == "q8_0" else 0.8), f"worst row cosine {cos.min():.4f}"


def test_amx_kernels_are_kept_out_where_the_build_has_them() -> None:
    from qwen_whisper_compat.engine.llama_runtime import has_amx, model_params

    assert model_params().use_extra_bufts is not has_amx()
    assert model_params(n_gpu_layers=3).n_gpu_layers == 3


def test_sampler() -> None:
    logits = np.log(np.array([0.6, 0.3, 0.1, 1e-9], dtype=np.float32))
    assert Sampler(SamplingOptions()).choose(logits) == 0
    assert Sampler(SamplingOptions(temperature=5.0, top_k=1)).choose(logits) == 0
    # top-p applies to the tempered distribution (~0.37, 0.32, 0.25, ...): 0.3 keeps only the first token
    assert all(Sampler(SamplingOptions(temperature=5.0, top_p=0.3, seed=s)).choose(logits) == 0 for s in range(50))
    draws = [Sampler(SamplingOptions(temperature=1.0, seed=s)).choose(logits) for s in range(3000)]
    freq = np.bincount(draws, minlength=4) / len(draws)
    np.testing.assert_allclose(freq[:3], [0.6, 0.3, 0.1], atol=0.03)
    a = Sampler(SamplingOptions(temperature=1.0, seed=7))
    b = Sampler(SamplingOptions(temperature=1.0, seed=7))
    assert [a.choose(logits) for _ in range(20)] == [b.choose(logits) for _ in range(20)]
    assert Sampler(SamplingOptions()).log_normalizer(logits) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError):
        SamplingOptions(temperature=-1)


def test_retry_reuses_the_prompt_cache(decoder: GGUFDecoder) -> None:
    emb = prompt(decoder)
    hot = SamplingOptions(temperature=0.8, seed=3)
    decoder.generate(emb, 8, eos=())
    start = decoder.perf()["prompt_tokens"]
    reused = decoder.generate(emb, 8, eos=(), sampling=hot)  # same array: prompt kept, only decoding
    assert decoder.perf()["prompt_tokens"] == start
    fresh = decoder.generate(emb.copy(), 8, eos=(), sampling=hot)  # new array: prefilled again
    assert decoder.perf()["prompt_tokens"] == start + len(emb)
    assert reused.tokens == fresh.tokens
    np.testing.assert_allclose(reused.logprobs, fresh.logprobs, atol=1e-4)
