"""``qwen-whisper-batch`` and :func:`transcribe_corpus` on real Ray clusters.

One two-node cluster (``ray.cluster_utils.Cluster``, two raylets on this machine) serves the module; the
command runs as a subprocess connected to it with ``--address``, as on a real cluster, and its outputs are
compared byte for byte with ``qwen-whisper``'s on the same clips. One test lets the command start its own
local cluster, as on a laptop.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pyarrow.parquet as pq
import pytest
from qwc_fixtures import run_cli

from qwen_whisper_compat.batch.inputs import expand

FORMATS = ("json", "srt", "tsv", "txt", "vtt")
#: The clips of the corpus, by the stem ``qwen-whisper`` names their reference outputs with.
CLIPS = {
    "jfk": "jfk.flac",
    "libri": "librispeech_1995-1837-0001.wav",
    "zh": "aishell_BAC009S0724W0121.wav",
    "hot": "hotwords.mp3",
}


def _batch(args: list[str], env: dict[str, str], cwd: Path, **kwargs: object) -> subprocess.Popen[str]:
    full_env = {**os.environ, **env, "PYTHONUTF8": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "qwen_whisper_compat.batch", *args], env=full_env, cwd=cwd, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs,  # type: ignore[call-overload]
    )  # fmt: skip


def _finish(proc: subprocess.Popen[str], timeout: float = 600) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"qwen-whisper-batch did not finish in {timeout} s:\n{err[-3000:]}")
    return proc.returncode, err


def _journal(out: Path) -> list[dict[str, object]]:
    path = out / ".qwen-whisper-batch" / "journal.jsonl"
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            pass
    return entries


def _wait_for(condition: Callable[[], bool], proc: subprocess.Popen[str], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"the job ended before the test could interrupt it:\n{proc.stderr.read()[-3000:]}")  # type: ignore[union-attr]
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("timed out waiting for the job to make progress")
        time.sleep(0.1)


def _manifest(out: Path) -> dict[str, dict[str, object]]:
    """The manifest by input path; the Parquet and JSON-lines copies must agree."""
    lines = [json.loads(line) for line in (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines()]
    table = pq.read_table(out / "manifest.parquet").to_pylist()
    assert table == lines
    rows = {row["path"]: row for row in lines}
    assert len(rows) == len(lines), "one row per input"
    return rows


def _mtimes(folder: Path) -> dict[str, int]:
    return {
        str(p.relative_to(folder)): p.stat().st_mtime_ns
        for p in folder.rglob("*") if p.is_file() and not p.name.startswith("manifest.")
        and ".qwen-whisper-batch" not in p.parts
    }  # fmt: skip


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A two-node Ray cluster on this machine (2 + 2 logical CPUs); its address."""
    from ray.cluster_utils import Cluster

    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False})
    try:
        c.add_node(num_cpus=2)
        c.wait_for_nodes()
        yield c.address
    finally:
        c.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, shared_audio: Path) -> tuple[Path, dict[str, str], list[Path]]:
    """20 inputs in nested folders with repeated names, two corrupt files and an empty one.

    Returns the folder, each good input's relative path -> the clip stem it copies, and the bad inputs.
    """
    root = tmp_path_factory.mktemp("corpus")
    layout = {}
    stems = list(CLIPS)
    for i in range(17):
        stem = stems[i % len(stems)]
        suffix = Path(CLIPS[stem]).suffix
        # the same file name in many folders, and two names that differ only in their extension
        relative = f"show{i % 3}/season{i % 2}/episode{suffix}" if i < 12 else f"extra/{stem}{i}{suffix}"
        while relative in layout:
            relative = relative.replace("episode", "episode-b")
        layout[relative] = stem
    layout["show0/season0/episode.mp3"] = "hot"
    for relative, stem in layout.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shared_audio / CLIPS[stem], root / relative)
    bad = [root / "show1" / "broken.mp3", root / "extra" / "truncated.flac", root / "show2" / "empty.wav"]
    bad[0].write_bytes(b"this is not audio at all\n" * 20)
    bad[1].write_bytes((shared_audio / "jfk.flac").read_bytes()[:200])
    bad[2].write_bytes(b"")
    (root / "show1" / "notes.txt.bak").write_text("not an input")  # not an audio extension: ignored
    assert len(layout) + len(bad) == 21
    return root, layout, bad


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, model_env: dict[str, str], shared_audio: Path) -> Path:
    """``qwen-whisper``'s outputs of each clip, under the clip's stem, run as a 1-CPU Ray worker runs: one
    thread, and ``OMP_NUM_THREADS=1``, which Ray sets for its workers (the last bits of some sums depend on
    it, and the tiny random model's text on those bits)."""
    clips = tmp_path_factory.mktemp("clips")
    for stem, name in CLIPS.items():
        shutil.copyfile(shared_audio / name, clips / f"{stem}{Path(name).suffix}")
    out = tmp_path_factory.mktemp("reference")
    proc = run_cli(["--model", "base", "--threads", "1", "-o", str(out), *sorted(str(p) for p in clips.iterdir())],
                   {**model_env, "OMP_NUM_THREADS": "1"}, clips)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return out


def _expected_outputs(relative: str, layout: dict[str, str]) -> list[str]:
    """Where ``qwen-whisper-batch`` writes the outputs of ``relative``: the extension is kept only when two
    inputs of one folder share a stem."""
    stem = str(Path(relative).with_suffix(""))
    clash = sum(1 for other in layout if str(Path(other).with_suffix("")) == stem) > 1
    base = relative if clash else stem
    return [f"{base}.{ext}" for ext in FORMATS]


def _check_outputs(out: Path, layout: dict[str, str], reference: Path, root: Path) -> None:
    rows = _manifest(out)
    for relative, stem in layout.items():
        row = rows[str(root / relative)]
        assert row["status"] in ("done", "skipped"), row
        written = sorted(str(Path(p).relative_to(out)) for p in row["outputs"])  # type: ignore[union-attr]
        assert written == sorted(_expected_outputs(relative, layout))
        for path in written:
            ext = path.rsplit(".", 1)[1]
            assert (out / path).read_bytes() == (reference / f"{stem}.{ext}").read_bytes(), path


# ---------------------------------------------------------------------------------------------------- tests
def test_inputs_mirror_folders_and_keep_extensions_only_where_stems_clash(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/x.mp3", "a/b/x.mp3", "a/b/y.wav", "a/b/y.flac", "a/b/.hidden.wav", "a/readme.md"):
        (tmp_path / name).write_bytes(b"1")
    listing = tmp_path / "more.txt"
    listing.write_text("# a list file\nsolo.ogg\n\nfile://" + str(tmp_path / "a" / "x.mp3") + "\n")
    (tmp_path / "solo.ogg").write_bytes(b"2")
    keys = {i.uri: i.key for i in expand([str(tmp_path / "a"), str(listing), str(tmp_path / "missing.wav")])}
    a = tmp_path / "a"
    assert keys == {
        str(a / "b" / "x.mp3"): "a/b/x", str(a / "b" / "y.flac"): "a/b/y.flac", str(a / "b" / "y.wav"): "a/b/y.wav",
        str(a / "x.mp3"): "a/x", str(tmp_path / "solo.ogg"): "solo", str(tmp_path / "missing.wav"): "missing",
    }  # fmt: skip
    problems = {i.key: i.problem for i in expand([str(tmp_path / "missing.wav")])}
    assert "does not exist" in problems["missing"]


@pytest.mark.skipif(os.name != "posix", reason="kills a worker with SIGKILL (POSIX signals)")
def test_corpus_on_two_nodes_with_a_worker_killed_then_a_rerun_skips_everything(
    tmp_path: Path, cluster: str, corpus: tuple[Path, dict[str, str], list[Path]], reference: Path,
    model_env: dict[str, str],
) -> None:  # fmt: skip
    root, layout, bad = corpus
    out = tmp_path / "out"
    args = [str(root), "--model", "base", "-o", str(out), "--address", cluster, "--workers", "2",
            "--threads-per-worker", "1"]  # fmt: skip
    proc = _batch(args, model_env, tmp_path)
    _wait_for(lambda: len(_journal(out)) >= 2, proc)
    # the worker that wrote the first result: a Ray actor process (Ray names it ray::MapWorker)
    pid = int(str(_journal(out)[0]["worker"]).rsplit(":", 1)[1])
    assert "MapWorker" in " ".join(psutil.Process(pid).cmdline())
    os.kill(pid, signal.SIGKILL)
    code, err = _finish(proc)
    assert code == 1, err  # the bad files failed
    rows = _manifest(out)
    assert len(rows) == 21
    _check_outputs(out, layout, reference, root)
    assert {row["status"] for path, row in rows.items() if Path(path) not in bad} == {"done"}
    assert len({row["node"] for row in rows.values() if row["status"] == "done"}) == 2, "work spread on both nodes"
    for path in bad:
        row = rows[str(path)]
        assert row["status"] == "failed" and row["outputs"] == []
        assert str(row["error"]).startswith("AudioLoadError: ") and str(path) in str(row["error"])
        assert f"Failed {path}: AudioLoadError" in err
    assert "18 done, 0 skipped, 3 failed" in err

    before = _mtimes(out)
    code, err = _finish(_batch(args, model_env, tmp_path))
    assert code == 1, err
    rows = _manifest(out)
    assert {row["status"] for path, row in rows.items() if Path(path) not in bad} == {"skipped"}
    assert {rows[str(path)]["status"] for path in bad} == {"failed"}  # redone, and failed again
    assert _mtimes(out) == before, "a rerun rewrites nothing"
    _check_outputs(out, layout, reference, root)


def _small_corpus(root: Path, shared_audio: Path, stems: tuple[str, ...]) -> list[Path]:
    paths = []
    for i, stem in enumerate(stems):
        name = stem if stems.count(stem) == 1 else f"{stem}-{i}"
        path = root / f"d{i % 2}" / f"{name}{Path(CLIPS[stem]).suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shared_audio / CLIPS[stem], path)
        paths.append(path)
    return paths


def test_python_api_redoes_only_a_damaged_output_and_a_changed_input(
    tmp_path: Path, cluster: str, shared_audio: Path, reference: Path, model_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from qwen_whisper_compat.batch import transcribe_corpus

    for name, value in {**model_env, "OMP_NUM_THREADS": "1"}.items():
        monkeypatch.setenv(name, value)
    corpus = tmp_path / "corpus"
    jfk, hot, zh = _small_corpus(corpus, shared_audio, ("jfk", "hot", "zh"))
    out = tmp_path / "out"

    # no extra remote arguments (deprecated by Ray 2.60, gone in 2.64): worker fault tolerance is Ray Data's
    # default, bounded by the job itself
    from ray.data import Dataset

    map_batches, extra = Dataset.map_batches, []

    def spy(self: Dataset, *args: Any, **kwargs: Any) -> Dataset:
        extra.extend(inspect.signature(map_batches).bind(self, *args, **kwargs).arguments.get("ray_remote_args", {}))
        return map_batches(self, *args, **kwargs)

    monkeypatch.setattr(Dataset, "map_batches", spy)

    def run() -> dict[str, str]:
        report = transcribe_corpus(
            [str(corpus)], str(out), model="base", output_format="srt", workers=1, threads_per_worker=1,
            address=cluster,
        )  # fmt: skip
        assert extra == [], f"deprecated remote arguments: {extra}"
        assert [row.path for row in report.rows] == sorted(str(p) for p in (jfk, hot, zh))
        return {Path(row.path).stem: row.status for row in report.rows}

    assert run() == {"jfk": "done", "hot": "done", "zh": "done"}
    srt = {p.stem: out / p.relative_to(corpus).with_suffix(".srt") for p in (jfk, hot, zh)}
    for stem, path in srt.items():
        assert path.read_bytes() == (reference / f"{stem}.srt").read_bytes()
    kept = srt["zh"].stat().st_mtime_ns
    srt["jfk"].write_bytes(srt["jfk"].read_bytes()[:-10])  # an output damaged after the run
    shutil.copyfile(shared_audio / CLIPS["libri"], hot)  # an input replaced by other audio
    assert run() == {"jfk": "done", "hot": "done", "zh": "skipped"}
    assert srt["jfk"].read_bytes() == (reference / "jfk.srt").read_bytes()
    assert srt["hot"].read_bytes() == (reference / "libri.srt").read_bytes()
    assert srt["zh"].stat().st_mtime_ns == kept


def test_python_api_rejects_an_unknown_option_before_starting(tmp_path: Path) -> None:
    from qwen_whisper_compat.batch import transcribe_corpus

    with pytest.raises(TypeError, match="'beam_sise'"):
        transcribe_corpus([str(tmp_path)], str(tmp_path / "out"), beam_sise=5)
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(os.name != "posix", reason="kills the driver with SIGKILL (POSIX signals)")
def test_a_killed_driver_loses_no_finished_work(
    tmp_path: Path, cluster: str, shared_audio: Path, model_env: dict[str, str]
) -> None:
    corpus = tmp_path / "corpus"
    _small_corpus(corpus, shared_audio, ("jfk", "hot", "zh", "libri", "hot", "jfk"))
    out = tmp_path / "out"
    args = [str(corpus), "--model", "base", "-f", "srt", "-o", str(out), "--address", cluster, "--workers", "1",
            "--threads-per-worker", "1"]  # fmt: skip
    proc = _batch(args, model_env, tmp_path)
    _wait_for(lambda: len(_journal(out)) >= 1, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    finished = {str(e["source"]) for e in _journal(out)}
    assert finished
    before = _mtimes(out)
    code, err = _finish(_batch(args, model_env, tmp_path))
    assert code == 0, err
    rows = _manifest(out)
    assert {path for path, row in rows.items() if row["status"] == "skipped"} == finished
    assert {row["status"] for path, row in rows.items() if path not in finished} == {"done"}
    assert all(_mtimes(out)[name] == mtime for name, mtime in before.items())


@pytest.mark.skipif(os.name != "posix", reason="sends SIGINT and resets it in preexec_fn (POSIX only)")
def test_ctrl_c_on_a_laptop_keeps_finished_work_and_says_how_to_go_on(
    tmp_path: Path, shared_audio: Path, model_env: dict[str, str]
) -> None:
    """No --address: the command starts its own local Ray cluster, and stops it on Ctrl-C."""
    corpus = tmp_path / "corpus"
    _small_corpus(corpus, shared_audio, ("jfk", "hot", "zh", "libri", "hot", "jfk", "zh", "libri"))
    out = tmp_path / "out"
    args = [str(corpus), "--model", "base", "-f", "srt", "-o", str(out), "--workers", "1", "--threads-per-worker", "1"]
    # as from a terminal: a suite run as a background job (`.ci/run &`) would pass SIGINT on ignored
    proc = _batch(args, model_env, tmp_path, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    _wait_for(lambda: len(_journal(out)) >= 1, proc)
    proc.send_signal(signal.SIGINT)
    code, err = _finish(proc, timeout=120)
    assert code == 130, err
    assert "run the same command again to go on" in err
    rows = _manifest(out)
    statuses = [row["status"] for row in rows.values()]
    assert len(rows) == 8 and "pending" in statuses and "done" in statuses, statuses
    assert {r["status"] for r in rows.values()} <= {"done", "pending"}
    done = {path for path, row in rows.items() if row["status"] == "done"}
    code, err = _finish(_batch(args, model_env, tmp_path))
    assert code == 0, err
    rows = _manifest(out)
    assert {path for path, row in rows.items() if row["status"] == "skipped"} >= done
    assert {row["status"] for row in rows.values()} <= {"done", "skipped"}


def test_a_model_that_cannot_load_fails_before_any_input_is_read(tmp_path: Path, model_env: dict[str, str]) -> None:
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"")
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "manifest.json").write_text("{ not json")
    code, err = _finish(_batch([str(audio), "--model", str(broken), "-o", str(tmp_path / "out")], model_env, tmp_path))
    assert code == 1, err
    assert err.startswith("qwen-whisper-batch: error: ") and "broken-model" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
    # a model name or folder that does not exist at all is a usage error, as for qwen-whisper
    code, err = _finish(_batch([str(audio), "--model", "gigantic", "-o", str(tmp_path / "out")], model_env, tmp_path))
    assert code == 2 and "gigantic" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_without_the_ray_extra_it_says_what_to_install(tmp_path: Path) -> None:
    blocked = "import sys; sys.modules['ray'] = None; from qwen_whisper_compat.batch.cli import main; "
    proc = subprocess.run(
        [sys.executable, "-c", blocked + f"sys.exit(main([{str(tmp_path)!r}, '-o', {str(tmp_path / 'out')!r}]))"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert 'pip install "qwen-whisper-compat[ray]"' in proc.stderr and "Traceback" not in proc.stderr
    # --help works without Ray
    proc = subprocess.run([sys.executable, "-c", blocked + "main(['--help'])"], capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert "--threads-per-worker" in proc.stdout and "--address" in proc.stdout


def test_a_second_job_on_the_same_folder_is_refused(tmp_path: Path) -> None:
    from qwen_whisper_compat.batch.store import OutputFolder
    from qwen_whisper_compat.errors import BatchError

    with OutputFolder(tmp_path, "x"):
        probe = (
            "import sys; from qwen_whisper_compat.batch.store import OutputFolder\n"
            f"try:\n    OutputFolder({str(tmp_path)!r}, 'x').__enter__()\n"
            "except Exception as e:\n    print(type(e).__name__, e)\n"
        )
        proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    assert proc.stdout.startswith("BatchError another qwen-whisper-batch job is writing into"), proc.stdout
    assert issubclass(BatchError, RuntimeError)


#: An entry-point plugin (loaded from a folder on PYTHONPATH, nothing installed): the output format
#: ``txt-or-die``, whisper's txt, except that the process is killed (as the kernel's OOM killer kills) on an
#: input whose name starts with ``poison``.
CRASH_PLUGIN = '''
import os
import signal

from qwen_whisper_compat.plugins import hookimpl
from qwen_whisper_compat.utils import WriteTXT


class WriteOrDie(WriteTXT):
    def __call__(self, result, audio_path, *args, **kwargs):
        if os.path.basename(audio_path).startswith("poison"):
            os.kill(os.getpid(), signal.SIGKILL)
        return super().__call__(result, audio_path, *args, **kwargs)


@hookimpl
def register_writers(register):
    register("txt-or-die", WriteOrDie)
'''


def _crash_plugin_env(folder: Path) -> dict[str, str]:
    folder.mkdir()
    (folder / "qwc_crash_plugin.py").write_text(CRASH_PLUGIN, encoding="utf-8")
    info = folder / "qwc_crash_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: qwc-crash-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[qwen_whisper_compat]\ncrash = qwc_crash_plugin\n")
    return {"PYTHONPATH": os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH", "")) if p)}


@pytest.mark.skipif(os.name != "posix", reason="the plugin kills its worker with SIGKILL (POSIX signals)")
def test_an_input_that_kills_its_worker_every_time_fails_after_the_retries_and_the_rest_is_done(
    tmp_path: Path, shared_audio: Path, model_env: dict[str, str]
) -> None:
    """Ray Data restarts a dead worker and retries its task without end; the job's ledger ends it. A local
    cluster (no --address), so that the workers see the plugin's PYTHONPATH."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    names = ["a0", "a1", "a2", "a3", "a4", "a5", "a6", "poison"]  # 8 inputs, 1 worker: blocks of 2
    for name in names:
        shutil.copyfile(shared_audio / "jfk.flac", corpus / f"{name}.flac")
    out = tmp_path / "out"
    args = [str(corpus), "--model", "base", "-f", "txt-or-die", "-o", str(out), "--workers", "1",
            "--threads-per-worker", "1", "--retries", "1"]  # fmt: skip
    env = {**model_env, **_crash_plugin_env(tmp_path / "plugin")}
    code, err = _finish(_batch(args, env, tmp_path))
    assert code == 1, err
    rows = _manifest(out)
    poison = rows[str(corpus / "poison.flac")]
    assert poison["status"] == "failed" and poison["outputs"] == [] and poison["attempts"] == 2, poison
    assert str(poison["error"]).startswith("WorkerDiedError: the worker process died while transcribing it, 2 times")
    for name in names[:-1]:
        row = rows[str(corpus / f"{name}.flac")]
        assert row["status"] == "done" and row["attempts"] == 1, row
        assert (out / f"{name}.txt").read_text(encoding="utf-8").strip()
    assert "7 done, 0 skipped, 1 failed" in err
