"""Build the standalone ``qwen-whisper`` program with PyInstaller: ``python packaging/build.py``.

Writes, under ``--dist`` (default ``dist/``):

- ``qwen-whisper/``: the one-folder distribution. ``qwen-whisper`` (``.exe`` on Windows) is the program;
  ``whisper``, ``qwen-whisper-convert``, ``qwen-whisper-live`` and ``qwen-whisper-server`` next to it are
  links to it (hard links or copies on Windows), and ``_internal/`` holds Python, the libraries and the data.
- ``onefile/qwen-whisper``: the same program as a single file (it unpacks itself into a temporary folder
  on every start, so it starts slower); copy or rename it to any of the command names above.
- ``build-info.json``: version, platform, build time and sizes.

Both come from one analysis of the environment the script runs in, which must have the package and its
``[bundle]`` extra installed (``pip install -e ".[bundle]"``). Nothing is replaced until the build has
succeeded: a failed build leaves an earlier distribution as it was.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger("qwen_whisper_compat.packaging")

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "packaging" / "qwen-whisper.spec"
NAME = "qwen-whisper"
#: The names the program answers to besides its own (see launcher.py).
COMMAND_LINKS = ("whisper", "qwen-whisper-convert", "qwen-whisper-live", "qwen-whisper-server")
#: Modules the build needs, and the distribution that brings each.
NEEDED = {
    "PyInstaller": "pyinstaller",
    "qwen_whisper_compat": "qwen-whisper-compat",
    "starlette": "starlette",
    "uvicorn": "uvicorn",
    "multipart": "python-multipart",
    "websockets": "websockets",
    "llama_cpp": "llama-cpp-python",
}
EXE_SUFFIX = ".exe" if sys.platform == "win32" else ""


class BuildError(Exception):
    """The bundle cannot be built; the message says what to do."""


def check_environment() -> None:
    """Fail before a long build when something the bundle carries is missing from this environment."""
    missing = sorted({dist for module, dist in NEEDED.items() if importlib.util.find_spec(module) is None})
    if missing:
        raise BuildError(
            f"missing in this Python ({sys.executable}): {', '.join(missing)}; "
            f'install them with: pip install -e "{ROOT}[bundle]"'
        )


#: x86 instruction sets a llama.cpp build may require beyond what every x86-64 CPU of the last ten years has
#: (AVX2, FMA, F16C, BMI2): one built with -march=native on a newer CPU dies with "illegal instruction" on others.
BEYOND_AVX2 = ("AVX512", "AVX_VNNI", "AMX")
PORTABLE_LLAMA = (
    'CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON" '
    "pip install --force-reinstall --no-deps --no-cache-dir llama-cpp-python==0.3.36"
)


def llama_cpu_features() -> list[str]:
    """The CPU features the llama.cpp build to be bundled was compiled for (from ``llama_print_system_info``)."""
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode("utf-8", "replace")
    return sorted(part.split("=")[0].split(":")[-1].strip() for part in info.split("|") if part.strip().endswith("= 1"))


def warn_if_not_portable(features: Sequence[str]) -> None:
    """llama-cpp-python compiles for the CPU it is installed on; a bundle to hand out needs a portable build."""
    beyond = [f for f in features if f.startswith(BEYOND_AVX2)]
    if beyond:
        logger.warning(
            "llama-cpp-python here was compiled for this CPU (%s): the bundle will crash with 'illegal "
            "instruction' on CPUs without them. For a bundle to hand out, rebuild it first with: %s",
            ", ".join(beyond), PORTABLE_LLAMA,
        )  # fmt: skip


def folder_size(path: Path) -> int:
    """Bytes of the files under ``path`` (links not followed, so each file counts once)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def add_command_links(folder: Path) -> None:
    """A name per command next to the program: a symbolic link, or on Windows (where those need privileges
    and a link's own name is not what the program sees) a hard link, or a copy where the disk has none."""
    program = folder / (NAME + EXE_SUFFIX)
    for command in COMMAND_LINKS:
        target = folder / (command + EXE_SUFFIX)
        if sys.platform != "win32":
            target.symlink_to(program.name)
            continue
        try:
            os.link(program, target)
        except OSError:
            shutil.copy2(program, target)


def run_pyinstaller(staging: Path, work: Path, *, onefile: bool, verbose: bool) -> None:
    command = [
        sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean",
        "--log-level", "INFO" if verbose else "WARN",
        "--distpath", str(staging), "--workpath", str(work), str(SPEC),
    ]  # fmt: skip
    if not onefile:
        command += ["--", "--no-onefile"]
    logger.info("running %s", " ".join(command))
    status = subprocess.run(command, cwd=ROOT, check=False).returncode
    if status != 0:
        raise BuildError(f"PyInstaller failed with status {status} (its messages are above)")


def replace(source: Path, destination: Path) -> None:
    """Move ``source`` to ``destination``, removing what was there only once the new one is complete."""
    old = destination.with_name(destination.name + ".old")
    if old.exists():
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    if destination.exists():
        destination.rename(old)
    source.rename(destination)
    if old.exists():
        shutil.rmtree(old) if old.is_dir() else old.unlink()


def build(dist: Path, work: Path, *, onefile: bool = True, verbose: bool = False) -> dict[str, object]:
    """Build the bundle into ``dist``; returns what ``build-info.json`` records."""
    check_environment()
    features = llama_cpu_features()
    warn_if_not_portable(features)
    dist.mkdir(parents=True, exist_ok=True)
    staging = dist / f".staging-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    started = time.monotonic()
    try:
        run_pyinstaller(staging, work, onefile=onefile, verbose=verbose)
        add_command_links(staging / NAME)
        if onefile:
            (staging / "onefile").mkdir()
            (staging / ("qwen-whisper-onefile" + EXE_SUFFIX)).rename(staging / "onefile" / (NAME + EXE_SUFFIX))
        seconds = time.monotonic() - started

        import qwen_whisper_compat

        info: dict[str, object] = {
            "version": qwen_whisper_compat.__version__,
            "platform": f"{sys.platform}-{platform.machine()}",
            "python": platform.python_version(),
            "build_seconds": round(seconds, 1),
            "onedir_bytes": folder_size(staging / NAME),
            "onefile_bytes": folder_size(staging / "onefile" / (NAME + EXE_SUFFIX)) if onefile else None,
            "llama_cpu_features": features,
        }
        (staging / "build-info.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        for entry in (NAME, "onefile", "build-info.json"):
            if (staging / entry).exists():
                replace(staging / entry, dist / entry)
        if not onefile and (dist / "onefile").exists():
            logger.info("removing %s: an earlier build's, older than this one", dist / "onefile")
            shutil.rmtree(dist / "onefile")
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return info


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="packaging/build.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="where the bundle goes (default: dist/)")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "pyinstaller",
                        help="PyInstaller's work folder (default: build/pyinstaller/)")  # fmt: skip
    parser.add_argument("--no-onefile", dest="onefile", action="store_false",
                        help="build the one-folder distribution only")  # fmt: skip
    parser.add_argument("-v", "--verbose", action="store_true", help="PyInstaller's own progress messages")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        info = build(args.dist.resolve(), args.work.resolve(), onefile=args.onefile, verbose=args.verbose)
    except BuildError as e:
        print(f"build.py: error: {e}", file=sys.stderr)
        return 1
    mib = 1024 * 1024
    message = f"built {args.dist / NAME} ({int(str(info['onedir_bytes'])) // mib} MiB)"
    if info["onefile_bytes"]:
        message += f" and {args.dist / 'onefile' / (NAME + EXE_SUFFIX)} ({int(str(info['onefile_bytes'])) // mib} MiB)"
    print(f"{message} in {info['build_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
