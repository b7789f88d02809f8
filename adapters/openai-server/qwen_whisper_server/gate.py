"""What every HTTP contract of the server shares: who may call (the API key, keyless networks), the upload
limit, the model (503 while it loads), and running a job on the model thread with its errors mapped.

This module owns those mechanisms once; each contract (OpenAI in :mod:`.app`, whisper-asr-webservice in
:mod:`.webservice`, whisper.cpp in :mod:`.whispercpp`) renders a :class:`~.schema.RequestError` in its own
error shape with the ``render`` it passes to :meth:`Gate.guard`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from starlette.datastructures import FormData
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Message, Receive

from qwen_whisper_compat import AudioLoadError, MissingDependencyError, UnsupportedOptionError, Whisper
from qwen_whisper_compat.serving import Admission, ModelLoading, QueueFull
from qwen_whisper_server.schema import RequestError
from qwen_whisper_server.served import ServedModel

logger = logging.getLogger("qwen_whisper_server.gate")

T = TypeVar("T")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: After refusing a request, read and drop at most this much of the body it is still sending, so that the
#: client sees our error response rather than a connection reset.
DRAIN_BYTES = 16 * 1024 * 1024
DRAIN_SECONDS = 10.0
#: Retry-After (seconds) of the 503 answered while the model loads.
LOADING_RETRY_SECONDS = 5


def parse_networks(values: Sequence[str]) -> tuple[Network, ...]:
    """Networks written as ``10.0.0.0/8``, ``172.17.0.2`` or ``fd00::/8``.

    Raises:
        ValueError: One is not an IP network (the message names it).
    """
    networks = []
    for value in values:
        for part in value.split(","):
            if not part.strip():
                continue
            try:
                networks.append(ipaddress.ip_network(part.strip(), strict=False))
            except ValueError:
                raise ValueError(f"{part.strip()!r} is not an IP network such as 172.16.0.0/12 or 10.0.0.5") from None
    return tuple(networks)


@dataclass(frozen=True)
class Access:
    """Who may call. With no key, everyone who reaches the port; with one, ``Authorization: Bearer KEY``, except
    that clients in ``keyless_networks`` may call the host contracts (``/asr``, ``/inference``, ...) without it:
    Bazarr, Speakr and whisper.cpp clients send no key."""

    api_key: str | None = None
    keyless_networks: tuple[Network, ...] = ()

    def check(self, request: Request, *, keyless: bool = False) -> None:
        """Raises RequestError (401) unless the request may call; ``keyless``: the route is a host contract."""
        if self.api_key is None or (keyless and self.in_keyless_network(request)):
            return
        header = request.headers.get("authorization", "")
        if not header:
            hint = " (or call from a network listed in --keyless-networks)" if keyless else ""
            raise RequestError(401, f"You didn't provide an API key. Send it as 'Authorization: Bearer KEY'{hint}.",
                               code="missing_api_key")  # fmt: skip
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self.api_key.encode()):
            raise RequestError(401, "Incorrect API key provided.", code="invalid_api_key")

    def in_keyless_network(self, request: Request) -> bool:
        """Whether the client's address lies in one of the keyless networks."""
        if not self.keyless_networks or request.client is None:
            return False
        try:
            address = ipaddress.ip_address(request.client.host)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.keyless_networks)


class UploadTooLarge(RequestError):
    """The request body is larger than ``--max-upload-mb``."""

    def __init__(self, limit: int, size: int, how: str = "read") -> None:
        super().__init__(413, f"Maximum content size limit ({limit}) exceeded ({size} bytes {how})",
                         param="file", code="file_too_large")  # fmt: skip


class LimitedBody:
    """A request's ASGI ``receive``, counting body bytes and raising :class:`UploadTooLarge` past the limit."""

    def __init__(self, receive: Receive, limit: int) -> None:
        self._receive = receive
        self.limit = limit
        self.received = 0
        self.finished = False

    async def __call__(self) -> Message:
        message = await self._receive()
        self._count(message)
        if self.received > self.limit:
            raise UploadTooLarge(self.limit, self.received)
        return message

    def _count(self, message: Message) -> None:
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            self.finished = not message.get("more_body", False)
        else:
            self.finished = True

    async def discard_rest(self) -> None:
        """Read and drop what the client still sends (bounded by ``DRAIN_BYTES`` and ``DRAIN_SECONDS``)."""

        async def drain() -> None:
            start = self.received
            while not self.finished and self.received - start < DRAIN_BYTES:
                self._count(await self._receive())

        with contextlib.suppress(asyncio.TimeoutError, ClientDisconnect):
            await asyncio.wait_for(drain(), DRAIN_SECONDS)


class Gate:
    """One server's access rules, upload limit, model and model thread, as every contract uses them."""

    def __init__(self, served: ServedModel, admission: Admission, access: Access, max_upload_bytes: int) -> None:
        self.served = served
        self.admission = admission
        self.access = access
        self.max_upload_bytes = max_upload_bytes

    def model(self, request: Request, *, keyless: bool = False) -> Whisper:
        """The model as it is now, once the request may call (for checks; jobs lease it in :meth:`run`).

        Raises:
            RequestError: 401 for a missing or wrong key; 503 while the model loads (or when it failed to).
        """
        self.access.check(request, keyless=keyless)
        try:
            return self.served.model
        except ModelLoading as e:
            raise loading_error(e) from e

    async def guard(
        self,
        request: Request,
        handle: Callable[[Request], Awaitable[Response]],
        render: Callable[[RequestError], Response],
    ) -> Response:
        """Answer ``request`` with ``handle`` (given the request with its body limited), a refusal it raises
        rendered with ``render`` after the rest of the upload is drained, and a client gone mid-upload."""
        body = LimitedBody(request.receive, self.max_upload_bytes)
        try:
            declared = request.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_upload_bytes:
                raise UploadTooLarge(self.max_upload_bytes, int(declared), "declared")
            return await handle(Request(request.scope, body))
        except RequestError as e:
            await body.discard_rest()
            logger.info("refused %s %s: %d %s", request.method, request.url.path, e.status, e.message)
            return render(e)
        except ClientDisconnect:
            logger.info("the client went away during the upload to %s", request.url.path)
            return Response(status_code=400)

    @contextlib.asynccontextmanager
    async def form(self, request: Request, max_files: int = 1) -> AsyncIterator[FormData]:
        """The request's form (multipart or urlencoded).

        Raises:
            RequestError: 400 when the body is not a form that can be parsed.
        """
        try:
            form = await request.form(max_files=max_files, max_fields=64)
        except (RequestError, ClientDisconnect):
            raise
        except Exception as e:  # starlette's HTTPException, python-multipart's errors: a malformed body
            detail = getattr(e, "detail", None) or str(e) or type(e).__name__
            raise RequestError(400, f"the request body is not a form that can be read: {detail}",
                               code="invalid_form") from e  # fmt: skip
        try:
            yield form
        finally:
            await form.close()

    async def run(self, job: Callable[[Whisper], T]) -> T:
        """Run ``job(model)`` on the model thread, after the jobs ahead of it, with the model leased for it.

        Raises:
            RequestError: 503 when the queue is full (with Retry-After) or the model is not loaded; 400 when
                the audio cannot be decoded or an option is not supported here; 501 when an optional feature
                (speaker labels) is not installed on the server.
        """

        def leased() -> T:
            with self.served.lease() as model:
                return job(model)

        try:
            return await self.admission.submit(leased)
        except QueueFull as e:
            raise RequestError(503, "The server is busy transcribing other requests; retry later.",
                               kind="server_error", code="server_busy",
                               headers={"Retry-After": str(e.retry_after)}) from e  # fmt: skip
        except ModelLoading as e:
            raise loading_error(e) from e
        except AudioLoadError as e:
            raise RequestError(400, f"The audio could not be decoded or its format is not supported ({e})",
                               param="file", code="invalid_value") from e  # fmt: skip
        except UnsupportedOptionError as e:
            raise RequestError(400, str(e), code="unsupported_value") from e
        except MissingDependencyError as e:  # an optional feature (speaker labels) this server was installed without
            raise RequestError(501, f"This server cannot do that: {e}", kind="server_error",
                               code="not_installed") from e  # fmt: skip


def loading_error(e: ModelLoading) -> RequestError:
    """The 503 answered while the model loads (or after it failed to), with Retry-After."""
    return RequestError(503, f"{e}.", kind="server_error", code="model_loading",
                        headers={"Retry-After": str(LOADING_RETRY_SECONDS)})  # fmt: skip


__all__ = ["Access", "Gate", "LimitedBody", "UploadTooLarge", "parse_networks"]
