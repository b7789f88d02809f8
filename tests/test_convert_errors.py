"""Bad input to the converter: one clear line on stderr, exit status 1, and nothing left behind."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from qwen_whisper_compat.convert.cli import main


@pytest.fixture
def ckpt_copy(asr_ckpt: Path, tmp_path: Path) -> Path:
    src = tmp_path / "src" / "Qwen3-ASR-tiny"
    shutil.copytree(asr_ckpt, src)
    return src


def run_failing(capsys: pytest.CaptureFixture[str], src: Path, out: Path, *extra: str) -> str:
    rc = main([str(src), str(out), "-q", *extra])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 1
    assert len(lines) == 1, err
    assert lines[0].startswith("qwen-whisper-convert: error: ")
    return lines[0]


def assert_nothing_left(out: Path) -> None:
    assert not out.exists()
    if out.parent.exists():
        leftovers = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")]
        assert leftovers == []


def test_missing_source_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    line = run_failing(capsys, tmp_path / "nope", tmp_path / "out")
    assert "does not exist" in line
    assert_nothing_left(tmp_path / "out")


def test_folder_without_config(capsys: pytest.CaptureFixture[str], ckpt_copy: Path, tmp_path: Path) -> None:
    (ckpt_copy / "config.json").unlink()
    line = run_failing(capsys, ckpt_copy, tmp_path / "out")
    assert "no config.json" in line
    assert_nothing_left(tmp_path / "out")


def test_wrong_model_type(capsys: pytest.CaptureFixture[str], ckpt_copy: Path, tmp_path: Path) -> None:
    cfg = json.loads((ckpt_copy / "config.json").read_text())
    cfg["model_type"] = "whisper"
    (ckpt_copy / "config.json").write_text(json.dumps(cfg))
    line = run_failing(capsys, ckpt_copy, tmp_path / "out")
    assert "not a Qwen3-ASR checkpoint" in line and "'whisper'" in line
    assert_nothing_left(tmp_path / "out")


def test_missing_weights(capsys: pytest.CaptureFixture[str], ckpt_copy: Path, tmp_path: Path) -> None:
    (ckpt_copy / "model.safetensors").unlink()
    line = run_failing(capsys, ckpt_copy, tmp_path / "out")
    assert "model.safetensors" in line
    assert_nothing_left(tmp_path / "out")


def test_truncated_safetensors(capsys: pytest.CaptureFixture[str], ckpt_copy: Path, tmp_path: Path) -> None:
    weights = ckpt_copy / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    line = run_failing(capsys, ckpt_copy, tmp_path / "out")
    assert "truncated" in line and "model.safetensors" in line
    assert_nothing_left(tmp_path / "out")


def test_missing_shard(capsys: pytest.CaptureFixture[str], ckpt_copy: Path, tmp_path: Path) -> None:
    index = {"metadata": {}, "weight_map": {"thinker.model.norm.weight": "model-00002-of-00002.safetensors"}}
    (ckpt_copy / "model.safetensors.index.json").write_text(json.dumps(index))
    line = run_failing(capsys, ckpt_copy, tmp_path / "out")
    assert "model-00002-of-00002.safetensors" in line
    assert_nothing_left(tmp_path / "out")


def test_missing_tokenizer(capsys: pytest.CaptureFixture[str], ckpt_copy: Path, tmp_path: Path) -> None:
    for name in ("vocab.json", "merges.txt", "tokenizer.json"):
        (ckpt_copy / name).unlink()
    line = run_failing(capsys, ckpt_copy, tmp_path / "out")
    assert "no tokenizer" in line
    assert_nothing_left(tmp_path / "out")


def test_failure_after_writing_starts_leaves_nothing(
    capsys: pytest.CaptureFixture[str], ckpt_copy: Path, tmp_path: Path
) -> None:
    """config.json promises a decoder layer the weights lack: found only after the encoder is written."""
    cfg = json.loads((ckpt_copy / "config.json").read_text())
    cfg["thinker_config"]["text_config"]["num_hidden_layers"] = 3
    (ckpt_copy / "config.json").write_text(json.dumps(cfg))
    out = tmp_path / "out"
    line = run_failing(capsys, ckpt_copy, out)
    assert "lacks" in line and "layers.2" in line
    assert_nothing_left(out)


def test_unwritable_output(capsys: pytest.CaptureFixture[str], asr_ckpt: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    line = run_failing(capsys, asr_ckpt, blocker / "model")
    assert "cannot write" in line
    assert blocker.read_text() == "not a folder"


def test_existing_output_is_not_overwritten(
    capsys: pytest.CaptureFixture[str], asr_ckpt: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    line = run_failing(capsys, asr_ckpt, out)
    assert "already exists" in line and "--force" in line
    assert (out / "keep.txt").read_text() == "mine"


def test_force_replaces_existing_output(asr_ckpt: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    assert main([str(asr_ckpt), str(out), "-q", "--force", "--decoder", "f16"]) == 0
    assert not (out / "old.txt").exists() and (out / "manifest.json").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_interrupted_conversion_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch, asr_ckpt: Path, tmp_path: Path
) -> None:
    from qwen_whisper_compat.convert import converter

    def interrupt(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(converter, "write_decoder_gguf", interrupt)
    out = tmp_path / "out"
    assert main([str(asr_ckpt), str(out), "-q"]) == 130
    assert_nothing_left(out)


def test_unknown_precision_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], asr_ckpt: Path, tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as exc:
        main([str(asr_ckpt), str(tmp_path / "out"), "--decoder", "q3_k"])
    assert exc.value.code == 2
    assert "invalid choice: 'q3_k'" in capsys.readouterr().err
    assert_nothing_left(tmp_path / "out")


def test_incomplete_config_names_the_missing_field(
    capsys: pytest.CaptureFixture[str], tiny_checkpoint: Callable[..., Path], tmp_path: Path
) -> None:
    src = tmp_path / "aligner"
    shutil.copytree(tiny_checkpoint("aligner"), src)
    cfg = json.loads((src / "config.json").read_text())
    del cfg["thinker_config"]["audio_config"]["d_model"]
    (src / "config.json").write_text(json.dumps(cfg))
    line = run_failing(capsys, src, tmp_path / "out")
    assert "d_model" in line
    assert_nothing_left(tmp_path / "out")
