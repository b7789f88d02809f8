"""PeerTube's runner with ``qwen-whisper`` as its whisper-ctranslate2 engine (issue 27, point 4; docs/peertube.md).

The command line is the one PeerTube builds (Chocobozzz/PeerTube,
packages/transcription/src/whisper/transcriber/ctranslate2-transcriber.ts, ``Ctranslate2Transcriber.transcribe``)::

    <enginePath> <media> --model <name> | --model_directory <folder> --word_timestamps True --vad_filter true
        --vad_min_silence_duration_ms 5000 --output_format all --output_dir <folder> [--language <code>]

The runner (apps/peertube-runner/src/server/process/shared/process-transcription.ts) passes no language, the model
name ``small`` unless its config sets a model folder, and the media as downloaded: ``<uuid>`` with no extension
(process/shared/common.ts, ``downloadInputFile``), into an output folder that does not exist yet. It then reads the
``language`` of ``<output_dir>/<stem>.json`` and hands on ``<output_dir>/<stem>.vtt``, the stem being
``parse(mediaFilePath).name`` (packages/transcription/src/whisper/transcriber/openai-transcriber.ts,
``getDetectedLanguage`` and ``getTranscriptFilePath``).

The clip is 4 s of silence then 5 s of jfk.flac, so that the voice activity detector has something to leave out;
the command runs as the installed ``qwen-whisper`` console script, as the runner runs its engine path. The tiny
random-weight models write random text (a cue's text may hold anything, a blank line too), so the WebVTT checks
are on its header and cue timings.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
import pytest

from qwen_whisper_compat.tokenizer import LANGUAGES

#: The media as the runner downloads it: a UUID, no extension.
MEDIA_NAME = "3f2c1a9e-7b1d-4c55-9a0e-2d6f1b8e4c21"
SILENCE_S, SPEECH_S = 4.0, 5.0
#: A WebVTT cue timing line as whisper's writer makes it (hours only when needed).
TIMING = re.compile(r"^((?:\d+:)?\d\d:\d\d\.\d{3}) --> ((?:\d+:)?\d\d:\d\d\.\d{3})$")
OUTPUTS = [f"{MEDIA_NAME}.{ext}" for ext in ("json", "srt", "tsv", "txt", "vtt")]


def peertube_argv(media: Path, model_args: list[str], output_dir: Path, output_format: str = "all") -> list[str]:
    """The arguments ctranslate2-transcriber.ts gives the engine, in its order (no ``--language``, as the runner)."""
    return [
        str(media), *model_args, "--word_timestamps", "True", "--vad_filter", "true",
        "--vad_min_silence_duration_ms", "5000", "--output_format", output_format, "--output_dir", str(output_dir),
    ]  # fmt: skip


def run_engine(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed ``qwen-whisper`` script, run as the runner runs its engine path (execa, no shell)."""
    script = shutil.which("qwen-whisper", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the qwen-whisper console script is not installed beside this Python")
    return subprocess.run(
        [script, *args], check=False, capture_output=True, text=True, encoding="utf-8",
        env={**os.environ, **env, "PYTHONUTF8": "1"}, cwd=cwd, timeout=600,
    )  # fmt: skip


def vtt_cues(text: str) -> list[tuple[float, float]]:
    """The (start, end) seconds of a WebVTT file's cues; its header is checked."""
    assert text.startswith("WEBVTT\n\n"), text[:40]

    def seconds(stamp: str) -> float:
        return sum(float(part) * 60**i for i, part in enumerate(reversed(stamp.split(":"))))

    return [(seconds(m[1]), seconds(m[2])) for line in text.splitlines() if (m := TIMING.match(line))]


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory, jfk: np.ndarray) -> Path:
    """4 s of silence then 5 s of speech, 16 kHz 16-bit wav, saved as ``<uuid>`` without an extension."""
    import av

    clip = np.concatenate([np.zeros(int(SILENCE_S * 16000), np.float32), jfk[: int(SPEECH_S * 16000)]])
    samples = (clip * 32767).astype(np.int16)
    path = tmp_path_factory.mktemp("transcoding") / MEDIA_NAME
    with av.open(str(path), "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="s16", layout="mono")
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def by_name(
    tmp_path_factory: pytest.TempPathFactory, media: Path, model_env: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """The runner's default settings (model ``small``, no model folder): PeerTube's command line, run once."""
    out = tmp_path_factory.mktemp("transcription") / "SUUID"
    return run_engine(peertube_argv(media, ["--model", "small"], out), model_env, out.parent), out


def test_peertube_command_line_writes_what_the_runner_reads(
    by_name: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    proc, out = by_name
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "ignores" not in proc.stderr  # every flag of PeerTube's means something
    assert sorted(p.name for p in out.iterdir()) == OUTPUTS
    result = json.loads((out / f"{MEDIA_NAME}.json").read_text(encoding="utf-8"))
    assert result["language"] in LANGUAGES  # what getDetectedLanguage reads
    segments = result["segments"]
    assert segments and result["text"] == "".join(s["text"] for s in segments)
    # the silence was left out, and times are the media's: the first cue starts near the speech, not at 0
    assert SILENCE_S - 0.5 <= segments[0]["start"]
    assert all(s["start"] <= s["end"] <= SILENCE_S + SPEECH_S for s in segments)
    assert all(w["start"] >= SILENCE_S - 0.5 for s in segments for w in s["words"])  # --word_timestamps True
    cues = vtt_cues((out / f"{MEDIA_NAME}.vtt").read_text(encoding="utf-8"))
    assert np.allclose(cues, [(s["start"], s["end"]) for s in segments], rtol=0, atol=5e-4)


def test_a_model_folder_gives_the_same_vtt_as_the_name(
    by_name: tuple[subprocess.CompletedProcess[str], Path],
    media: Path,
    model_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """``--model_directory`` (the runner's model folder setting) on the folder ``small`` resolves to, with its
    aligner as ``aligner/``; and ``--output_format vtt`` writes the very file ``all`` writes."""
    from qwen_whisper_compat import hub

    proc, out = by_name
    assert proc.returncode == 0, proc.stderr[-3000:]
    with mock.patch.dict(os.environ, model_env):
        resolved = hub.resolve_model("small", local_files_only=True)  # converted by the run above
    assert resolved.aligner is not None
    folder = tmp_path / "qwen3-asr-0.6b"
    shutil.copytree(resolved.asr, folder)
    shutil.copytree(resolved.aligner, folder / "aligner")
    vtt_only = tmp_path / "vtt"
    proc = run_engine(peertube_argv(media, ["--model_directory", str(folder)], vtt_only, "vtt"), model_env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [p.name for p in vtt_only.iterdir()] == [f"{MEDIA_NAME}.vtt"]
    assert (vtt_only / f"{MEDIA_NAME}.vtt").read_bytes() == (out / f"{MEDIA_NAME}.vtt").read_bytes()


def test_a_ctranslate2_model_folder_is_a_clear_error(media: Path, model_env: dict[str, str], tmp_path: Path) -> None:
    """The model folder setting left on a faster-whisper / whisper-ctranslate2 model: refused before anything loads."""
    ct2 = tmp_path / "faster-whisper-small"
    ct2.mkdir()
    for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.json"):
        (ct2 / name).write_text("{}")
    out = tmp_path / "SUUID"
    proc = run_engine(peertube_argv(media, ["--model_directory", str(ct2)], out), model_env, tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"qwen-whisper: error: --model_directory '{ct2}' is a CTranslate2 model folder")
    assert "qwen-whisper-convert" in lines[0] and "aligner/" in lines[0]
    assert not out.exists()


# ------------------------------------------------------------------------------- the flags, parsed in-process
def parse(*argv: str) -> tuple[dict[str, object], object]:
    """``qwen-whisper``'s parser with the whisper-ctranslate2 flags: (the args left for ``plan``, the ct2 options)."""
    from qwen_whisper_compat import cli, cli_ct2

    parser = cli.build_parser()
    cli_ct2.add_arguments(parser)
    args = vars(parser.parse_args([*argv, "a.wav"]))
    return args, cli_ct2.take(parser, args)


def test_flags_read_as_whisper_ctranslate2_reads_them() -> None:
    from qwen_whisper_compat.cli_ct2 import IGNORED, VAD_FLAGS, Ct2Options
    from qwen_whisper_compat.vad import VadOptions

    args, ct2 = parse("--model", "small", "--model_directory", "/m", "--vad_filter", "TRUE", "--word_timestamps", "true",
                      "--vad_min_silence_duration_ms", "5000", "--vad_threshold", "0.4", "--hotwords", "PeerTube")  # fmt: skip
    assert ct2 == Ct2Options("/m") and args["model"] == "/m" and args["word_timestamps"] is True
    assert args["vad_parameters"] == VadOptions(threshold=0.4, min_silence_duration_ms=5000)
    assert args["vad_filter"] is True and args["context"] == "PeerTube"
    assert not any(name in args for name in (*VAD_FLAGS, *IGNORED, "model_directory", "hotwords"))  # all taken
    args, ct2 = parse("--vad_filter", "False")
    assert ct2 == Ct2Options() and args["model"] == "turbo" and "vad_filter" not in args


def test_meaningless_flags_are_reported_once_each(capsys: pytest.CaptureFixture[str]) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parse("--compute_type", "int8", "--batched", "True", "--hf_token", "hf_secret", "--device_index", "0",
              "--vad_min_silence_duration_ms", "5000")  # fmt: skip
    messages = [str(w.message) for w in caught]
    assert len(messages) == 4, messages  # --device_index 0 is whisper-ctranslate2's default: nothing to say
    assert messages[0].startswith("qwen_whisper_compat ignores compute_type='int8': the precision comes from")
    assert "hf_secret" not in " ".join(messages) and "diarization" in messages[2]
    assert messages[3] == "--vad_min_silence_duration_ms: no effect without --vad_filter True"
    with pytest.raises(SystemExit):
        parse("--vad_filter", "true", "--clip_timestamps", "1,2")
    with pytest.raises(SystemExit):
        parse("--vad_filter", "true", "--vad_threshold", "1.5")
    assert "threshold must be within [0, 1]" in capsys.readouterr().err
