"""The real yt-dlp runs our post-processor plugin (``adapters/yt-dlp``) on a local media file.

yt-dlp is run as a subprocess, as users run it, with ``--enable-file-urls`` on a clip made from the shared
jfk recording; model names resolve to the tiny models through the mirror hub (``model_env``).
"""

from __future__ import annotations

import importlib
import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import srt
from qwc_fixtures import install_distribution
from yt_dlp.utils import PostProcessingError

ADAPTER = Path(__file__).resolve().parents[1] / "adapters" / "yt-dlp"


@pytest.fixture(scope="module")
def plugin() -> ModuleType:
    """The installed plugin module (installs ``adapters/yt-dlp`` into the test environment)."""
    install_distribution(ADAPTER)
    return importlib.import_module("yt_dlp_plugins.postprocessor.qwen_whisper")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory, shared_audio: Path) -> Path:
    """The first 4 s of jfk.flac as AAC in an .m4a file, a format yt-dlp downloads and can embed subtitles in."""
    import av

    path = tmp_path_factory.mktemp("media") / "clip.m4a"
    with av.open(str(shared_audio / "jfk.flac")) as source, av.open(str(path), "w") as target:
        audio = source.streams.audio[0]
        stream = target.add_stream("aac", rate=audio.rate, layout="mono")
        for frame in source.decode(audio):
            if frame.time is not None and frame.time >= 4.0:
                break
            frame.pts = None
            for packet in stream.encode(frame):
                target.mux(packet)
        for packet in stream.encode(None):
            target.mux(packet)
    return path


def run_ytdlp(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m yt_dlp`` with the plugins enabled, no user configuration and no progress lines."""
    full_env = {**os.environ, **env, "PYTHONUTF8": "1", "PYTHONIOENCODING": "utf-8", "PYTHONUNBUFFERED": "1"}
    full_env.pop("YTDLP_NO_PLUGINS", None)
    return subprocess.run(
        [sys.executable, "-m", "yt_dlp", "--ignore-config", "--no-progress", "--enable-file-urls", *args],
        capture_output=True, text=True, encoding="utf-8", env=full_env, cwd=cwd, timeout=900, check=False,
    )  # fmt: skip


def cues_of(path: Path) -> list[srt.Subtitle]:
    cues = list(srt.parse(path.read_text(encoding="utf-8")))
    assert cues and all(c.start <= c.end for c in cues)
    assert all(a.start <= b.start for a, b in itertools.pairwise(cues))
    return cues


def test_ytdlp_lists_the_plugin(plugin: ModuleType, clip: Path, tmp_path: Path) -> None:
    proc = run_ytdlp(["--verbose", "--simulate", clip.as_uri()], {}, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "[debug] Post-Processor Plugins: QwenWhisperPP" in proc.stderr


def test_ytdlp_writes_srt_next_to_the_download(
    plugin: ModuleType, clip: Path, tmp_path: Path, model_env: dict[str, str], tiny_whisper: Any
) -> None:
    out = tmp_path / "out"
    proc = run_ytdlp(
        ["-o", str(out / "%(title)s.%(ext)s"), "--use-postprocessor",
         "QwenWhisper:when=after_move;model=base;language=en", clip.as_uri()],
        model_env, tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    media, subtitle = out / "clip.m4a", out / "clip.srt"
    assert media.is_file() and subtitle.is_file()
    cues_of(subtitle)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("[QwenWhisper] ")]
    assert lines[0] == '[QwenWhisper] Loading model "base"'
    assert f'[QwenWhisper] Transcribing "{media}"' in lines
    assert f'[QwenWhisper] Writing srt to: "{subtitle}"' in lines
    # The plugin passes the package's result through unchanged: the package writes the same file.
    from qwen_whisper_compat.utils import get_writer

    result = tiny_whisper.transcribe(str(clip), language="en")
    get_writer("srt", str(tmp_path))(result, str(clip))
    assert subtitle.read_bytes() == (tmp_path / "clip.srt").read_bytes()


def test_default_stage_moves_the_output_out_of_the_temp_folder(
    plugin: ModuleType, clip: Path, tmp_path: Path, model_env: dict[str, str]
) -> None:
    home, temp = tmp_path / "home", tmp_path / "temp"
    proc = run_ytdlp(
        ["-P", f"home:{home}", "-P", f"temp:{temp}", "-o", "%(title)s.%(ext)s", "--use-postprocessor",
         "QwenWhisper:model=base;language=English;format=vtt;word-timestamps=True;max_line_width=30", clip.as_uri()],
        model_env, tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    vtt = home / "clip.vtt"
    assert (home / "clip.m4a").is_file() and vtt.is_file()
    assert not temp.exists() or not list(temp.rglob("*.vtt"))
    text = vtt.read_text(encoding="utf-8")
    assert text.startswith("WEBVTT\n") and " --> " in text
    assert f'[QwenWhisper] Writing vtt to: "{temp / "clip.vtt"}"' in proc.stdout


def test_failing_model_path_is_reported_and_fails_the_run(
    plugin: ModuleType, clip: Path, tmp_path: Path, model_env: dict[str, str]
) -> None:
    out = tmp_path / "out"
    proc = run_ytdlp(
        ["-o", str(out / "%(title)s.%(ext)s"), "--use-postprocessor",
         "QwenWhisper:when=after_move;model=/nonexistent", clip.as_uri()],
        model_env, tmp_path,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "ERROR: Postprocessing: [QwenWhisper] cannot load model '/nonexistent':" in proc.stderr
    assert "available models" in proc.stderr  # the package's own message, with the valid names
    assert "Traceback" not in proc.stderr
    assert not (out / "clip.srt").exists()


def test_bad_option_stops_yt_dlp_before_downloading(plugin: ModuleType, clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run_ytdlp(
        ["-o", str(out / "%(title)s.%(ext)s"), "--use-postprocessor", "QwenWhisper:word_timestamp=true",
         clip.as_uri()],
        {}, tmp_path,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "ERROR: [QwenWhisper] unknown option 'word_timestamp'; the options are: model," in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_embed_subs_muxes_the_transcript(
    plugin: ModuleType, clip: Path, tmp_path: Path, model_env: dict[str, str]
) -> None:
    if not (shutil.which("ffmpeg") and shutil.which("ffprobe")):
        pytest.skip("--embed-subs needs ffmpeg and ffprobe on PATH (apt-get install ffmpeg)")
    import av

    out = tmp_path / "out"
    proc = run_ytdlp(
        ["-o", str(out / "%(title)s.%(ext)s"), "--embed-subs", "--use-postprocessor",
         "QwenWhisper:model=base;language=en", clip.as_uri()],
        model_env, tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f'[EmbedSubtitle] Embedding subtitles in "{out / "clip.m4a"}"' in proc.stdout
    with av.open(str(out / "clip.m4a")) as container:
        (track,) = container.streams.subtitles
        assert track.metadata.get("language") == "eng"
        assert track.metadata.get("handler_name") == plugin.TRACK_NAME


# --- the post-processor without yt-dlp's command line ---------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({}, {"model": "turbo", "language": None, "format": "srt", "word_timestamps": False, "output_dir": None}),
        ({"word_timestamps": "true"}, {"word_timestamps": True}),
        ({"word_timestamps": "True"}, {"word_timestamps": True}),
        ({"word_timestamps": "1"}, {"word_timestamps": True}),
        ({"word_timestamps": " yes "}, {"word_timestamps": True}),
        ({"word_timestamps": True}, {"word_timestamps": True}),
        ({"word_timestamps": "False"}, {"word_timestamps": False}),
        ({"word_timestamps": "0"}, {"word_timestamps": False}),
        ({"word-timestamps": "on"}, {"word_timestamps": True}),
        ({"language": "English"}, {"language": "en"}),
        ({"language": "ZH"}, {"language": "zh"}),
        ({"language": "mandarin"}, {"language": "zh"}),
        ({"language": "auto"}, {"language": None}),
        ({"language": ""}, {"language": None}),
        ({"format": "VTT"}, {"format": "vtt"}),
        ({"model": " qwen3-asr-0.6b-q4_k ", "device": "cpu", "initial_prompt": "ComfyUI, LoRA"},
         {"model": "qwen3-asr-0.6b-q4_k", "device": "cpu", "initial_prompt": "ComfyUI, LoRA"}),
        ({"word_timestamps": "true", "max_line_width": "42", "max_line_count": 2, "highlight_words": "true"},
         {"max_line_width": 42, "max_line_count": 2, "max_words_per_line": None, "highlight_words": True}),
        ({"output_dir": "subs", "model_dir": "/models"}, {"output_dir": "subs", "model_dir": "/models"}),
    ],
)  # fmt: skip
def test_options_are_parsed_from_strings(plugin: ModuleType, raw: dict[str, Any], expected: dict[str, Any]) -> None:
    options = plugin.QwenWhisperPP(None, **raw).options
    assert {name: getattr(options, name) for name in expected} == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"word_timestamp": "true"}, "unknown option 'word_timestamp'; the options are: model, language, format, "),
        ({"when": "after_move"}, "unknown option 'when'"),  # yt-dlp consumes it; it never reaches us
        ({"word_timestamps": "maybe"}, "word_timestamps='maybe' is not a boolean; use true or false"),
        ({"format": "ass"}, "format='ass' is not supported; use one of: srt, vtt, txt, json"),
        ({"model": ""}, "model needs a value"),
        ({"language": "klingon"}, "language='klingon' is not a language"),
        ({"language": "Latin"}, "Qwen3-ASR cannot transcribe Latin (la); it knows: "),
        ({"max_line_width": "42"}, "max_line_width requires word_timestamps=true"),
        ({"word_timestamps": "1", "max_line_count": "0"}, "max_line_count='0' is not a positive whole number"),
        ({"word_timestamps": "1", "max_words_per_line": "x"}, "max_words_per_line='x' is not a positive whole"),
    ],
)  # fmt: skip
def test_bad_options_are_clear_errors(plugin: ModuleType, raw: dict[str, Any], message: str) -> None:
    with pytest.raises(PostProcessingError) as caught:
        plugin.QwenWhisperPP(None, **raw)
    assert str(caught.value).startswith(f"[QwenWhisper] {message}")


def test_no_file_at_this_stage_is_a_clear_error(plugin: ModuleType) -> None:
    with pytest.raises(PostProcessingError, match=r"no downloaded file at this stage; use when=post_process"):
        plugin.QwenWhisperPP(None, model="base").run({"id": "clip", "_filename": "clip.m4a"})


class StubModel:
    """Stands in for a loaded model: the PP's own behaviour, without inference (yt-dlp runs the real one)."""

    def __init__(self, language: str) -> None:
        self.language = language
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def transcribe(self, audio: str, **kwargs: Any) -> dict[str, Any]:
        self.calls.append((audio, kwargs))
        segment = {"id": 0, "seek": 0, "start": 0.0, "end": 1.5, "text": " Ask not.", "tokens": [],
                   "temperature": 0.0, "avg_logprob": 0.0, "compression_ratio": 1.0, "no_speech_prob": 0.0}  # fmt: skip
        return {"text": " Ask not.", "segments": [segment], "language": kwargs["language"] or self.language}


@pytest.fixture
def stub_model(monkeypatch: pytest.MonkeyPatch) -> tuple[StubModel, list[tuple[Any, ...]]]:
    """``qwen_whisper_compat.load_model`` replaced: returns one StubModel and records its calls."""
    import qwen_whisper_compat

    model, loads = StubModel(language="de"), []

    def load_model(*args: Any, **kwargs: Any) -> StubModel:
        loads.append((*args, *kwargs.values()))
        return model

    monkeypatch.setattr(qwen_whisper_compat, "load_model", load_model)
    return model, loads


def test_run_registers_the_subtitle_and_loads_the_model_once(
    plugin: ModuleType, tmp_path: Path, stub_model: tuple[StubModel, list[tuple[Any, ...]]]
) -> None:
    model, loads = stub_model
    pp = plugin.QwenWhisperPP(
        None, model="small", format="vtt", device="cpu", output_dir=str(tmp_path / "subs"), initial_prompt="JFK"
    )
    for stem in ("first", "second"):
        media = tmp_path / f"{stem}.m4a"
        info = {"filepath": str(media), "requested_subtitles": {"en": {"ext": "vtt", "filepath": "en.vtt"}},
                "__files_to_move": {}}  # fmt: skip
        files_to_delete, info = pp.run(info)
        path = str(tmp_path / "subs" / f"{stem}.vtt")
        assert files_to_delete == [] and Path(path).read_text(encoding="utf-8").startswith("WEBVTT\n")
        assert info["requested_subtitles"] == {  # the detected language, beside the site's subtitles
            "en": {"ext": "vtt", "filepath": "en.vtt"},
            "de": {"ext": "vtt", "filepath": path, "name": plugin.TRACK_NAME},
        }
        assert info["__files_to_move"] == {}  # an explicit output_dir is where the output stays
    assert loads == [("small", "cpu", None)]
    assert [kwargs for _, kwargs in model.calls] == 2 * [
        {"verbose": None, "language": None, "word_timestamps": False, "initial_prompt": "JFK"}
    ]


def test_transcript_formats_are_not_offered_for_embedding(
    plugin: ModuleType,
    tmp_path: Path,
    stub_model: tuple[StubModel, list[tuple[Any, ...]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # yt-dlp's paths are relative to the current folder when -o is
    pp = plugin.QwenWhisperPP(None, model="base", language="en", format="txt")
    _, info = pp.run({"filepath": "talk.m4a", "requested_subtitles": None, "__files_to_move": {}})
    assert (tmp_path / "talk.txt").read_text(encoding="utf-8") == "Ask not.\n"
    assert info["requested_subtitles"] is None
    assert info["__files_to_move"] == {"talk.txt": ""}  # moved with the media by yt-dlp


def test_transcription_failure_is_a_clear_error(
    plugin: ModuleType, tmp_path: Path, stub_model: tuple[StubModel, list[tuple[Any, ...]]]
) -> None:
    from qwen_whisper_compat import AudioLoadError

    def broken(audio: str, **kwargs: Any) -> dict[str, Any]:
        raise AudioLoadError(f"cannot decode {audio}")

    stub_model[0].transcribe = broken  # type: ignore[method-assign]
    media = tmp_path / "talk.m4a"
    with pytest.raises(PostProcessingError) as caught:
        plugin.QwenWhisperPP(None, model="base").run({"filepath": str(media)})
    assert str(caught.value) == f'[QwenWhisper] cannot transcribe "{media}": cannot decode {media}'
    assert isinstance(caught.value.__cause__, AudioLoadError)


def test_video_without_audio_is_skipped(
    plugin: ModuleType, tmp_path: Path, stub_model: tuple[StubModel, list[tuple[Any, ...]]]
) -> None:
    info = {"filepath": str(tmp_path / "silent.mp4"), "vcodec": "avc1", "acodec": "none"}
    assert plugin.QwenWhisperPP(None).run(dict(info)) == ([], info)
    assert stub_model[1] == [] and not list(tmp_path.iterdir())  # no model loaded, nothing written
