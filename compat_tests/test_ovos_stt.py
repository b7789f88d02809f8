"""OpenVoiceOS: ovos-plugin-manager's own loader finds the adapters/ovos-stt plugin by its ``opm.stt`` entry point,
and the plugin transcribes jfk.flac handed over as the host's ``AudioData`` (model names resolve to the tiny
models through the mirror hub)."""

from __future__ import annotations

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


def test_execute_jfk(plugin_class: type, jfk_audio: Any, short_audio: Any) -> None:
    stt = plugin_class({"model": "base", "lang": "en-US"})
    text = stt.execute(jfk_audio, "en-us")
    assert isinstance(text, str) and text.strip()
    assert {"en", "zh"} <= stt.available_languages
    assert not stt.model.has_aligner  # speech-to-text needs no timestamps: no aligner by default
    [(short_text, confidence)] = stt.transcribe(short_audio, "en-US")
    assert short_text == stt.execute(short_audio) and 0.0 < confidence <= 1.0  # None: the instance's lang
    assert isinstance(stt.execute(short_audio, "auto"), str)
    code, probability = stt.detect_language(short_audio, ["en-US", "zh-CN"])
    assert code in ("en", "zh") and 0.0 < probability <= 1.0


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
    with mock.patch.object(qwen_whisper_compat, "load_model", wraps=qwen_whisper_compat.load_model) as load:
        with ThreadPoolExecutor(4) as pool:
            instances = list(pool.map(lambda _: plugin_class(config), range(4)))
    assert load.call_count == 1
    assert all(stt.model is instances[0].model for stt in instances)
    assert load.call_args.kwargs["aligner"] is False and load.call_args.kwargs["threads"] == 1


def test_unsupported_language(plugin_class: type, short_audio: Any) -> None:
    from qwen_whisper_compat import UnsupportedOptionError

    with pytest.raises(UnsupportedOptionError, match=r"'nb-NO'.*unsupported_language"):
        plugin_class({"model": "base"}).execute(short_audio, "nb-NO")
    detecting = plugin_class({"model": "base", "unsupported_language": "detect"})
    assert isinstance(detecting.execute(short_audio, "nb-NO"), str)
    with pytest.raises(ValueError, match="unsupported_language"):
        plugin_class({"model": "base", "unsupported_language": "guess"})


def test_config_and_language_tags(plugin_class: type) -> None:
    from ovos_stt_plugin_qwen_whisper import PluginOptions, whisper_code

    fasterwhisper_style = PluginOptions.from_config({"model": "turbo", "use_cuda": True, "cpu_threads": 4})
    assert (fasterwhisper_style.device, fasterwhisper_style.threads, fasterwhisper_style.aligner) == ("cuda", 4, False)
    hinted = PluginOptions.from_config({"initial_prompt": "Mycroft skills.", "hotwords": ["OVOS", "Neon"]})
    assert hinted.initial_prompt == "Mycroft skills. OVOS, Neon"
    assert [whisper_code(t) for t in ("en-us", "pt_BR", "zh-Hans-CN", "yue", "fil-PH", "English")] == [
        "en", "pt", "zh", "yue", "tl", "en",
    ]  # fmt: skip
