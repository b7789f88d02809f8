"""``qwen-whisper-wyoming``: listen, load one model, then serve it over the Wyoming protocol until stopped.

The command line is ``wyoming-faster-whisper``'s where it applies (``--uri``, ``--zeroconf [NAME]``,
``--model``, ``--language``, ``--data-dir``, ``--download-dir``, ``--device``, ``--initial-prompt``,
``--local-files-only``, ``--debug``, ``--log-format``), so a Home Assistant add-on or a systemd unit written for
it needs only the program name changed. This module owns the command line, logging and the model's
lifetime; it never prints (messages go through ``logging``, on stderr: with ``--uri stdio://`` stdout is
the protocol).

The server listens before the model loads: while it downloads, converts and loads, ``describe`` is answered
and a transcription gets an ``error`` event (code ``loading``) (over ``stdio://`` the events wait until it is
loaded). "ready" is logged once both are done (and the zeroconf announcement, if asked for, is made then); a
model that cannot be loaded is logged and the process exits with 1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import ipaddress
import logging
import signal
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial
from pathlib import Path
from urllib.parse import urlparse

import qwen_whisper_compat
from qwen_whisper_compat import ModelNotAvailableError, QwenWhisperError, UnsupportedOptionError, Whisper
from qwen_whisper_compat.serving import BackgroundModel, is_loopback
from qwen_whisper_compat.tokenizer import to_language_code
from qwen_whisper_wyoming import __version__
from qwen_whisper_wyoming.handler import TranscribeHandler
from qwen_whisper_wyoming.service import Service, Settings

logger = logging.getLogger("qwen_whisper_wyoming")

DEFAULT_URI = "tcp://127.0.0.1:10300"
DEFAULT_MODEL = "qwen3-asr-0.6b"
ZEROCONF_NAME = "qwen-whisper"
#: The mDNS service type of Wyoming servers (what Home Assistant browses for).
SERVICE_TYPE = "_wyoming._tcp.local."


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    p = argparse.ArgumentParser(
        prog="qwen-whisper-wyoming",
        description="Wyoming speech-to-text server (Home Assistant's Wyoming integration) on Qwen3-ASR, "
        "transcribing while the audio arrives.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--uri",
        default=DEFAULT_URI,
        help="where to listen: tcp://HOST:PORT, unix://PATH or stdio://; tcp://0.0.0.0:10300 for Home "
        "Assistant on another machine",
    )
    p.add_argument(
        "--zeroconf",
        nargs="?",
        const=ZEROCONF_NAME,
        default=None,
        metavar="NAME",
        help=f"announce the server to Home Assistant over zeroconf (mDNS) under NAME (default "
        f"{ZEROCONF_NAME}); needs the zeroconf extra and a tcp:// --uri",
    )
    p.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="model name (whisper's or Qwen's, see qwen_whisper_compat.available_models()) or folder",
    )
    p.add_argument(
        "--language",
        default="auto",
        help="language of the speech (a code such as en or zh), or auto to detect it; a client's "
        "transcribe event may name another",
    )
    p.add_argument(
        "--data-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="folder to look for downloaded models in (repeat for more); default: the package's cache",
    )
    p.add_argument(
        "--download-dir",
        default=None,
        metavar="DIR",
        help="folder to download models into (default: the first --data-dir)",
    )
    p.add_argument(
        "--local-files-only", action="store_true", help="never download: use a model already in a data folder"
    )
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "dml", "coreml"])
    p.add_argument(
        "--threads", "--cpu-threads", dest="threads", type=int, default=0, help="CPU threads for inference (0: all)"
    )
    p.add_argument(
        "--initial-prompt",
        default=None,
        help="context for every transcription (names, terms, spellings), as Qwen3-ASR's context",
    )
    p.add_argument(
        "--max-sessions", type=int, default=1, help="transcriptions at once (each more holds more decoder memory)"
    )
    p.add_argument(
        "--max-queue",
        type=int,
        default=4,
        help="clients that may wait for a transcription to finish; one more gets an error event",
    )
    p.add_argument("--debug", action="store_true", help="log DEBUG messages")
    p.add_argument("--log-format", default=logging.BASIC_FORMAT, help="format of the log messages")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p  # fmt: skip


def run(argv: Sequence[str] | None = None) -> int:
    """The console script: parse, check, load the model, serve; the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    uri = urlparse(args.uri)
    if uri.scheme not in ("tcp", "unix", "stdio"):
        parser.error(f"--uri must be tcp://HOST:PORT, unix://PATH or stdio://, got {args.uri!r}")
    if uri.scheme == "tcp" and (uri.hostname is None or uri.port is None):
        parser.error(f"--uri {args.uri!r} needs a host and a port, e.g. {DEFAULT_URI}")
    if args.zeroconf and uri.scheme != "tcp":
        parser.error("--zeroconf needs a tcp:// --uri (Home Assistant connects to a host and port)")
    if args.zeroconf and importlib.util.find_spec("zeroconf") is None:
        parser.error("--zeroconf needs the zeroconf package: pip install 'qwen-whisper-wyoming[zeroconf]'")
    if args.max_sessions < 1:
        parser.error("--max-sessions must be 1 or more")
    if args.max_queue < 0:
        parser.error("--max-queue must be 0 or more")
    try:
        language = None if args.language.lower() == "auto" else to_language_code(args.language)
    except UnsupportedOptionError as e:
        parser.error(f"--language: {e}")
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO, format=args.log_format)

    settings = Settings(
        model_name=Path(args.model).name if Path(args.model).is_dir() else args.model,
        language=language,
        initial_prompt=args.initial_prompt or None,
        max_sessions=args.max_sessions,
        max_queue=args.max_queue,
    )
    loading = BackgroundModel(partial(load, args), args.model)
    service = Service(loading, settings, __version__)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(service, args.uri, args.zeroconf))
    except (AnnounceError, CannotServe) as e:
        logger.error("%s", e)
        return 1
    finally:
        service.shutdown()
        loading.close()
    return 0


def load(args: argparse.Namespace) -> Whisper:
    """The model: from the first data folder that holds it, else downloaded into the download folder.

    Raises:
        QwenWhisperError: The model cannot be found or loaded (the message says what to do).
    """
    download_dir = args.download_dir or (args.data_dir[0] if args.data_dir else None)
    options = {"device": None if args.device == "auto" else args.device, "aligner": False, "threads": args.threads}
    for folder in args.data_dir:
        if folder == download_dir:
            continue
        try:
            model = qwen_whisper_compat.load_model(args.model, download_root=folder, local_files_only=True, **options)
        except ModelNotAvailableError:
            continue
        logger.info("loaded %s from %s", args.model, folder)
        return model
    model = qwen_whisper_compat.load_model(
        args.model, download_root=download_dir, local_files_only=args.local_files_only, **options
    )
    logger.info("loaded %s on %s", args.model, model.device)
    return model


async def serve(service: Service, uri: str, zeroconf: str | None) -> None:
    """Listen at ``uri``, load the model (``service.loading``), and serve until stopped (SIGTERM, Ctrl-C, or
    the end of stdin for ``stdio://``). A socket is listened at before the load starts; ``stdio://`` has no
    address that could look dead, and its one client cannot come back after an error: its events are read
    once the model is loaded (they wait in the pipe).

    Raises:
        CannotServe: The address cannot be listened at, the model cannot be loaded, or it does not transcribe
            the ``--language`` asked for.
        AnnounceError: ``zeroconf`` is given and the name cannot be announced.
    """
    from wyoming.server import AsyncServer, AsyncStdioServer, AsyncTcpServer

    server = AsyncServer.from_uri(uri)
    handlers = partial(TranscribeHandler, service)
    loop = asyncio.get_running_loop()
    stdio = isinstance(server, AsyncStdioServer)
    stop = asyncio.Event()
    if not stdio:
        try:
            await server.start(handlers)  # listening from here on
        except OSError as e:
            raise CannotServe(f"cannot listen at {uri}: {e}") from e
        with contextlib.suppress(NotImplementedError, RuntimeError):  # no signal handlers on Windows' loop
            loop.add_signal_handler(signal.SIGTERM, stop.set)
    settings = service.settings
    logger.info("qwen-whisper-wyoming %s: %s; loading model %s", __version__,
                "reading stdin once it is loaded" if stdio else f"listening at {uri}", settings.model_name)  # fmt: skip
    loaded = asyncio.Event()
    service.loading.start(lambda _: _call_soon(loop, loaded.set))
    waiting, stopping = asyncio.ensure_future(loaded.wait()), asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not loaded.is_set():
            return  # stopped while the model loaded
        _check_loaded(service)
        async with contextlib.AsyncExitStack() as stack:
            if zeroconf:
                assert isinstance(server, AsyncTcpServer)
                await stack.enter_async_context(announced(zeroconf, server.host, server.port))
            logger.info(
                "qwen-whisper-wyoming %s: serving %s at %s (%d transcription(s) at once, %d may wait); ready",
                __version__, settings.model_name, uri, settings.max_sessions, settings.max_queue,
            )  # fmt: skip
            if stdio:
                await server.run(handlers)  # until stdin ends (wyoming turns SIGTERM into its end)
            else:
                await stopping
    finally:
        waiting.cancel()
        stopping.cancel()
        if not stdio:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGTERM)
            await server.stop()


def _check_loaded(service: Service) -> None:
    """Raises :class:`CannotServe` when the model failed to load or lacks the server's default language."""
    error = service.loading.error
    if error is not None:
        if isinstance(error, QwenWhisperError):
            raise CannotServe(f"cannot load model {service.loading.name!r}: {error}") from error
        logger.error("the load failed", exc_info=error)  # not one of ours: a bug or the machine
        raise CannotServe(f"cannot load model {service.loading.name!r}: {type(error).__name__}: {error}") from error
    language = service.settings.language
    if language is not None and language not in service.languages:
        raise CannotServe(f"--language: the model {service.loading.name!r} does not transcribe {language!r}; it "
                          f"transcribes {', '.join(sorted(service.languages))}")  # fmt: skip


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], object]) -> None:
    with contextlib.suppress(RuntimeError):  # the loop has ended: the server stopped while the model loaded
        loop.call_soon_threadsafe(callback)


class CannotServe(Exception):
    """The server cannot serve the model (the message says why)."""


class AnnounceError(Exception):
    """The server cannot be announced over zeroconf (the message says why and what to do)."""


@contextlib.asynccontextmanager
async def announced(name: str, host: str, port: int) -> AsyncIterator[None]:
    """``NAME._wyoming._tcp.local.`` announced over mDNS (the service type Home Assistant's Wyoming
    integration discovers) while the block runs; withdrawn after it, so no stale entry is left behind."""
    from zeroconf import NonUniqueNameException
    from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

    if host in ("", "0.0.0.0", "::"):
        host = _outward_address()  # listening everywhere: announce the address other machines reach
    elif is_loopback(host):
        logger.warning("--zeroconf announces %s, a loopback address: Home Assistant on another machine cannot "
                       "reach it (listen with --uri tcp://0.0.0.0:%d)", host, port)  # fmt: skip
    try:
        address = ipaddress.ip_address(host).packed
    except ValueError:
        address = socket.inet_aton(socket.gethostbyname(host))
    info = AsyncServiceInfo(SERVICE_TYPE, f"{name}.{SERVICE_TYPE}", addresses=[address], port=port)
    zeroconf = AsyncZeroconf()
    try:
        await (await zeroconf.async_register_service(info))  # the inner await: the announcement is sent
    except NonUniqueNameException as e:
        await zeroconf.async_close()
        raise AnnounceError(
            f"another service is announced as {name}.{SERVICE_TYPE}: pick another --zeroconf NAME"
        ) from e
    logger.info("announced over zeroconf as %s.%s (%s port %d)", name, SERVICE_TYPE, host, port)
    try:
        yield
    finally:
        await (await zeroconf.async_unregister_service(info))  # the inner await: the goodbye is sent
        await zeroconf.async_close()
        logger.info("withdrew the zeroconf announcement %s.%s", name, SERVICE_TYPE)


def _outward_address() -> str:
    """The address of the interface that multicast (mDNS) leaves through."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("224.0.0.251", 5353))  # no packet is sent: this only picks a route
            return str(probe.getsockname()[0])
        except OSError as e:
            raise AnnounceError("cannot tell this machine's network address for zeroconf: listen on it explicitly "
                                "(--uri tcp://ADDRESS:10300)") from e  # fmt: skip
