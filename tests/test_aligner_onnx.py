"""The aligner's decoder as an onnxruntime graph (convert/onnx_aligner.py, engine/aligner_onnx.py): its classes
agree with the official fp32 aligner, the converter writes it, ``ForcedAligner`` runs it when the folder has it."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from qwc_fixtures import ALIGN_CASES

from qwen_whisper_compat.convert import convert_checkpoint
from qwen_whisper_compat.engine.aligner import ForcedAligner
from qwen_whisper_compat.engine.aligner_onnx import OnnxAlignerDecoder
from qwen_whisper_compat.engine.modeldir import load_model_dir
from qwen_whisper_compat.engine.prompt import Prompt
from qwen_whisper_compat.engine.words import split_words
from qwen_whisper_compat.errors import ConversionError, ModelFolderError

#: Measured on the tiny parity aligner (seed 2, "peaky" N(0, 0.3) weights), the ALIGN_CASES prompts:
#: fp32 graph 1.0, int8 graph 0.94 (benchmarks/results/aligner_fidelity.md has the real clips).
INT8_AGREEMENT_FLOOR = 0.85


@pytest.fixture(scope="module")
def folders(
    aligner_ckpt: Path, converted: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """The tiny aligner converted as the converter does by default (int8 graph), with an fp32 graph, and
    with none."""
    root = tmp_path_factory.mktemp("aligner-graphs")
    out = {"int8": converted(aligner_ckpt, "fp32", "f32")}
    for graph in ("fp32", "none"):
        out[graph] = root / graph
        convert_checkpoint(aligner_ckpt, out[graph], "fp32", "f32", aligner_graph=graph)
    return out


@pytest.fixture(scope="module")
def prompts(folders: dict[str, Path], jfk: np.ndarray, zh20s: np.ndarray) -> list[tuple[np.ndarray, list[int]]]:
    """Prompt rows and slots of the parity cases, built as ``ForcedAligner.align_units`` builds them."""
    clips = {"jfk": jfk, "zh20s": zh20s}
    out = []
    with ForcedAligner(folders["none"], exact=True) as base:
        for clip, language, text in ALIGN_CASES.values():
            feats = base.encoder(_mel(clips[clip]))
            ids = [base.tokens.audio_start, *[base.tokens.audio_pad] * len(feats), base.tokens.audio_end]
            slots: list[int] = []
            for unit in split_words(text, language):
                ids += base.decoder.tokenize(unit)
                slots += [len(ids), len(ids) + 1]
                ids += [base.timestamp] * 2
            out.append((Prompt(ids, 1, len(feats)).embed(base.decoder.token_embeddings, feats), slots))
    return out


def _mel(audio: np.ndarray) -> np.ndarray:
    from qwen_whisper_compat.engine.mel import log_mel_spectrogram

    return log_mel_spectrogram(audio)


def _agreement(official_aligner, decoder: OnnxAlignerDecoder, prompts) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Share of slots whose class equals the official fp32 decoder's, and the largest logit difference."""
    thinker = official_aligner.model.thinker
    same, total, worst = 0, 0, 0.0
    for embeds, slots in prompts:
        with torch.no_grad():
            hidden = thinker.model(inputs_embeds=torch.from_numpy(embeds)[None]).last_hidden_state[0]
            ref = thinker.lm_head(hidden[slots]).numpy()
        got = decoder.logits(embeds, slots)
        same += int((got.argmax(1) == ref.argmax(1)).sum())
        total += len(slots)
        worst = max(worst, float(np.abs(got - ref).max()))
    return same / total, worst


def _decoder(folder: Path) -> OnnxAlignerDecoder:
    d = load_model_dir(folder)
    return OnnxAlignerDecoder(d.file_path("aligner_decoder"), d.file_path("decoder"), threads=2)


def test_fp32_graph_equals_official(official_aligner, folders: dict[str, Path], prompts) -> None:  # type: ignore[no-untyped-def]
    dec = _decoder(folders["fp32"])
    agreement, worst = _agreement(official_aligner, dec, prompts)
    dec.close()
    assert agreement == 1.0
    assert worst < 1e-3


def test_int8_graph_agrees_with_official(official_aligner, folders: dict[str, Path], prompts) -> None:  # type: ignore[no-untyped-def]
    dec = _decoder(folders["int8"])
    agreement, _ = _agreement(official_aligner, dec, prompts)
    dec.close()
    print(f"int8 graph class agreement with the official fp32 aligner: {agreement:.4f}")
    assert agreement >= INT8_AGREEMENT_FLOOR


def test_converter_writes_the_graph(folders: dict[str, Path], asr_ckpt: Path, converted: Callable[..., Path]) -> None:
    for name in ("int8", "fp32"):
        manifest = load_model_dir(folders[name]).manifest
        graph = manifest.file("aligner_decoder")
        assert (graph.precision, graph.path) == (name, f"aligner_decoder.{name}.onnx")
        assert sorted(p.name for p in folders[name].glob("aligner_decoder*")) == [graph.path]
    roles = {f.role for f in load_model_dir(folders["none"]).manifest.files}
    assert "aligner_decoder" not in roles and "timestamp_head" in roles
    asr_roles = {f.role for f in load_model_dir(converted(asr_ckpt, "fp32", "f32")).manifest.files}
    assert "aligner_decoder" not in asr_roles
    with pytest.raises(ConversionError, match="aligner graph precision"):
        convert_checkpoint(asr_ckpt, folders["none"].parent / "bad", aligner_graph="int4")


def test_manifest_without_the_role_still_loads(folders: dict[str, Path], tmp_path: Path) -> None:
    data = json.loads((folders["none"] / "manifest.json").read_text())
    assert all(f["role"] != "aligner_decoder" for f in data["files"])
    with ForcedAligner(folders["none"]) as a:
        assert a.engine == "llama"
        assert a.align(np.zeros(16000, np.float32), "hello world", "English")
    with pytest.raises(ModelFolderError, match="no aligner decoder graph"):
        ForcedAligner(folders["none"], engine="onnx")


@pytest.mark.parametrize("graph", ["fp32", "int8"])
@pytest.mark.parametrize("case", ["english", "chinese"])
def test_forced_aligner_uses_the_graph(
    folders: dict[str, Path], jfk: np.ndarray, zh20s: np.ndarray, graph: str, case: str
) -> None:
    clip, language, text = ALIGN_CASES[case]
    audio = {"jfk": jfk, "zh20s": zh20s}[clip]
    with ForcedAligner(folders[graph], threads=2) as onnx_path, ForcedAligner(folders[graph], engine="llama") as llama:
        assert onnx_path.engine == "onnx" and llama.engine == "llama"
        assert isinstance(onnx_path.decoder, OnnxAlignerDecoder)
        words = onnx_path.align(audio, text, language)
        expected = llama.align(audio, text, language)
    assert [w.word for w in words] == [w.word for w in expected]
    starts = np.array([[w.start, w.end] for w in words])
    ref = np.array([[w.start, w.end] for w in expected])
    if graph == "fp32":
        np.testing.assert_allclose(starts, ref, atol=1e-9)
    else:  # int8 moves a few slots by a class or more; most words keep their times
        assert np.mean(np.abs(starts - ref) <= 0.08) >= 0.75


def test_exact_keeps_the_llama_path_unless_the_graph_is_fp32(folders: dict[str, Path]) -> None:
    with ForcedAligner(folders["int8"], exact=True) as a:
        assert a.engine == "llama"
    with ForcedAligner(folders["fp32"], exact=True) as a:
        assert a.engine == "onnx"


def test_threads_share_one_aligner(folders: dict[str, Path], jfk: np.ndarray) -> None:
    _clip, language, text = ALIGN_CASES["english"]
    with ForcedAligner(folders["int8"], threads=1) as aligner:
        alone = aligner.align(jfk, text, language)
        results: list[object] = [None] * 4
        errors: list[BaseException] = []

        def work(i: int) -> None:
            try:
                results[i] = aligner.align(jfk, text, language, priority=i % 2)
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert all(r == alone for r in results)
        assert aligner.decoder.turns.stats.turns >= 5
