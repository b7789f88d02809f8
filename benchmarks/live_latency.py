"""Live transcription against the clock: 5 minutes of speech fed at real-time pace to a live session, on
the real 0.6B and 1.7B shapes (random weights; q4_k decoder / int8 encoder unless ``--configs`` says), 2 threads.

The clock is simulated but the work is real: audio arrives in 100 ms blocks (as a microphone delivers it);
whenever the session is idle it is given every block that has arrived, and the clock advances by the wall
time the session takes. So the figures are those of a real-time source with one worker thread, without
sleeping through the idle time. Tokens are forced to 4 per audio second (end-of-sequence ignored), for the
live session and for the offline pipeline it is compared with, on the same audio.

Which tokens: random weights choose a different argmax whenever the audio rows change, so a partial would
never agree with the next partial or with the final, which real weights mostly do; every draft the live
session verifies would be rejected. With ``--tokens script`` (the default) the live session's decodes emit
a script instead of the argmax (the logits are still computed, every step costs what it costs): token k of
a segment is the same in every decode of that segment, except that a partial's tokens for its last
``TENTATIVE_SECONDS`` of audio differ (the text of the newest audio is revised by the next partial and by
the final, which the official code's rollback of 5 tokens is there for). ``--tokens argmax`` gives the
pessimistic figures of a model whose partials never agree with anything. The offline pipeline decodes
argmax: which token a step picks does not change what the step costs.

Measured:

- partial latency: for each 100 ms block inside a speech segment, from its arrival to the first event
  (partial or final) whose text covers it (p50, p95);
- final latency: from a segment's end (the moment its last sample arrived) to its final (p50, p95);
- backlog: how much arrived audio waits unfed, sampled at every feed (p95, max, and per 30 s);
- CPU seconds (this process, all threads) per audio second, live and offline;
- the mean wall time of one partial step in minute 1 and in minute 5.

With ``--partials off`` the session decodes finals only: its CPU per audio second against the offline
pipeline's is what live transcription costs beyond the offline work of the same audio (the voice activity
detector, segment-sized prompts, the finals' windows prefilled as they complete).

Run: ``python benchmarks/live_latency.py`` (``--sizes 0.6b``, ``--configs q8_0/int8 q4_k/int8``, ``--seconds
300``, ``--loads 0.5 0.25`` to compare values of ``partial_load``, ``--partials on off``); writes
``results/live_latency.json`` and ``results/live_latency.md`` (``--merge`` keeps the rows not run again). How
many streams one machine keeps in real time: ``live_streams.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
RESULTS = HERE / "results"
CACHE = RESULTS / "cache"
TOKENS_PER_SECOND = 4.0
BLOCK = 1600  # 100 ms
TENTATIVE_SECONDS = 1.0


class Script:
    """The token each step of a scripted live decode emits (see the module docstring)."""

    def __init__(self) -> None:
        self.settled: int | None = None  # a partial's tokens before this one are settled; None: a final
        self.active = False
        self.position = 0

    @staticmethod
    def token(k: int, settled: bool) -> int:
        base = 1000 + (k * 7) % 50000  # ordinary text tokens, distinct along a segment
        return base if settled else base + 1

    def next(self) -> int:
        k, self.position = self.position, self.position + 1
        return self.token(k, self.settled is None or k < self.settled)


#: The script of the stream whose decodes run on this thread (every stream has a thread of its own, and a
#: stream's decodes run on the thread that feeds it).
_current = threading.local()


def install_script(decoder) -> None:  # type: ignore[no-untyped-def]
    """Make the decodes on ``decoder`` follow the script of the thread that runs them (none: the argmax)."""
    import inspect

    import qwen_whisper_compat.engine.decoder as decoder_module
    from qwen_whisper_compat.engine.sampling import Sampler

    class ScriptSampler(Sampler):
        def choose(self, logits: np.ndarray) -> int:
            script = getattr(_current, "script", None)
            return script.next() if script is not None and script.active else super().choose(logits)

    decoder_module.Sampler = ScriptSampler  # type: ignore[misc]
    generate_after = decoder.generate_after
    signature = inspect.signature(generate_after)

    def generate(*args, **kwargs):  # type: ignore[no-untyped-def]
        script = getattr(_current, "script", None)
        if script is None:
            return generate_after(*args, **kwargs)
        script.active, script.position = True, signature.bind(*args, **kwargs).arguments.get("forced", 0)
        try:
            return generate_after(*args, **kwargs)
        finally:
            script.active = False

    decoder.generate_after = generate


def scripted(session, script: Script) -> None:  # type: ignore[no-untyped-def]
    """Make ``session``'s decodes follow ``script`` when they run on this thread (see :func:`install_script`)."""
    _current.script = script
    partial, final = session._partial, session._final

    def scripted_partial():  # type: ignore[no-untyped-def]
        heard = session._features.n / 16000
        script.settled = int(TOKENS_PER_SECOND * max(0.0, heard - TENTATIVE_SECONDS))
        return partial()

    def scripted_final(n):  # type: ignore[no-untyped-def]
        script.settled = None
        return final(n)

    session._partial, session._final = scripted_partial, scripted_final


def model_folder(size: str, config: str = "q4_k/int8") -> Path:
    from harness import CONFIGS, prepare_one

    encoder, decoder = CONFIGS[config]
    return prepare_one(size, encoder, decoder)


def options():  # type: ignore[no-untyped-def]
    from qwen_whisper_compat.engine.types import TranscribeOptions

    return TranscribeOptions(
        temperatures=(0.0,), ignore_eos=True, tokens_per_second=TOKENS_PER_SECOND, token_cap_base=0,
        language="English",
    )  # fmt: skip


def percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def latencies(events: list[tuple[float, object]], sr: int = 16000) -> tuple[list[float], list[float]]:
    """Partial latencies (for each 100 ms block inside a speech segment, from its arrival to the first event
    whose text covers it) and final latencies (from a segment's last sample to its final) of a stream's
    ``(clock, event)`` list."""
    from qwen_whisper_compat.engine.live import Final, Partial

    finals = [(at, e) for at, e in events if isinstance(e, Final)]
    covering = sorted((e.end, at) for at, e in events if isinstance(e, Partial | Final))
    ends = [c[0] for c in covering]
    partial_latency: list[float] = []
    for _, f in finals:
        if not f.speech:
            continue
        for b in range(round(f.start * sr) // BLOCK, round(f.end * sr) // BLOCK):
            block_end = (b + 1) * BLOCK / sr
            j = int(np.searchsorted(ends, block_end - 1e-9))
            later = [at for _, at in covering[j:] if at >= block_end]
            if later:
                partial_latency.append(min(later) - block_end)
    final_latency = [at - f.end for at, f in finals if f.speech]
    return partial_latency, final_latency


def run_live(
    folder: str, seconds: float, threads: int, step: float, load: float, tokens: str, partials: bool = True
) -> dict[str, object]:
    from harness import speech

    from qwen_whisper_compat.engine.live import Final, LiveOptions, LiveSession
    from qwen_whisper_compat.engine.pipeline import Transcriber
    from qwen_whisper_compat.vad.silero import SileroVad

    audio = speech(seconds)
    sr = 16000
    vad = SileroVad()
    with Transcriber(folder, threads=threads) as t:
        live = LiveOptions(step_seconds=step, partial_load=load, partials=partials)
        warm = LiveSession(t, vad.stream(), options(), live)
        warm.feed(audio[: 3 * sr])
        warm.finish()  # sessions, context, caches
        session = LiveSession(t, vad.stream(), options(), live)
        if tokens == "script":
            install_script(t.decoder)
            scripted(session, Script())
        clock = 0.0
        fed = 0
        events: list[tuple[float, object]] = []
        backlog: list[tuple[float, float]] = []
        steps: list[tuple[float, float]] = []  # (stream seconds at the step, wall seconds of the step)
        cpu0 = time.process_time()
        while fed < audio.size:
            arrived = min(audio.size, int(clock * sr + 1e-6) // BLOCK * BLOCK)  # (no float rounding down)
            if arrived <= fed:
                clock = (fed + BLOCK) / sr  # idle until the next block arrives
                continue
            backlog.append((clock, clock - fed / sr))
            before = session.stats.partial_seconds
            t0 = time.perf_counter()
            out = session.feed(audio[fed:arrived])
            clock += time.perf_counter() - t0
            fed = arrived
            if session.stats.partial_seconds > before:
                steps.append((fed / sr, session.stats.partial_seconds - before))
            events += [(clock, e) for e in out]
        t0 = time.perf_counter()
        out = session.finish()
        clock += time.perf_counter() - t0
        events += [(clock, e) for e in out]
        cpu = time.process_time() - cpu0
        stats = session.stats

    finals = [(at, e) for at, e in events if isinstance(e, Final)]
    partial_latency, final_latency = latencies(events, sr)
    lags = [lag for _, lag in backlog]
    minute = lambda lo, hi: [w for s, w in steps if lo <= s < hi]
    first, last = minute(0, 60), minute(max(0, seconds - 60), seconds)
    series = {}
    for at, lag in backlog:
        series.setdefault(int(at // 30) * 30, []).append(lag)
    return {
        "audio_s": seconds,
        "step_s": step,
        "partial_load": load,
        "partials": partials,
        "tokens": tokens,
        "segments": sum(1 for _, f in finals if f.speech),
        "silent_segments": sum(1 for _, f in finals if not f.speech),
        "partial_count": stats.partials,
        "partial_p50_s": percentile(partial_latency, 50),
        "partial_p95_s": percentile(partial_latency, 95),
        "final_p50_s": percentile(final_latency, 50),
        "final_p95_s": percentile(final_latency, 95),
        "backlog_p95_s": percentile(lags, 95),
        "backlog_max_s": max(lags),
        "backlog_by_30s": {k: round(max(v), 3) for k, v in sorted(series.items())},
        "finished_at_s": clock,
        "cpu_s_per_audio_s": cpu / seconds,
        "step_minute1_s": float(np.mean(first)) if first else None,
        "step_minute5_s": float(np.mean(last)) if last else None,
        "partial_mean_s": stats.partial_seconds / max(1, stats.partials),
        "final_mean_s": stats.final_seconds / max(1, stats.finals),
        "prompt_rows": stats.prompt_rows,
        "kept_rows": stats.kept_rows,
        "accepted_tokens": stats.accepted_tokens,
        "generated_tokens": stats.generated_tokens,
    }


def run_offline(folder: str, seconds: float, threads: int) -> dict[str, object]:
    from harness import speech

    from qwen_whisper_compat.engine.pipeline import Transcriber

    audio = speech(seconds)
    with Transcriber(folder, threads=threads) as t:
        t.transcribe(audio[:16000], options())
        cpu0, t0 = time.process_time(), time.perf_counter()
        t.transcribe(audio, options())
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {"wall_s": wall, "cpu_s_per_audio_s": cpu / seconds, "rtf": wall / seconds}


def child(args: list[str]) -> dict[str, object]:
    from harness import run_child

    result: dict[str, object] = run_child(__file__, args)
    return result


def key(row: dict[str, object]) -> tuple[object, ...]:
    return row["size"], row.get("config", "q4_k/int8"), row["step_s"], row["partial_load"], row["tokens"], \
        row.get("partials", True)  # fmt: skip


def keeps_up(row: dict[str, object]) -> bool:
    return float(row["backlog_p95_s"]) < 2.0  # type: ignore[arg-type]


def table(rows: list[dict[str, object]]) -> str:
    def f(v: object, spec: str = ".2f") -> str:
        return "" if v is None else format(v, spec)

    lines = [
        ("| size | decoder/encoder | partials | step s | partial load | tokens | keeps up | partial p50 / p95 s "
         "| final p50 / p95 s | backlog p95 / max s "
         "| CPU s per audio s live / offline (ratio) | step at minute 1 / 5 s (ratio) | segments |"),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = float(r["cpu_s_per_audio_s"]) / float(r["offline_cpu_s_per_audio_s"])  # type: ignore[arg-type]
        m1, m5 = r["step_minute1_s"], r["step_minute5_s"]
        growth = f(float(m5) / float(m1)) if m1 and m5 else ""  # type: ignore[arg-type]
        lines.append(
            f"| {r['size']} | {r.get('config', 'q4_k/int8')} | {'on' if r.get('partials', True) else 'off'} "
            f"| {f(r['step_s'], '.1f')} | {f(r['partial_load'])} | {r['tokens']} "
            f"| {'yes' if keeps_up(r) else 'NO: falls behind'} "
            f"| {f(r['partial_p50_s'])} / {f(r['partial_p95_s'])} | {f(r['final_p50_s'])} / {f(r['final_p95_s'])} "
            f"| {f(r['backlog_p95_s'])} / {f(r['backlog_max_s'])} "
            f"| {f(r['cpu_s_per_audio_s'], '.3f')} / {f(r['offline_cpu_s_per_audio_s'], '.3f')} ({f(ratio)}x) "
            f"| {f(m1, '.3f')} / {f(m5, '.3f')} ({growth}x) | {r['segments']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["0.6b", "1.7b"], choices=["0.6b", "1.7b"])
    ap.add_argument("--configs", nargs="+", default=["q4_k/int8"], choices=["q8_0/int8", "q4_k/int8", "f16/fp32"],
                    help="decoder/encoder precisions")
    ap.add_argument("--seconds", type=float, default=300.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=float, nargs="+", default=[1.0], help="partial step lengths to compare")
    ap.add_argument("--loads", type=float, nargs="+", default=[0.5], help="partial_load values to compare")
    ap.add_argument("--partials", choices=["on", "off"], nargs="+", default=["on"],
                    help="off: finals only (its CPU per audio second is the one to compare with offline)")
    ap.add_argument("--tokens", choices=["script", "argmax"], nargs="+", default=["script"],
                    help="what the live decodes emit (see above); the offline pipeline always takes the argmax")
    ap.add_argument("--merge", action="store_true",
                    help="keep the rows already written that this run does not measure again")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        kind, path, seconds, threads, *rest = args.child
        if kind == "live":
            print(json.dumps(run_live(path, float(seconds), int(threads), float(rest[0]), float(rest[1]), rest[2],
                                      rest[3] == "on")))  # fmt: skip
        else:
            print(json.dumps(run_offline(path, float(seconds), int(threads))))
        return
    rows: list[dict[str, object]] = []
    for size in args.sizes:
        for config in args.configs:
            folder = str(model_folder(size, config))
            offline = child(["offline", folder, str(args.seconds), str(args.threads)])
            runs = [(s, lo, t, p) for s in args.steps for lo in args.loads for t in args.tokens for p in args.partials]
            for step, load, tokens, partials in runs:
                live = child(["live", folder, str(args.seconds), str(args.threads), str(step), str(load), tokens,
                              partials])  # fmt: skip
                row = {"size": size, "config": config, **live, "offline_cpu_s_per_audio_s": offline["cpu_s_per_audio_s"],
                       "offline_rtf": offline["rtf"]}  # fmt: skip
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
    RESULTS.mkdir(exist_ok=True)
    written = RESULTS / "live_latency.json"
    if args.merge and written.exists():
        measured = {key(r) for r in rows}
        rows += [r for r in json.loads(written.read_text())["rows"] if key(r) not in measured]
        rows.sort(key=lambda r: (["0.6b", "1.7b"].index(str(r["size"])), str(r.get("config", "q4_k/int8")),
                                 r["step_s"], -float(r["partial_load"]), r["tokens"] != "script",  # type: ignore[arg-type]
                                 not r.get("partials", True)))  # fmt: skip
    meta = {"seconds": args.seconds, "threads": args.threads, "tokens_per_second": TOKENS_PER_SECOND,
            "block_s": BLOCK / 16000, "tentative_s": TENTATIVE_SECONDS}  # fmt: skip
    (RESULTS / "live_latency.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    (RESULTS / "live_latency.md").write_text(table(rows))
    print(table(rows))


if __name__ == "__main__":
    main()
