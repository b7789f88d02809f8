"""OpenVoiceOS: ovos-plugin-manager's own loader finds the adapters/ovos-stt plugin by its ``opm.stt`` entry point,
and the plugin transcribes jfk.flac handed over as the host's ``AudioData`` (model names resolve to the tiny
models through the mirror hub). Its answers are compared with the model called directly on the same PCM, with
the options the plugin documents (no context carried over, no aligner, temperature 0)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
from qwc_fixtures import install_distribution

from qwen_whisper_compat.audio import load_audio

ADAPTER = Path(__file__).resolve().parents[1] / "adapters" / "ovos-stt"
PLUGIN = "ovos-stt-plugin-qwen-whisper"


@pytest.fixture(scope="module")
def opm(tmp_path_factory: pytest.TempPathFactory, model_env: dict[str, str]) -> Iterator[Any]:
    """ovos-plugin-manager's STT module, imported with its config folders in a temporary home (ovos-config
    fixes them at import and creates them on first use) and with model names resolving to the tiny models."""
    home = tmp_path_factory.mktemp("ovos-home")
    xdg = {f"XDG_{kind}_HOME": str(home / kind.lower()) for kind in ("CONFIG", "DATA", "CACHE", "STATE")}
    with mock.patch.dict(os.environ, {**xdg, **model_env}):
        install_distribution(ADAPTER)
        from ovos_plugin_manager import stt

        yield stt


@pytest.fixture(scope="module")
def plugin_class(opm: Any) -> type:
    return opm.load_stt_plugin(PLUGIN)


@pytest.fixture(scope="module")
def jfk_audio(opm: Any, shared_audio: Path) -> Any:
    """jfk.flac as the host's ``AudioData``: 16-bit PCM, 16 kHz, mono."""
    from ovos_plugin_manager.utils.audio import AudioData

    pcm = (np.clip(load_audio(shared_audio / "jfk.flac"), -1, 1) * 32767).astype("<i2").tobytes()
    return AudioData(pcm, sample_rate=16000, sample_width=2)


def test_found_by_entry_point(opm: Any, plugin_class: type) -> None:
    from ovos_plugin_manager.templates.stt import STT

    assert PLUGIN in opm.find_stt_plugins()
    assert plugin_class.__name__ == "QwenWhisperSTT" and issubclass(plugin_class, STT)
    configs = opm.get_stt_module_configs(PLUGIN)  # the opm.stt.config entry point, keyed by language tag
    assert {"en", "zh", "yue"} <= set(configs) and configs["en"][0]["model"] == "small"
    assert {"en", "zh", "yue"} <= plugin_class.available_languages  # before any model is loaded


@pytest.fixture(scope="module")
def short_audio(jfk_audio: Any) -> Any:
    """The first 2 s of jfk (the tiny random models decode to their token limit: keep the extra calls short)."""
    return jfk_audio.get_segment(0, 2000)


def _samples(audio: Any) -> np.ndarray:
    """The PCM a host ``AudioData`` holds (16 kHz 16-bit mono here) as float samples, read directly."""
    assert (audio.sample_rate, audio.sample_width) == (16000, 2)
    return np.frombuffer(audio.frame_data, dtype="<i2").astype(np.float32) / 32768.0


def _direct(model: Any, audio: Any, language: str | None) -> dict[str, Any]:
    """The model called directly as the plugin documents it transcribes."""
    result: dict[str, Any] = model.transcribe(_samples(audio), language=language, temperature=0.0,
                                              condition_on_previous_text=False, align_segments=False)  # fmt: skip
    return result


def test_execute_jfk(plugin_class: type, jfk_audio: Any, short_audio: Any) -> None:
    stt = plugin_class({"model": "base", "lang": "en-US"})
    text = stt.execute(jfk_audio, "en-us")
    assert text == _direct(stt.model, jfk_audio, "en")["text"].strip() and text
    assert {"en", "zh"} <= stt.available_languages
    assert not stt.model.has_aligner  # speech-to-text needs no timestamps: no aligner by default
    short = _direct(stt.model, short_audio, "en")
    [(short_text, confidence)] = stt.transcribe(short_audio, "en-US")
    assert short_text == short["text"].strip() == stt.execute(short_audio)  # None: the instance's lang
    # the confidence is the geometric-mean token probability: exp of the token-weighted mean avg_logprob
    weights = [len(s["tokens"]) for s in short["segments"]]
    mean = sum(s["avg_logprob"] * w for s, w in zip(short["segments"], weights, strict=True)) / sum(weights)
    assert confidence == pytest.approx(np.exp(mean)) and 0.0 < confidence <= 1.0
    assert stt.execute(short_audio, "auto") == _direct(stt.model, short_audio, None)["text"].strip()
    # the package's own detection (the first 30 s, as transcribe() detects), not a second copy of it
    probs = stt.model.recognizer.language_probs(_samples(short_audio))
    code, probability = stt.detect_language(
        short_audio, ["en-US", "zh-CN", "tlh"]
    )  # a tag naming no language: left out
    best = max(("en", "zh"), key=probs.__getitem__)
    assert code == best and probability == pytest.approx(probs[best] / (probs["en"] + probs["zh"]))


def test_model_loaded_once(opm: Any, plugin_class: type, short_audio: Any) -> None:
    first = plugin_class({"model": "base", "lang": "en-US"})
    second = plugin_class({"model": "base", "lang": "zh-CN", "threads": 0})
    assert second.model is first.model
    assert second.execute(short_audio, "en-GB") == first.execute(short_audio, "en-us")
    # the listener's path: mycroft.conf's "stt" section through the host's factory
    mycroft_conf = {"lang": "en-US", "stt": {"module": PLUGIN, PLUGIN: {"model": "base"}}}
    from_factory = opm.OVOSSTTFactory.create(mycroft_conf)
    assert isinstance(from_factory, plugin_class) and from_factory.model is first.model
    assert from_factory.config["lang"] == "en-US"


def test_concurrent_instances_share_one_load(plugin_class: type) -> None:
    import qwen_whisper_compat

    config = {"model": "base", "threads": 1}  # settings no other test uses: a model not loaded yet
    loads = mock.patch.object(qwen_whisper_compat, "load_model", wraps=qwen_whisper_compat.load_model)
    with loads as load, ThreadPoolExecutor(4) as pool:
        instances = list(pool.map(lambda _: plugin_class(config), range(4)))
    assert load.call_count == 1
    assert all(stt.model is instances[0].model for stt in instances)
    assert load.call_args.kwargs["aligner"] is False and load.call_args.kwargs["threads"] == 1


def test_unsupported_language(plugin_class: type, short_audio: Any, caplog: pytest.LogCaptureFixture) -> None:
    from qwen_whisper_compat import UnsupportedOptionError

    with pytest.raises(UnsupportedOptionError, match=r"'nb-NO' \(no, norwegian\).*unsupported_language"):
        plugin_class({"model": "base"}).execute(short_audio, "nb-NO")
    with pytest.raises(UnsupportedOptionError, match=r"unknown language 'tlh'.*unsupported_language"):
        plugin_class({"model": "base"}).execute(short_audio, "tlh")
    detecting = plugin_class({"model": "base", "unsupported_language": "detect"})
    detected = _direct(detecting.model, short_audio, None)["text"].strip()
    with caplog.at_level(logging.WARNING, logger="ovos_stt_plugin_qwen_whisper"):
        assert detecting.execute(short_audio, "nb-NO") == detected == detecting.execute(short_audio, "nb-NO")
    warned = [r.getMessage() for r in caplog.records if "detecting the language instead" in r.getMessage()]
    assert len(warned) == 1 and "'nb-NO'" in warned[0], "one warning per language, not one per call"
    with pytest.raises(ValueError, match="unsupported_language"):
        plugin_class({"model": "base", "unsupported_language": "guess"})


def test_config_and_language_tags(plugin_class: type) -> None:
    from ovos_stt_plugin_qwen_whisper import PluginOptions

    fasterwhisper_style = PluginOptions.from_config({"model": "turbo", "use_cuda": True, "cpu_threads": 4})
    assert (fasterwhisper_style.device, fasterwhisper_style.threads, fasterwhisper_style.aligner) == ("cuda", 4, False)
    hinted = PluginOptions.from_config({"initial_prompt": "Mycroft skills.", "hotwords": ["OVOS", "Neon"]})
    assert hinted.initial_prompt == "Mycroft skills. OVOS, Neon"


def test_host_language_tags_reach_the_model_as_whisper_codes(plugin_class: type, short_audio: Any) -> None:
    """OVOS's tags (``en-us``, ``de_CH``, ``zh-TW``, ...) through the package's one tag mapping: the plugin
    transcribes in the code each one names (checked on the language the model is asked for)."""
    import qwen_whisper_compat

    stt = plugin_class({"model": "base"})
    asked = []

    def spy(model: Any, audio: Any, **kwargs: Any) -> Any:
        asked.append(kwargs["language"])
        return {"text": "", "segments": [], "language": kwargs["language"]}

    # the tiny model's languages are de, en, fr, ja, ko, yue and zh (fil -> tl is in tests/test_language_tags.py)
    tags = ("en-us", "de_CH", "zh-Hans-CN", "zh-TW", "yue", "zh-yue", "English", "EN", "cmn", "ja-JP", "fr-CA")
    with mock.patch.object(qwen_whisper_compat.Whisper, "transcribe", spy):
        for tag in tags:
            stt.execute(short_audio, tag)
    assert asked == ["en", "de", "zh", "zh", "yue", "yue", "en", "en", "zh", "ja", "fr"]
