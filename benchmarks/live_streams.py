"""How many live streams one machine keeps in real time, as a server runs them: N streams on one loaded model,
each fed by a thread of its own in 100 ms blocks at real-time pace (the real clock: blocks arrive every
100 ms whatever the streams do; a stream that falls behind is given everything that has arrived at once), all
decoding on the model's one decoder, which takes their steps in turns (see ``engine/turns.py``).

A stream count meets the latency goals when, over every stream, the partial latency p95 is at most 2 s (with
partials on) and the final latency p95 at most 3 s, and no stream ends more than 3 s after its audio did
(latencies as in ``live_latency.py``); it keeps pace when every stream's last final comes at most
``PACE_SECONDS`` after its audio ended (the streams do not fall further and further behind). For each
precision and partials on/off the benchmark tries 1, 2, 3, ... streams until one count no longer keeps pace,
and reports the most streams that met the goals and the most that kept pace. Random weights of the real 0.6B shape, 4 tokens forced
per audio second, the scripted tokens of ``live_latency.py`` (each stream follows its own script).

Each stream hears a different stretch of the same speech (they start a third of the audio apart), so their
segments do not close at the same moments.

Run: ``python benchmarks/live_streams.py`` (``--configs q8_0/int8 q4_k/int8``, ``--seconds 60``, ``--most 6``);
writes ``results/live_streams.json`` and ``results/live_streams.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness import RESULTS, speech, write_results
from live_latency import (
    BLOCK,
    TOKENS_PER_SECOND,
    Script,
    install_script,
    latencies,
    model_folder,
    options,
    percentile,
    scripted,
)

PARTIAL_P95_GOAL = 2.0
FINAL_P95_GOAL = 3.0
#: A stream keeps pace when its last final comes at most this long after its audio ended.
PACE_SECONDS = 10.0


def run_streams(folder: str, n: int, seconds: float, threads: int, partials: bool) -> dict[str, object]:
    """``n`` streams of ``seconds`` each, at real-time pace, on one model; their latencies and the CPU used."""
    from qwen_whisper_compat.engine.live import LiveOptions, LiveSession
    from qwen_whisper_compat.engine.pipeline import Transcriber
    from qwen_whisper_compat.vad.silero import SileroVad

    sr = 16000
    audio = speech(seconds * 3)
    live = LiveOptions(partials=partials)
    vad = SileroVad()
    results: list[dict[str, object]] = [{} for _ in range(n)]
    with Transcriber(folder, threads=threads) as t:
        install_script(t.decoder)
        warm = LiveSession(t, vad.stream(), options(), live)
        warm.feed(audio[: 3 * sr])
        warm.finish()
        sessions = [LiveSession(t, vad.stream(), options(), live) for _ in range(n)]  # leases: the context grows now
        barrier = threading.Barrier(n + 1)
        start = 0.0

        def feed(k: int) -> None:
            session = sessions[k]
            scripted(session, Script())
            offset = int(k * seconds / max(1, n) * sr) // BLOCK * BLOCK
            mine = audio[offset : offset + int(seconds * sr)]
            events: list[tuple[float, object]] = []
            fed = 0
            barrier.wait()
            while fed < mine.size:
                now = time.monotonic() - start
                arrived = min(mine.size, int(now * sr) // BLOCK * BLOCK)
                if arrived <= fed:
                    time.sleep(max(0.0, (fed + BLOCK) / sr - now))
                    continue
                out = session.feed(mine[fed:arrived])
                events += [(time.monotonic() - start, e) for e in out]
                fed = arrived
            out = session.finish()
            done = time.monotonic() - start
            events += [(done, e) for e in out]
            partial, final = latencies(events, sr)
            results[k] = {"partial": partial, "final": final, "late_s": done - seconds, "partials": session.stats.partials}

        workers = [threading.Thread(target=feed, args=(k,)) for k in range(n)]
        for w in workers:
            w.start()
        cpu0 = time.process_time()
        start = time.monotonic()
        barrier.wait()
        for w in workers:
            w.join(timeout=seconds * 20 + 600)
            if w.is_alive():
                raise RuntimeError("a stream thread did not end")
        cpu = time.process_time() - cpu0
        longest_live_wait = t.decoder.turns.stats.longest_wait.get(0, 0.0)
    partial = [x for r in results for x in r["partial"]]  # type: ignore[attr-defined]
    final = [x for r in results for x in r["final"]]  # type: ignore[attr-defined]
    row: dict[str, object] = {
        "streams": n,
        "partials": partials,
        "partial_p50_s": percentile(partial, 50) if partials else None,
        "partial_p95_s": percentile(partial, 95) if partials else None,
        "final_p50_s": percentile(final, 50),
        "final_p95_s": percentile(final, 95),
        "late_max_s": max(float(r["late_s"]) for r in results),  # type: ignore[arg-type]
        "partial_count": sum(int(r["partials"]) for r in results),  # type: ignore[call-overload]
        "cpu_s_per_audio_s": cpu / (seconds * n),
        "longest_live_wait_s": longest_live_wait,
    }
    row["keeps_up"] = keeps_up(row)
    row["keeps_pace"] = float(row["late_max_s"]) <= PACE_SECONDS  # type: ignore[arg-type]
    return row


def keeps_up(row: dict[str, object]) -> bool:
    final, late = row["final_p95_s"], row["late_max_s"]
    if final is None or float(final) > FINAL_P95_GOAL or float(late) > FINAL_P95_GOAL:  # type: ignore[arg-type]
        return False
    partial = row["partial_p95_s"]
    return not row["partials"] or (partial is not None and float(partial) <= PARTIAL_P95_GOAL)  # type: ignore[arg-type]


def child(args: list[str]) -> dict[str, object]:
    from harness import run_child

    result: dict[str, object] = run_child(__file__, args)
    return result


def table(rows: list[dict[str, object]]) -> str:
    def f(v: object, spec: str = ".2f") -> str:
        return "" if v is None else format(v, spec)

    lines = [
        ("| decoder/encoder | partials | streams | latency goals met | keeps pace | partial p50 / p95 s "
         "| final p50 / p95 s | last final after the audio s | CPU s per audio s per stream | longest live wait s |"),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['config']} | {'on' if r['partials'] else 'off'} | {r['streams']} | {'yes' if r['keeps_up'] else 'no'} "
            f"| {'yes' if r['keeps_pace'] else 'no'} "
            f"| {f(r['partial_p50_s'])} / {f(r['partial_p95_s'])} | {f(r['final_p50_s'])} / {f(r['final_p95_s'])} "
            f"| {f(r['late_max_s'])} | {f(r['cpu_s_per_audio_s'], '.3f')} | {f(r['longest_live_wait_s'])} |"
        )
    return "\n".join(lines) + "\n"


def summary(rows: list[dict[str, object]]) -> dict[str, dict[str, int]]:
    """Per precision and partials on/off: the most streams that met the latency goals, and that kept pace."""
    best: dict[str, dict[str, int]] = {}
    for r in rows:
        name = f"{r['config']} partials {'on' if r['partials'] else 'off'}"
        entry = best.setdefault(name, {"latency_goals": 0, "pace": 0})
        for key, flag in (("latency_goals", "keeps_up"), ("pace", "keeps_pace")):
            if r[flag]:
                entry[key] = max(entry[key], int(r["streams"]))  # type: ignore[call-overload]
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="0.6b", choices=["0.6b", "1.7b"])
    ap.add_argument("--configs", nargs="+", default=["q8_0/int8", "q4_k/int8"])
    ap.add_argument("--partials", choices=["on", "off"], nargs="+", default=["on", "off"])
    ap.add_argument("--seconds", type=float, default=60.0, help="audio per stream")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--most", type=int, default=8, help="the most streams tried")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        folder, n, seconds, threads, partials = args.child
        print(json.dumps(run_streams(folder, int(n), float(seconds), int(threads), partials == "on")))
        return
    rows: list[dict[str, object]] = []
    for config in args.configs:
        folder = str(model_folder(args.size, config))
        for partials in args.partials:
            for n in range(1, args.most + 1):
                row = {"config": config, **child([folder, str(n), str(args.seconds), str(args.threads), partials])}
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
                if not row["keeps_pace"]:
                    break
    meta = {"size": args.size, "seconds_per_stream": args.seconds, "threads": args.threads,
            "tokens_per_second": TOKENS_PER_SECOND, "block_s": BLOCK / 16000, "partial_p95_goal_s": PARTIAL_P95_GOAL,
            "final_p95_goal_s": FINAL_P95_GOAL, "pace_s": PACE_SECONDS, "most_streams": summary(rows)}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    write_results("live_streams", meta, rows, table(rows))
    print(json.dumps(summary(rows)))


if __name__ == "__main__":
    main()
