"""``qwen-whisper-server``: bind the port, load one model behind it, then serve it with uvicorn until interrupted.

This module owns the command line, logging setup and the model's lifetime; it never prints (the startup
banner and every message go through ``logging``). The port is bound before the model loads, so that a first
run that downloads and converts a checkpoint answers 503 ("loading") rather than looking like a dead port;
"ready" is logged once both are done. A model that cannot be loaded is logged and the process exits with 1.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence

import qwen_whisper_compat
from qwen_whisper_compat import QwenWhisperError, Whisper
from qwen_whisper_compat.serving import BackgroundModel, is_loopback
from qwen_whisper_server import __version__
from qwen_whisper_server.app import ServerOptions, create_app
from qwen_whisper_server.gate import parse_networks

logger = logging.getLogger("qwen_whisper_server")

API_KEY_ENV = "QWEN_WHISPER_API_KEY"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    p = argparse.ArgumentParser(
        prog="qwen-whisper-server",
        description="OpenAI-compatible speech-to-text server (POST /v1/audio/transcriptions, the Realtime "
        "transcription WebSocket /v1/realtime) on Qwen3-ASR.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--model",
        default="turbo",
        help="model name (whisper's or Qwen's, see qwen_whisper_compat.available_models()) or folder",
    )
    p.add_argument(
        "--aligner",
        default=None,
        help="forced aligner name or folder; 'none' for no aligner (then no word timestamps); "
        "default: the one that comes with the model",
    )
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "dml", "coreml"])
    p.add_argument("--threads", type=int, default=0, help="CPU threads for inference (0: all)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind; other than loopback, set an API key")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--api-key",
        default=None,
        help=f"require 'Authorization: Bearer KEY' on /v1 (default: ${API_KEY_ENV}, else no key)",
    )
    p.add_argument(
        "--keyless-networks",
        nargs="+",
        default=[],
        metavar="NETWORK",
        help="with an API key: clients in these networks (e.g. 172.16.0.0/12 for Docker, 192.168.1.20) call the "
        "host contracts /asr, /detect-language and /inference without it (Bazarr, Speakr and whisper.cpp "
        "clients send no key); /v1 and /load still need the key",
    )
    p.add_argument(
        "--inference-path",
        default="/inference",
        help="the path of whisper.cpp's inference endpoint (as whisper.cpp's server --inference-path)",
    )
    p.add_argument(
        "--max-queue",
        type=int,
        default=8,
        help="requests that may wait behind the running transcription; more get 503 + Retry-After",
    )
    p.add_argument(
        "--max-upload-mb",
        type=float,
        default=25.0,
        help="largest request body in MiB (larger get 413), and the most audio a realtime session may "
        "have sent that is not transcribed yet",
    )
    p.add_argument(
        "--max-live-sessions",
        type=int,
        default=2,
        help="realtime transcription sessions (/v1/realtime) at once; one more gets an error event",
    )
    p.add_argument("--model-id", default=None, help="the id GET /v1/models lists (default: --model)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server: bind the port, then load the model while answering 503; returns the exit status (1 when
    the model cannot be loaded)."""
    import uvicorn

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.max_queue < 0:
        parser.error("--max-queue must be 0 or more")
    if args.max_upload_mb <= 0:
        parser.error("--max-upload-mb must be positive")
    if args.max_live_sessions < 1:
        parser.error("--max-live-sessions must be 1 or more")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    api_key = args.api_key or os.environ.get(API_KEY_ENV) or None
    try:
        keyless = parse_networks(args.keyless_networks)
    except ValueError as e:
        parser.error(f"--keyless-networks: {e}")
    if keyless and api_key is None:
        parser.error("--keyless-networks exempts clients from the API key: set --api-key (or $QWEN_WHISPER_API_KEY)")
    aligner: str | bool | None = False if (args.aligner or "").lower() == "none" else args.aligner
    device = None if args.device == "auto" else args.device

    def load(name: str) -> Whisper:
        return qwen_whisper_compat.load_model(name, device=device, aligner=aligner, threads=args.threads)

    options = ServerOptions(
        model_id=args.model_id or args.model,
        max_queue=args.max_queue,
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        api_key=api_key,
        keyless_networks=keyless,
        max_live_sessions=args.max_live_sessions,
        load=load,
        inference_path=args.inference_path,
    )
    loading = BackgroundModel(lambda: load(args.model), args.model)
    app = create_app(loading, options)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_config=None,
                            log_level=args.log_level, ws="websockets-sansio",
                            ws_max_size=options.max_upload_bytes * 2)  # fmt: skip
    server = uvicorn.Server(config)
    sock = config.bind_socket()  # logs and exits when the address is taken
    sock.listen(config.backlog)  # connections wait in the backlog until the loop serves them, not refused
    if keyless:
        logger.info("clients in %s call /asr, /detect-language and %s without the API key",
                    ", ".join(map(str, keyless)), options.inference_path)  # fmt: skip
    if not is_loopback(args.host) and api_key is None:
        logger.warning("listening on %s without an API key: anyone who can reach it can use it", args.host)
    where = (f"http://{args.host}:{args.port} (/v1, /asr, {options.inference_path}) and "
             f"ws://{args.host}:{args.port}/v1/realtime")  # fmt: skip
    logger.info("qwen-whisper-server %s: listening at %s; loading model %s (503 until it is loaded)", __version__,
                where, args.model)  # fmt: skip

    def loaded(done: BackgroundModel[Whisper]) -> None:
        if done.error is not None:
            _log_load_error(args.model, done.error)
            server.should_exit = True  # uvicorn's main loop stops within a tick; main() then returns 1
            return
        model = done.model
        logger.info("loaded model %s on %s (%s)", args.model, model.device,
                    "with the forced aligner" if model.has_aligner else "no aligner: no word timestamps")  # fmt: skip
        logger.info("qwen-whisper-server %s: serving %s at %s (queue %d, uploads up to %g MiB, %d live sessions, "
                    "%s); ready", __version__, options.model_id, where, options.max_queue, args.max_upload_mb,
                    options.max_live_sessions, "API key required" if api_key else "no API key")  # fmt: skip

    loading.start(loaded)
    try:
        server.run(sockets=[sock])
    finally:
        app.state.served.close()  # the model, or the one POST /load put in its place
    return 1 if loading.state == "failed" else 0


def _log_load_error(name: str, error: BaseException) -> None:
    if isinstance(error, QwenWhisperError):
        logger.error("cannot load model %r: %s", name, error)
    else:  # not one of ours: a bug or the machine (memory, disk); its traceback helps
        logger.error("cannot load model %r: %s: %s", name, type(error).__name__, error, exc_info=error)
