"""hub.py: model names, the download + convert cache, offline behaviour, path inputs.

Downloads come from a fake hub of tiny checkpoints (the ``hub_mirror`` fixture), through ``fetch=`` or
``QWEN_WHISPER_HUB_MIRROR``. Conversions use f32/fp32, which skips quantization.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from qwen_whisper_compat import download, hub, registry
from qwen_whisper_compat.engine.modeldir import load_model_dir
from qwen_whisper_compat.errors import ModelFolderError, ModelNotAvailableError, UnknownModelError

F32 = ("fp32", "f32")
WHISPER_ORDER = [
    "tiny.en", "tiny", "base.en", "base", "small.en", "small", "medium.en", "medium",
    "large-v1", "large-v2", "large-v3", "large", "large-v3-turbo", "turbo",
]  # fmt: skip


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (hub.CACHE_ENV, download.SOURCE_ENV, download.MIRROR_ENV, download.OFFLINE_ENV, "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)


class CountingFetch:
    """A ``Fetch`` that copies from the fake hub and records each call; optionally fails first."""

    def __init__(self, mirror: Path, fail: Callable[[str, Path], None] | None = None, delay: float = 0.0) -> None:
        self.mirror = mirror
        self.fail = fail
        self.delay = delay
        self.calls: list[str] = []

    def __call__(self, repo_id: str, staging: Path) -> None:
        self.calls.append(repo_id)
        time.sleep(self.delay)
        if self.fail is not None:
            self.fail(repo_id, staging)
        download.mirror_fetch(self.mirror, repo_id, staging)


def visible(folder: Path) -> list[str]:
    """Names in ``folder`` that do not start with a dot (nothing hidden counts as a model)."""
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []


def link(dest: Path, src: Path) -> None:
    """``dest`` as a symlink to the file or folder ``src``, or a copy where symlinks need a privilege (Windows)."""
    try:
        dest.symlink_to(src, target_is_directory=src.is_dir())
    except OSError:
        if src.is_dir():
            shutil.copytree(src, dest)
        else:
            shutil.copy2(src, dest)


def link_folder(src: Path, dest: Path) -> Path:
    """A folder whose files are symlinks to ``src``'s files (cheap copies of converted folders)."""
    dest.mkdir(parents=True)
    for p in src.iterdir():
        link(dest / p.name, p)
    return dest


@pytest.fixture(scope="module")
def asr_folder(converted: Callable[..., Path], asr_ckpt: Path) -> Path:
    return converted(asr_ckpt, "fp32", "f32")


@pytest.fixture(scope="module")
def aligner_folder(converted: Callable[..., Path], aligner_ckpt: Path) -> Path:
    return converted(aligner_ckpt, "fp32", "f32")


@pytest.fixture()
def seeded_root(tmp_path: Path, asr_folder: Path) -> Path:
    """A cache root that already holds the converted 0.6B ASR model (f32) but no aligner."""
    root = tmp_path / "cache"
    link_folder(asr_folder, root / "models" / "Qwen3-ASR-0.6B-fp32-f32")
    return root


# ------------------------------------------------------------------------------------------------ names
def test_available_models_lists_whispers_names_first() -> None:
    names = registry.available_models()
    assert names[:14] == WHISPER_ORDER
    assert names[14:] == [
        f"qwen3-asr-{size}{suffix}" for size in ("0.6b", "1.7b") for suffix in ("", "-f32", "-f16", "-q8_0", "-q4_k")
    ]
    assert registry.available_aligners()[0] == "qwen3-forcedaligner-0.6b"


@pytest.mark.parametrize("name", WHISPER_ORDER)
def test_every_whisper_name_maps_to_its_checkpoint(name: str) -> None:
    spec = registry.parse_model_name(name)
    small = WHISPER_ORDER.index(name) < 6
    assert spec.repo_id == ("Qwen/Qwen3-ASR-0.6B" if small else "Qwen/Qwen3-ASR-1.7B")
    assert spec.precision == ("int8", "q8_0")


@pytest.mark.parametrize(
    ("name", "repo", "precision"),
    [
        ("qwen3-asr-0.6b", "Qwen/Qwen3-ASR-0.6B", ("int8", "q8_0")),
        ("Qwen3-ASR-1.7B", "Qwen/Qwen3-ASR-1.7B", ("int8", "q8_0")),
        ("qwen3-asr-1.7b-f32", "Qwen/Qwen3-ASR-1.7B", ("fp32", "f32")),
        ("QWEN3-ASR-0.6B-F16", "Qwen/Qwen3-ASR-0.6B", ("fp16", "f16")),
        ("qwen3-asr-0.6b-q8_0", "Qwen/Qwen3-ASR-0.6B", ("int8", "q8_0")),
        ("qwen3-asr-1.7b-q4_k", "Qwen/Qwen3-ASR-1.7B", ("int8", "q4_k")),
    ],
)
def test_qwen_names_and_precision_suffixes(name: str, repo: str, precision: tuple[str, str]) -> None:
    spec = registry.parse_model_name(name)
    assert (spec.repo_id, spec.precision, spec.name) == (repo, precision, name.lower())


def test_precision_argument_overrides_the_name() -> None:
    assert registry.parse_model_name("turbo", precision=F32).precision == F32
    assert registry.parse_model_name("qwen3-asr-1.7b-q4_k", precision="f16").precision == ("fp16", "f16")
    assert registry.parse_aligner_name("qwen3-forcedaligner-0.6b-f32").repo_id == "Qwen/Qwen3-ForcedAligner-0.6B"
    with pytest.raises(ValueError, match="encoder takes one of"):
        registry.parse_model_name("turbo", precision=("int3", "f32"))
    with pytest.raises(ValueError, match="unknown precision 'q5'"):
        registry.to_precision("q5")


def test_bad_suffix_names_the_valid_suffixes() -> None:
    with pytest.raises(UnknownModelError, match=r"'-q5_1'.*-f32 -f16 -q8_0 -q4_k") as info:
        registry.parse_model_name("qwen3-asr-1.7b-q5_1")
    assert isinstance(info.value, RuntimeError) and isinstance(info.value, ModelFolderError)


def test_unknown_name_lists_valid_names_and_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    with pytest.raises(RuntimeError, match="available models = ") as info:
        hub.resolve_model("huge-v9", download_root=root)
    assert isinstance(info.value, UnknownModelError)
    for name in ("tiny.en", "turbo", "qwen3-asr-1.7b-q4_k"):
        assert repr(name) in str(info.value)
    assert not root.exists()


def test_cache_root_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert hub.cache_root() == tmp_path / "home" / ".cache" / "qwen-whisper-compat"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hub.cache_root() == tmp_path / "xdg" / "qwen-whisper-compat"
    monkeypatch.setenv(hub.CACHE_ENV, str(tmp_path / "env"))
    assert hub.cache_root() == tmp_path / "env"
    assert hub.cache_root(tmp_path / "arg") == tmp_path / "arg"


# ------------------------------------------------------------------------------------- download + cache
def test_first_use_downloads_and_converts_then_hits_the_cache(
    tmp_path: Path, hub_mirror: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "cache"
    fetch = CountingFetch(hub_mirror)
    with caplog.at_level(logging.INFO, logger="qwen_whisper_compat.hub"):
        first = hub.resolve_model("tiny", download_root=root, fetch=fetch, precision=F32)
    assert fetch.calls == ["Qwen/Qwen3-ASR-0.6B", "Qwen/Qwen3-ForcedAligner-0.6B"]
    assert first.name == "tiny"
    assert first.asr == root / "models" / "Qwen3-ASR-0.6B-fp32-f32"
    assert first.aligner == root / "models" / "Qwen3-ForcedAligner-0.6B-fp32-f32"
    assert load_model_dir(first.asr, "asr").manifest.kind == "asr"
    assert load_model_dir(first.aligner, "aligner").manifest.kind == "aligner"
    assert visible(root / "checkpoints") == ["Qwen3-ASR-0.6B", "Qwen3-ForcedAligner-0.6B"]
    assert [p.name for p in (root / "checkpoints").iterdir() if p.name.startswith(".")] == []
    messages = [r.getMessage() for r in caplog.records if r.name == "qwen_whisper_compat.hub"]
    assert any(m.startswith("downloading Qwen/Qwen3-ASR-0.6B") for m in messages)
    assert any(m.startswith("converting ") for m in messages)

    again = hub.resolve_model("base.en", download_root=root, fetch=fetch, precision=F32)  # same checkpoint
    assert (again.asr, again.aligner) == (first.asr, first.aligner)
    assert len(fetch.calls) == 2
    offline = hub.resolve_model("small", download_root=root, local_files_only=True, precision=F32)
    assert offline.asr == first.asr


def test_mirror_env_is_a_download_source_even_offline(
    tmp_path: Path, hub_mirror: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(download.MIRROR_ENV, str(hub_mirror))
    monkeypatch.setenv(download.OFFLINE_ENV, "1")  # the mirror is a local folder: no network needed
    monkeypatch.setenv(hub.CACHE_ENV, str(tmp_path / "cache"))
    resolved = hub.resolve_model("qwen3-asr-1.7b-f32", aligner=False)
    assert resolved.asr == tmp_path / "cache" / "models" / "Qwen3-ASR-1.7B-fp32-f32"
    assert resolved.aligner is None
    assert (tmp_path / "cache" / "checkpoints" / "Qwen3-ASR-1.7B" / "model.safetensors").is_file()


def test_a_fetch_that_fails_half_way_leaves_no_model_and_the_next_attempt_resumes(
    tmp_path: Path, hub_mirror: Path
) -> None:
    root = tmp_path / "cache"

    def half_way(repo_id: str, staging: Path) -> None:
        (staging / "model-00001-of-00002.safetensors").write_bytes(b"x" * 1000)
        raise ConnectionError("connection reset by peer")

    failing = CountingFetch(hub_mirror, fail=half_way)
    with pytest.raises(ModelNotAvailableError, match="ConnectionError: connection reset by peer") as info:
        hub.resolve_model("tiny", download_root=root, aligner=False, fetch=failing, precision=F32)
    assert "Qwen/Qwen3-ASR-0.6B" in str(info.value)
    assert visible(root / "models") == [] and visible(root / "checkpoints") == []
    staging = root / "checkpoints" / ".Qwen3-ASR-0.6B.partial"
    assert (staging / "model-00001-of-00002.safetensors").is_file()  # kept, hidden, for resuming

    seen: list[bool] = []

    def resumes(repo_id: str, staging: Path) -> None:
        seen.append((staging / "model-00001-of-00002.safetensors").is_file())

    resolved = hub.resolve_model(
        "tiny", download_root=root, aligner=False, fetch=CountingFetch(hub_mirror, fail=resumes), precision=F32
    )
    assert seen == [True]
    assert load_model_dir(resolved.asr, "asr").path == resolved.asr.resolve()
    assert not staging.exists()


def test_a_fetch_that_fails_at_once_leaves_nothing(tmp_path: Path, hub_mirror: Path) -> None:
    root = tmp_path / "cache"

    def refuse(repo_id: str, staging: Path) -> None:
        (staging / ".cache" / "huggingface").mkdir(parents=True)  # huggingface_hub's bookkeeping is no data
        (staging / ".cache" / "huggingface" / ".gitignore").write_text("*")
        raise OSError("Temporary failure in name resolution")

    with pytest.raises(ModelNotAvailableError, match="name resolution"):
        hub.resolve_model("turbo", download_root=root, fetch=CountingFetch(hub_mirror, fail=refuse))
    assert not (root / "checkpoints").exists() and not (root / "models").exists()


def test_an_incomplete_download_is_not_installed(tmp_path: Path, hub_mirror: Path) -> None:
    root = tmp_path / "cache"

    def config_only(repo_id: str, staging: Path) -> None:
        shutil.copy(hub_mirror / repo_id / "config.json", staging / "config.json")

    with pytest.raises(ModelNotAvailableError, match=r"the download is incomplete \(no model.safetensors"):
        hub.resolve_model("turbo", download_root=root, aligner=False, fetch=config_only)
    assert visible(root / "checkpoints") == [] and visible(root / "models") == []


def test_concurrent_resolves_download_and_convert_once(tmp_path: Path, hub_mirror: Path) -> None:
    root = tmp_path / "cache"
    fetch = CountingFetch(hub_mirror, delay=0.3)
    results: list[Path] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(hub.resolve_model("tiny", download_root=root, aligner=False, fetch=fetch, precision=F32).asr)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a resolve hung"
    assert errors == []
    assert fetch.calls == ["Qwen/Qwen3-ASR-0.6B"]
    assert results == [root / "models" / "Qwen3-ASR-0.6B-fp32-f32"] * 2
    assert visible(root / "models") == ["Qwen3-ASR-0.6B-fp32-f32"]
    assert [p.name for p in (root / "models").iterdir() if p.name.startswith(".")] == []


HOLD_LOCK = """
import sys, time
from pathlib import Path
from qwen_whisper_compat.hub import _locked
with _locked(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_lock_held_by_another_process_is_waited_for_and_freed_when_that_process_dies(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lock = tmp_path / "cache" / ".locks" / "model.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        acquired = threading.Event()

        def take() -> None:
            with hub._locked(lock):
                acquired.set()

        with caplog.at_level(logging.INFO, logger="qwen_whisper_compat.hub"):
            waiter = threading.Thread(target=take, daemon=True)
            waiter.start()
            assert not acquired.wait(1.5), "taken while another process held it"
            holder.kill()  # no release: the operating system drops the lock of a dead process
            assert acquired.wait(30), "a dead process's lock was never freed"
            waiter.join(timeout=30)
        assert any(r.getMessage().startswith("waiting for another process") for r in caplog.records)
    finally:
        holder.kill()
        holder.wait(timeout=30)


# -------------------------------------------------------------------------------------------- offline
@pytest.fixture(params=["local_files_only", "HF_HUB_OFFLINE"])
def offline(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Offline either way; the value is what to pass as ``local_files_only``."""
    if request.param == "HF_HUB_OFFLINE":
        monkeypatch.setenv(download.OFFLINE_ENV, "1")
        return False
    return True


def test_offline_names_what_to_download_and_where(tmp_path: Path, hub_mirror: Path, offline: bool) -> None:
    root = tmp_path / "cache"
    fetch = CountingFetch(hub_mirror)
    with pytest.raises(ModelNotAvailableError) as info:
        hub.resolve_model("turbo", download_root=root, local_files_only=offline, fetch=fetch)
    message = str(info.value)
    assert message.startswith("model 'turbo' needs the checkpoint Qwen/Qwen3-ASR-1.7B ")
    assert "https://huggingface.co/Qwen/Qwen3-ASR-1.7B" in message
    assert str(root / "checkpoints" / "Qwen3-ASR-1.7B") in message
    assert ("local_files_only" if offline else "HF_HUB_OFFLINE") in message
    assert fetch.calls == []
    assert not root.exists()


def test_offline_aligner_if_available_is_none(seeded_root: Path, hub_mirror: Path, offline: bool) -> None:
    resolved = hub.resolve_model(
        "tiny", download_root=seeded_root, local_files_only=offline, aligner="if_available", precision=F32
    )
    assert resolved.asr == seeded_root / "models" / "Qwen3-ASR-0.6B-fp32-f32"
    assert resolved.aligner is None
    with pytest.raises(ModelNotAvailableError, match="forced aligner for model 'tiny' needs the checkpoint") as info:
        hub.resolve_model("tiny", download_root=seeded_root, local_files_only=offline, precision=F32)
    assert "Qwen/Qwen3-ForcedAligner-0.6B" in str(info.value)
    assert visible(seeded_root / "checkpoints") == []


def test_aligner_download_failure_is_an_error_unless_if_available(seeded_root: Path, hub_mirror: Path) -> None:
    def no_aligner(repo_id: str, staging: Path) -> None:
        raise ConnectionError("timed out")

    fetch = CountingFetch(hub_mirror, fail=no_aligner)
    with pytest.raises(ModelNotAvailableError, match="forced aligner.*ConnectionError: timed out"):
        hub.resolve_model("tiny", download_root=seeded_root, fetch=fetch, precision=F32)
    resolved = hub.resolve_model("tiny", download_root=seeded_root, fetch=fetch, aligner="if_available", precision=F32)
    assert resolved.aligner is None and resolved.asr.is_dir()
    assert fetch.calls == ["Qwen/Qwen3-ForcedAligner-0.6B"] * 2
    assert hub.resolve_model("tiny", download_root=seeded_root, aligner=False, precision=F32).aligner is None


@pytest.mark.skipif(__import__("importlib").util.find_spec("modelscope") is not None, reason="modelscope installed")
def test_modelscope_source_without_modelscope_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(ModelNotAvailableError, match=r"pip install 'qwen-whisper-compat\[modelscope\]'") as info:
        hub.resolve_model("turbo", download_root=tmp_path, source="modelscope")
    assert "https://modelscope.cn/models/Qwen/Qwen3-ASR-1.7B" in str(info.value)
    assert visible(tmp_path) == []


def test_unknown_source_env_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(download.SOURCE_ENV, "gitee")
    with pytest.raises(ValueError, match="unknown model source 'gitee'"):
        hub.resolve_model("turbo", download_root=tmp_path)


# ---------------------------------------------------------------------------------------------- paths
def test_our_model_folder_is_used_as_is(asr_folder: Path, tmp_path: Path) -> None:
    resolved = hub.resolve_model(asr_folder, download_root=tmp_path / "cache")
    assert resolved == hub.ResolvedModel(asr=asr_folder.resolve(), aligner=None, name=str(asr_folder))
    assert not (tmp_path / "cache").exists()


def test_a_folder_with_an_aligner_subfolder(asr_folder: Path, aligner_folder: Path, tmp_path: Path) -> None:
    folder = link_folder(asr_folder, tmp_path / "model")
    link(folder / "aligner", aligner_folder)
    resolved = hub.resolve_model(str(folder), download_root=tmp_path / "cache")
    assert resolved.asr == folder.resolve() and resolved.aligner == (folder / "aligner").resolve()
    assert hub.resolve_model(folder, aligner=False).aligner is None
    assert hub.resolve_aligner(folder) == (folder / "aligner").resolve()
    assert hub.resolve_aligner(str(aligner_folder)) == aligner_folder.resolve()
    with pytest.raises(ModelFolderError, match="an aligner model is needed"):
        hub.resolve_aligner(asr_folder)


def test_an_export_folder_with_the_aligner_beside(asr_folder: Path, aligner_folder: Path, tmp_path: Path) -> None:
    """Qwen3-ASR-GGUF export names (no manifest); the aligner files sit beside the ASR files."""
    folder = tmp_path / "export"
    folder.mkdir()
    for prefix, src in (("qwen3_asr", asr_folder), ("qwen3_aligner", aligner_folder)):
        for part in ("frontend", "backend"):
            link(folder / f"{prefix}_encoder_{part}.fp32.onnx", src / "encoder.fp32.onnx")
        link(folder / f"{prefix}_llm.f32.gguf", src / "decoder.f32.gguf")
    resolved = hub.resolve_model(folder)
    assert resolved.asr == folder.resolve() and resolved.aligner == folder.resolve()


def test_an_official_checkpoint_folder_is_converted_once(
    asr_ckpt: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ckpt = tmp_path / "my-checkpoint"
    ckpt.mkdir()
    for p in asr_ckpt.iterdir():
        if p.name == "config.json":
            shutil.copy(p, ckpt / p.name)
        else:
            link(ckpt / p.name, p)
    root = tmp_path / "cache"
    with caplog.at_level(logging.INFO, logger="qwen_whisper_compat.hub"):
        first = hub.resolve_model(ckpt, download_root=root, precision=F32)
        second = hub.resolve_model(str(ckpt), download_root=root, precision=F32)
    assert first.asr == second.asr and first.aligner is None
    assert first.asr.parent == root / "models" and first.asr.name.startswith("my-checkpoint-")
    assert first.asr.name.endswith("-fp32-f32")
    assert load_model_dir(first.asr, "asr").manifest.source.files
    assert sum(r.getMessage().startswith("converting ") for r in caplog.records) == 1
    assert not (root / "checkpoints").exists()

    stat = (ckpt / "config.json").stat()
    os.utime(ckpt / "config.json", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the checkpoint changed
    third = hub.resolve_model(ckpt, download_root=root, precision=F32)
    assert third.asr != first.asr and third.asr.is_dir()


def test_a_checkpoint_of_the_wrong_kind_is_refused_before_converting(aligner_ckpt: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelFolderError, match="is an aligner checkpoint, but an asr model is needed"):
        hub.resolve_model(aligner_ckpt, download_root=tmp_path / "cache", precision=F32)
    assert visible(tmp_path / "cache" / "models") == []


def test_a_missing_path_is_an_unknown_model(tmp_path: Path) -> None:
    with pytest.raises(UnknownModelError, match="neither a known model name nor an existing folder"):
        hub.resolve_model(str(tmp_path / "nowhere"))
    with pytest.raises(ModelFolderError, match="does not exist"):
        hub.resolve_model(tmp_path / "nowhere")


# --------------------------------------------------------------------------------------------- import
def test_importing_hub_imports_no_download_or_conversion_code() -> None:
    probe = (
        "import sys, qwen_whisper_compat.hub\n"
        "print(','.join(sorted(m for m in ('huggingface_hub', 'modelscope', 'requests', 'onnx', 'gguf',"
        " 'onnxruntime', 'llama_cpp', 'qwen_whisper_compat.convert') if m in sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == ""


@pytest.fixture()
def _no_hf(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # type: ignore[arg-type]
    yield


@pytest.mark.usefixtures("_no_hf")
def test_missing_huggingface_hub_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ModelNotAvailableError, match=r"huggingface_hub is not installed"):
        hub.resolve_model("turbo", download_root=tmp_path)
