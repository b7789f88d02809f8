"""The plugin system: built-ins and an installed entry-point plugin (tests/plugins/qwc-test-plugin, the ``upper``
format and post-processor) through the same path, the allow-list, idempotent loading, broken plugins, model
sources and text post-processing (Python API and CLI)."""

from __future__ import annotations

import json
import logging
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qwc_fixtures import install_distribution, run_cli

import qwen_whisper_compat as whisper
from qwen_whisper_compat import plugins
from qwen_whisper_compat.errors import UnknownModelError, UnsupportedOptionError
from qwen_whisper_compat.postprocess import apply, realign_words
from qwen_whisper_compat.recognizer import WordTiming
from qwen_whisper_compat.utils import WRITERS, WriteSRT, get_writer

TEST_PLUGIN = Path(__file__).parent / "plugins" / "qwc-test-plugin"
WHISPER_FORMATS = ["txt", "vtt", "srt", "tsv", "json"]
RESULT = {
    "text": " Ask not. 二十三个人",
    "segments": [
        {"id": 0, "seek": 0, "start": 0.0, "end": 1.5, "text": " Ask not."},
        {"id": 1, "seek": 0, "start": 1.5, "end": 3.0, "text": "二十三个人"},
    ],
    "language": "en",
}


@pytest.fixture(scope="session")
def test_plugin() -> str:
    """The test plugin distribution, installed into this environment; its entry-point name."""
    install_distribution(TEST_PLUGIN)
    return "upper"


@pytest.fixture
def use_plugins(monkeypatch: pytest.MonkeyPatch, test_plugin: str) -> Iterator[Callable[[str | None], None]]:
    """Set the allow-list (``None``: unset = every plugin) and start from an unloaded manager."""

    def use(allow: str | None) -> None:
        if allow is None:
            monkeypatch.delenv(plugins.PLUGINS_ENV, raising=False)
        else:
            monkeypatch.setenv(plugins.PLUGINS_ENV, allow)
        plugins.reset_plugins()

    use(test_plugin)
    yield use
    plugins.reset_plugins()  # leave no plugin of this test registered in the process-wide manager


# ------------------------------------------------------------------------------------------ registries
def test_entry_point_plugin_adds_a_format_after_the_builtins(use_plugins: Callable[[str | None], None]) -> None:
    found = plugins.writers()
    assert list(found)[:5] == WHISPER_FORMATS and found["srt"] is WriteSRT
    assert found["upper"].__module__ == "qwc_test_plugin"
    assert "upper" in plugins.postprocessors()
    assert list(plugins.model_sources()) == ["hub"]


def test_get_writer_writes_a_plugin_format(use_plugins: Callable[[str | None], None], tmp_path: Path) -> None:
    get_writer("upper", str(tmp_path))(RESULT, "/audio/talk.mp3")
    assert (tmp_path / "talk.upper").read_text(encoding="utf-8") == "ASK NOT.\n二十三个人\n"
    get_writer("all", str(tmp_path))(RESULT, "other.wav")  # "all" stays whisper's five
    assert sorted(p.suffix for p in tmp_path.glob("other.*")) == sorted("." + f for f in WHISPER_FORMATS)


@pytest.mark.parametrize("allow", ["", "someone-else", " , "])
def test_allow_list_excludes_the_plugin(
    use_plugins: Callable[[str | None], None], tmp_path: Path, allow: str
) -> None:
    use_plugins(allow)
    assert list(plugins.writers()) == WHISPER_FORMATS  # built-ins load whatever the list says
    assert "upper" not in plugins.postprocessors()
    assert "upper" not in dict(plugins.get_plugin_manager().list_name_plugin())
    with pytest.raises(KeyError, match="unknown output format 'upper'; expected one of: txt, vtt, srt, tsv, json, all"):
        get_writer("upper", str(tmp_path))


@pytest.mark.parametrize("allow", [None, "upper", "other,UPPER", "qwc_test_plugin", "QWC-Test-Plugin"])
def test_allow_list_includes_the_plugin(use_plugins: Callable[[str | None], None], allow: str | None) -> None:
    """Unset loads every plugin; names are entry-point or distribution names, compared as pip compares them."""
    use_plugins(allow)
    assert "upper" in plugins.writers()


def test_loading_is_lazy_and_idempotent(use_plugins: Callable[[str | None], None]) -> None:
    pm = plugins.get_plugin_manager()
    assert plugins.get_plugin_manager() is pm
    names = [name for name, _ in pm.list_name_plugin()]
    assert names.count("upper") == 1 and names.count(plugins.DEFAULT_PLUGINS[0]) == 1
    assert plugins.writers() == plugins.writers()
    plugins.reset_plugins()
    assert plugins.get_plugin_manager() is not pm
    assert [name for name, _ in plugins.get_plugin_manager().list_name_plugin()] == names


# ------------------------------------------------------------------------------------------ broken plugins
BROKEN_MODULES = {
    "qwc_raising_plugin": """
        from qwen_whisper_compat.plugins import hookimpl

        @hookimpl
        def register_writers(register):
            register("half", object)
            raise RuntimeError("disk on fire")

        @hookimpl
        def register_postprocessors(register):
            register("fine", lambda text, language: text)
    """,
    "qwc_greedy_plugin": """
        from qwen_whisper_compat.plugins import hookimpl

        @hookimpl
        def register_writers(register):
            register("srt", object)        # taken by the built-in writers
            register("all", object)        # reserved
            register("a,b", object)        # not a name
            register("notcallable", 42)
            register("good", dict)
    """,
    "qwc_misspelt_plugin": """
        from qwen_whisper_compat.plugins import hookimpl

        @hookimpl
        def register_writer(register):   # no such hook
            register("misspelt", object)
    """,
}


@pytest.fixture
def broken_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, test_plugin: str) -> Iterator[None]:
    """A distribution (on sys.path for this test only) with a missing module, a plugin that raises in a hook,
    one that registers invalid or taken names and one that implements a hook that does not exist."""
    for module, source in BROKEN_MODULES.items():
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = tmp_path / "qwc_broken_plugins-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: qwc-broken-plugins\nVersion: 0.1\n")
    named = [f"{module[4:-7]} = {module}" for module in BROKEN_MODULES]  # qwc_raising_plugin -> raising
    entry_points = ["[qwen_whisper_compat]", "missing = qwc_no_such_module", *named]
    (info / "entry_points.txt").write_text("\n".join(entry_points) + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(plugins.PLUGINS_ENV, raising=False)
    plugins.reset_plugins()
    yield
    for module in BROKEN_MODULES:
        sys.modules.pop(module, None)
    plugins.reset_plugins()


def test_a_broken_plugin_is_skipped_with_a_warning(broken_plugins: None, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="qwen_whisper_compat.plugins")
    found = plugins.writers()
    assert found["srt"] is WriteSRT and found["good"] is dict and "upper" in found  # the others still work
    assert not {"half", "all", "a,b", "notcallable", "misspelt"} & set(found)
    assert "fine" in plugins.postprocessors()  # a plugin loses only the hook that raised
    loaded = dict(plugins.get_plugin_manager().list_name_plugin())
    assert "missing" not in loaded and "misspelt" not in loaded
    messages = "\n".join(r.getMessage() for r in caplog.records)
    for expected in (
        ("plugin 'missing' (qwc_no_such_module from distribution qwc-broken-plugins) was not loaded: "
         "ModuleNotFoundError"),
        ("plugin 'misspelt' (qwc_misspelt_plugin from distribution qwc-broken-plugins) was not loaded: "
         "PluginValidationError: unknown hook 'register_writer'"),
        "plugin 'raising': register_writers failed, its output formats are skipped: RuntimeError: disk on fire",
        "plugin 'greedy': output format 'srt' ignored: already registered by 'qwen_whisper_compat._builtin_plugins'",
        "plugin 'greedy': invalid output format name 'all' ignored",
        "plugin 'greedy': invalid output format name 'a,b' ignored",
        "plugin 'greedy': output format 'notcallable' ignored: 42 is not callable",
    ):
        assert expected in messages, messages
    caplog.clear()
    plugins.writers()
    assert not caplog.records  # each problem is reported once


# ------------------------------------------------------------------------------------------ model sources
class TinySource:
    """An inline model-source plugin: ``my-tiny`` is the converted tiny model; ``exploding`` raises and
    ``vanished`` gives a folder that does not exist."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @plugins.hookimpl
    def register_model_sources(self, register: Callable[[str, Any], None]) -> None:
        register("tiny-source", self.resolve)

    def resolve(self, name: str) -> Path | None:
        if name == "exploding":
            raise ConnectionError("no route to model")
        if name == "vanished":
            return self.folder / "nowhere"
        return self.folder if name == "my-tiny" else None


def test_load_model_asks_model_sources_for_unknown_names(
    use_plugins: Callable[[str | None], None], converted: Callable[..., Path], asr_ckpt: Path
) -> None:
    use_plugins("")
    plugins.get_plugin_manager().register(TinySource(converted(asr_ckpt)))
    assert list(plugins.model_sources()) == ["hub", "tiny-source"]
    model = whisper.load_model("my-tiny", device="cpu", aligner=False)
    try:
        assert model.name == "my-tiny" and model.dims.n_mels == 128
    finally:
        model.close()
    with pytest.raises(UnknownModelError, match="available models"):
        whisper.load_model("gigantic")
    with pytest.raises(whisper.ModelFolderError, match="model source 'tiny-source' failed for 'exploding'"):
        whisper.load_model("exploding")
    with pytest.raises(whisper.ModelFolderError, match="model source 'tiny-source' gave .*nowhere.* not a folder"):
        whisper.load_model("vanished")


# ------------------------------------------------------------------------------------------ post-processing
def test_apply_keeps_the_leading_space_and_drops_empty_text() -> None:
    def itn(text: str, language: str) -> str:
        return text.replace("二十三", "23") if language == "zh" else text

    assert apply([itn], "二十三个人", "zh") == "23个人"
    assert apply([itn], " 二十三", "zh") == " 23"
    assert apply([itn], "二十三个人", "ja") == "二十三个人"
    assert apply([lambda text, language: " "], " um", "en") == ""


def test_realigned_words_join_to_the_new_text() -> None:
    chars = [WordTiming(c, i, i + 1, 0.9 - i / 100) for i, c in enumerate("二十三个人")]
    assert realign_words(chars, "23个人") == (
        WordTiming("23", 0, 3, 0.88), WordTiming("个", 3, 4, 0.87), WordTiming("人", 4, 5, 0.86),
    )  # fmt: skip
    words = [WordTiming(" Um,", 0, 1, 0.5), WordTiming(" twenty", 1, 2, 0.6), WordTiming(" three.", 2, 3, 0.7)]
    assert realign_words(words, " 23.") == (WordTiming(" 23.", 0, 3, 0.5),)
    dropped = (WordTiming(" twenty", 1, 2, 0.6), WordTiming(" three!", 2, 3, 0.7))
    assert realign_words(words, " twenty three!") == dropped
    assert realign_words(words, " Um, twenty three.") == tuple(words)


def test_unknown_postprocessor_lists_the_registered_ones(use_plugins: Callable[[str | None], None]) -> None:
    with pytest.raises(UnsupportedOptionError, match="unknown post-processor 'shout'; available: .*upper"):
        plugins.resolve_postprocessors("upper,shout")
    assert plugins.resolve_postprocessors(None) == plugins.resolve_postprocessors("") == ()
    assert len(plugins.resolve_postprocessors(["upper", lambda text, language: text])) == 2


def upper(text: str, language: str) -> str:
    return text.upper()


def postprocessed(segments: list[dict[str, Any]]) -> list[str]:
    """What the ``upper`` post-processor makes of these segment texts (segments left empty are dropped)."""
    return [text for text in (apply([upper], s["text"], "en") for s in segments) if text]


def test_builtin_chinese_itn_applies_to_chinese_segments(use_plugins: Callable[[str | None], None]) -> None:
    itn = plugins.postprocessors()["chinese_itn"]
    assert itn("二十三个人", "zh") == itn("二十三个人", "") == "23个人"
    assert itn("二十三个人", "ja") == "二十三个人"  # kanji numerals in Japanese stay
    segment = apply([itn], "百分之五十", "zh")
    assert segment == "50%"
    chars = [WordTiming(c, i, i + 1, 1.0) for i, c in enumerate("百分之五十")]
    assert realign_words(chars, segment) == (WordTiming("50%", 0, 5, 1.0),)


@pytest.mark.parametrize("word_timestamps", [False, True])
def test_transcribe_postprocess(
    use_plugins: Callable[[str | None], None], tiny_whisper: Any, jfk: np.ndarray, word_timestamps: bool
) -> None:
    audio = jfk[: 5 * 16000]
    options: dict[str, Any] = {"language": "en", "temperature": 0.0, "word_timestamps": word_timestamps}
    plain = whisper.transcribe(tiny_whisper, audio, **options)
    result = whisper.transcribe(tiny_whisper, audio, **options, postprocess=["upper"])
    assert result["segments"] and result["text"] == "".join(s["text"] for s in result["segments"])
    assert [s["text"] for s in result["segments"]] == postprocessed(plain["segments"])
    for segment in result["segments"]:
        assert segment["tokens"] == tiny_whisper.recognizer.transcriber.tokenize(segment["text"])
        if word_timestamps:
            assert "".join(w["word"] for w in segment["words"]) == segment["text"]
    # a callable works too; one that empties every segment leaves none
    empty = whisper.transcribe(tiny_whisper, audio, language="en", temperature=0.0, postprocess=[lambda t, lang: ""])
    assert empty["segments"] == [] and empty["text"] == ""


# ------------------------------------------------------------------------------------------ CLI
def test_cli_writes_a_plugin_format_with_a_postprocessor(
    tmp_path: Path, model_env: dict[str, str], shared_audio: Path, test_plugin: str
) -> None:
    env = {**model_env, plugins.PLUGINS_ENV: test_plugin}
    common = ["--model", "base", "--language", "en", "--temperature", "0", "--temperature_increment_on_fallback",
              "None", str(shared_audio / "jfk.flac")]  # fmt: skip
    proc = run_cli([*common, "-f", "json", "-o", str(tmp_path / "plain")], env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    plain = json.loads((tmp_path / "plain" / "jfk.json").read_text(encoding="utf-8"))
    out = tmp_path / "out"
    proc = run_cli([*common, "-f", "upper", "--postprocess", "upper", "-o", str(out)], env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [p.name for p in out.iterdir()] == ["jfk.upper"]
    texts = postprocessed(plain["segments"])
    assert texts and (out / "jfk.upper").read_text(encoding="utf-8") == "".join(t.strip() + "\n" for t in texts)
    assert all(f"] {text}" in proc.stdout for text in texts)  # the console lines show the post-processed text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-f", "upper"], ("argument --output_format/-f: invalid choice: 'upper' (choose from 'txt', 'vtt', 'srt', "
                           "'tsv', 'json', 'all')")),
        (["--postprocess", "upper"], "argument --postprocess: invalid choice: 'upper'"),
        (["-f", "ass", "--postprocess", "upper"], "invalid choice: 'ass'"),
    ],
)  # fmt: skip
def test_cli_rejects_what_no_allowed_plugin_provides(
    tmp_path: Path, test_plugin: str, args: list[str], message: str
) -> None:
    proc = run_cli([*args, "-o", str(tmp_path / "out"), "a.wav"], {plugins.PLUGINS_ENV: ""}, tmp_path)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


def test_cli_unknown_model_is_a_usage_error(tmp_path: Path) -> None:
    proc = run_cli(["--model", "gigantic", "-o", str(tmp_path / "out"), "a.wav"], {}, tmp_path)
    assert proc.returncode == 2 and "available models" in proc.stderr and "turbo" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_builtin_writers_are_the_whisper_five() -> None:
    assert list(WRITERS) == WHISPER_FORMATS
