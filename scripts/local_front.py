"""The local stack's HTTP front: waitress serving the Chalice app the way API Gateway fronts it.

`chalice local`'s server (http.server) queues 5 connections, reads whatever Content-Length
announces before any check, never answers a Content-Length it cannot parse, and on SIGTERM keeps
answering on open keep-alive connections while the stack is torn down under it. This front is
waitress, chosen over cheroot because it reads requests on one event loop and hands only complete
requests to its worker threads: a slow or stalled client holds a socket, never a thread, and its
parser checks Content-Length and the header size before reading a body. What it adds, through
waitress's own extension points (the `channel_class`, `task_class` and `error_task_class`
attributes):

- every answer of its own is problem+json (`chalicelib.api.errors`), never waitress's text/plain:
  400 `malformed-request` (bad request line, Content-Length, chunking, header bytes, or a
  Transfer-Encoding other than chunked), 413 before the body is read, 431, 404 for a path no
  route matches, and 503 `unavailable` while it shuts down;
- a whole request (line, headers and body) must arrive within `request_seconds`, however slowly
  its bytes trickle in; waitress's own timeout only counts silence;
- `shutdown()` drains: it stops accepting, lets the requests already handed to the app finish and
  reach their sockets, and answers any later request 503 with `Connection: close`, so no client
  is told 202 for work the stack then drops as it stops.

The app is called through `chalice.local.LocalGateway`, which builds the API Gateway event and
invokes the app as `chalice local` does. It runs only on a developer's machine and in tests; on
AWS, API Gateway is the front (with its gateway responses for the same cases).
"""
from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, cast

from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser, ParsingError
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask, WSGITask
from waitress.utilities import (
    BadRequest,
    Error,
    RequestEntityTooLarge,
    RequestHeaderFieldsTooLarge,
    ServerNotImplemented,
)

from chalicelib.api import edges
from chalicelib.api.errors import (
    PROBLEM_CONTENT_TYPE,
    ApiError,
    HeaderTooLarge,
    InternalError,
    MalformedRequest,
    PayloadTooLarge,
    RequestTimeout,
    ServiceUnavailable,
    problem_document,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

logger = logging.getLogger(__name__)

#: A method token (RFC 9110 5.6.2), whatever its letters' case.
METHOD_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

#: Headers that belong to one connection (RFC 9110 7.6.1); waitress sets its own and refuses an
#: application that sets them.
HOP_BY_HOP = frozenset(
    ("connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
     "transfer-encoding", "upgrade")
)


@dataclass(frozen=True)
class FrontLimits:
    """What one client may cost the local front."""

    #: API Gateway's payload limit (10 MB), so a body is refused here exactly when AWS would
    #: refuse it at its front; the app's smaller per-route limits then answer as they do on AWS.
    max_body_bytes: int = 10 * 1024 * 1024
    #: API Gateway's limit on the request line and headers together (10,240 bytes).
    max_header_bytes: int = 10 * 1024
    #: A whole request must arrive within this long: a client sending a body a byte at a time
    #: is cut off. A 10 MB body over loopback takes milliseconds.
    request_seconds: float = 10.0
    #: An idle keep-alive connection is closed after this long (waitress's default).
    idle_seconds: int = 120
    #: Connections the kernel queues before they are accepted (chalice local's was 5).
    backlog: int = 1024
    #: Open connections; past this the front stops accepting and the backlog queues them.
    connections: int = 1000
    #: Requests the app serves at once. Emulated AWS calls are serialised anyway (see
    #: `_start_moto` in local_stack.py); idle keep-alive connections hold no thread.
    threads: int = 8
    #: How long shutdown waits for requests in flight before it closes every connection.
    drain_seconds: float = 10.0


@dataclass(frozen=True)
class Drained:
    """What a shutdown did, for its log line."""

    seconds: float
    in_flight: int  #: requests that were in the app when the drain began
    refused: int  #: requests answered 503 while it drained
    complete: bool  #: every request in flight finished before the deadline


class Gate:
    """Admits requests to the app until closed, and counts those still inside."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._open = True
        self._inside = 0
        self.refused = 0

    def admit(self) -> bool:
        with self._changed:
            if not self._open:
                self.refused += 1
                return False
            self._inside += 1
            return True

    def leave(self) -> None:
        with self._changed:
            self._inside -= 1
            self._changed.notify_all()

    def close(self) -> int:
        """Admit no more; returns how many are inside."""
        with self._changed:
            self._open = False
            return self._inside

    def wait_empty(self, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._inside == 0, timeout=max(timeout, 0))


def gateway_app(app: Any, config: Any) -> WSGIApplication:
    """A WSGI application that serves `app` through chalice's local API Gateway emulation."""
    from chalice.local import ForbiddenError, LocalGateway, LocalGatewayException

    gateway = LocalGateway(app, config)

    def application(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        body = environ["wsgi.input"].read() or None
        try:
            # The request target as sent, as `chalice local` passed it: the gateway splits off
            # the query string and matches the route itself.
            response = gateway.handle_request(method, environ["REQUEST_URI"], _request_headers(environ), body)
        except ForbiddenError:
            # What LocalGateway raises when no route matches (API Gateway's "Missing
            # Authentication Token"); the app has no authorizer that could raise it.
            return _problem_body(start_response, edges.unknown_path())
        except LocalGatewayException:
            logger.exception("local gateway error")
            return _problem_body(start_response, InternalError("The request could not be completed."))
        headers, payload = _response_parts(response)
        start_response(_status_line(response["statusCode"]), headers)
        return [] if method == "HEAD" else [payload]

    return application


def _request_headers(environ: WSGIEnvironment) -> dict[str, str]:
    """The request's headers, named as clients spell them (Content-Type, X-Foo)."""
    headers = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:]
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            name = key
        else:
            continue
        headers["-".join(part.capitalize() for part in name.split("_"))] = value
    return headers


def _response_parts(response: dict[str, Any]) -> tuple[list[tuple[str, str]], bytes]:
    """WSGI headers and body bytes of an API Gateway proxy response."""
    body = response.get("body")
    if body is None:
        payload = b""
    elif response.get("isBase64Encoded"):
        payload = base64.b64decode(body)
    else:
        payload = body if isinstance(body, bytes) else str(body).encode("utf-8")
    multi = response.get("multiValueHeaders") or {}
    single = {name: value for name, value in (response.get("headers") or {}).items() if name not in multi}
    pairs = [(name, str(value)) for name, value in single.items()]
    pairs += [(name, str(value)) for name, values in multi.items() for value in values]
    headers = [(n, v) for n, v in pairs if n.lower() not in HOP_BY_HOP and n.lower() != "content-length"]
    if body is not None and not any(n.lower() == "content-type" for n, _ in headers):
        headers.append(("Content-Type", "application/json"))  # as `chalice local` answered
    headers.append(("Content-Length", str(len(payload))))
    return headers, payload


def _status_line(code: int) -> str:
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:  # e.g. a staged sandbox outage of 599
        return f"{code} Unknown"


def _problem_body(start_response: StartResponse, error: ApiError) -> list[bytes]:
    body = json.dumps(problem_document(error)).encode()
    headers = [("Content-Type", PROBLEM_CONTENT_TYPE), *error.headers.items()]
    headers.append(("Content-Length", str(len(body))))
    start_response(_status_line(error.status), headers)
    return [body]


def _answer_problem(task: Any, error: ApiError) -> None:
    """Write `error` as the task's whole answer and close the connection after it (what follows
    on the connection cannot be trusted, or the server is going away)."""
    body = json.dumps(problem_document(error)).encode()
    task.status = _status_line(error.status)
    task.response_headers.extend([("Content-Type", PROBLEM_CONTENT_TYPE), *error.headers.items()])
    task.set_close_on_finish()
    task.content_length = len(body)
    task.complete = True
    task.write(body)


class ProblemErrorTask(ErrorTask):
    """waitress's answer to a request it could not read, as problem+json."""

    def execute(self) -> None:
        _answer_problem(self, _front_problem(cast(Any, self.request).error, self.channel.adj))


class RequestTimedOut(Error):
    """A request that did not arrive whole within the front's deadline."""

    code, reason = 408, "Request Timeout"


def _front_problem(error: object, adj: Adjustments) -> ApiError:
    # waitress's own messages quote the request; none of it is passed on.
    if isinstance(error, RequestEntityTooLarge):
        limit = adj.max_request_body_size - 1
        return PayloadTooLarge(f"The request body is over {limit} bytes, the most this API accepts.")
    if isinstance(error, RequestHeaderFieldsTooLarge):
        limit = adj.max_request_header_size
        return HeaderTooLarge(f"The request line and headers are over {limit} bytes, this API's limit.")
    if isinstance(error, RequestTimedOut):
        return RequestTimeout("The request did not arrive whole in time; send it again at once.")
    if isinstance(error, ServerNotImplemented):
        return MalformedRequest("The only Transfer-Encoding this API accepts is chunked.")
    if isinstance(error, BadRequest):
        return MalformedRequest(
            "The request is not valid HTTP/1.1: check its request line, its Host, its header names "
            "and bytes, its Content-Length or chunked encoding (not both)."
        )
    # waitress's 500, after an exception it already logged.
    return InternalError("The request could not be completed; it is safe to retry.")


class FrontParser(HTTPRequestParser):
    """waitress's parser, with the checks RFC 9112 asks of a server that waitress leaves out,
    and methods taken as the case-sensitive tokens they are."""

    def parse_header(self, header_plus: bytes) -> None:
        line, crlf, rest = header_plus.partition(b"\r\n")
        method, space, target = line.partition(b" ")
        # waitress refuses a method with a lower-case letter outright, since WSGI upper-cases
        # REQUEST_METHOD. `get` is a valid token that names no method this API serves, so it
        # goes on, under its own name (see GatedTask), to the 405 or 404 any unknown method gets.
        lower = METHOD_TOKEN.fullmatch(method) is not None and method != method.upper()
        super().parse_header(method.upper() + space + target + crlf + rest if lower else header_plus)
        if lower:
            cast(Any, self).command = method.decode("ascii")  # a str, as waitress sets it
        host = self.headers.get("HOST")
        if self.version == "1.1" and (host is None or "," in host):
            raise ParsingError("an HTTP/1.1 request needs exactly one Host (RFC 9112 3.2)")
        if self.chunked and "CONTENT_LENGTH" in self.headers:
            # Two framings: a proxy reading the other one would see another request (smuggling).
            raise ParsingError("both Transfer-Encoding and Content-Length")


class GatedTask(WSGITask):
    """Hands the request to the app only while the gate admits it; else 503 and close."""

    admitted = False

    def service(self) -> None:
        gate = cast(FrontServer, self.channel.server).gate
        self.admitted = gate.admit()
        try:
            super().service()
        finally:
            if self.admitted:
                gate.leave()

    def execute(self) -> None:
        if not self.admitted:
            _answer_problem(self, ServiceUnavailable("The server is shutting down; retry later."))
            return
        super().execute()

    def get_environment(self) -> WSGIEnvironment:
        environ = super().get_environment()
        # waitress upper-cases it; a method is case-sensitive (RFC 9110 9.1): `get` is not GET.
        environ["REQUEST_METHOD"] = cast(Any, self.request).command
        return environ


class FrontChannel(HTTPChannel):
    task_class = GatedTask
    error_task_class = ProblemErrorTask
    parser_class = FrontParser
    #: When the first bytes of the request being read (`self.request`) arrived.
    request_began = 0.0

    def received(self, data: bytes) -> bool:
        if self.request is None:
            self.request_began = time.monotonic()
        return super().received(data)

    def send_continue(self) -> None:
        # waitress answers `Expect: 100-continue` even for a request already complete (no body,
        # or one that came with its headers) or refused (Content-Length over the limit), and then
        # waits for a body that never comes. Only a body still awaited is invited.
        if self.request is not None and self.request.completed:
            return
        super().send_continue()

    def time_out(self) -> None:
        """Answer the request being read 408: it did not arrive whole in time. What an
        incomplete request gets, as any request waitress cannot read gets its error answer."""
        with cast(Any, self).requests_lock:  # as waitress's own received() takes it
            request, requests = self.request, cast(list, self.requests)
            if request is None or requests or self.will_close or self.close_when_flushed:
                return
            request.error = RequestTimedOut("")
            request.completed = True
            self.request = None
            requests.append(request)
        self.server.add_task(cast(Any, self))


class FrontServer(TcpWSGIServer):
    channel_class = FrontChannel

    def __init__(
        self, application: WSGIApplication, adj: Adjustments, gate: Gate, request_seconds: float
    ) -> None:
        self.gate = gate
        self.request_seconds = request_seconds
        super().__init__(application, map={}, adj=adj)

    def maintenance(self, now: int) -> None:  # waitress passes time.time(); its stub says int
        super().maintenance(now)  # idle keep-alive connections
        cutoff = time.monotonic() - self.request_seconds
        for channel in list(cast(Any, self.active_channels).values()):
            if channel.request is not None and channel.request_began < cutoff:
                channel.time_out()

    def stop_listening(self) -> None:
        # The base close() would close the trigger too, which the loop still needs.
        wasyncore.dispatcher.close(self)

    def close_idle_channels(self) -> None:
        """Close every connection once its answers are out; those with a request still queued
        close after answering it."""
        for channel in list(cast(Any, self.active_channels).values()):
            if not channel.requests:
                channel.close_when_flushed = True

    def open_channels(self) -> int:
        return len(cast(Any, self.active_channels))

    def close_everything(self) -> None:
        wasyncore.close_all(cast(Any, self)._map)  # the loop's map: every channel and the trigger


class LocalFront:
    """The front, bound on construction; `start()` serves on a thread, `shutdown()` drains."""

    def __init__(
        self, application: WSGIApplication, host: str, port: int, limits: FrontLimits = FrontLimits()
    ) -> None:
        self.limits = limits
        self._gate = Gate()
        adj = Adjustments(
            host=host,
            port=port,
            threads=limits.threads,
            backlog=limits.backlog,
            connection_limit=limits.connections,
            channel_timeout=limits.idle_seconds,
            cleanup_interval=1,  # how often the request deadline is checked
            # waitress refuses a Content-Length equal to its limit; a body of exactly
            # max_body_bytes is allowed, as on API Gateway.
            max_request_body_size=limits.max_body_bytes + 1,
            max_request_header_size=limits.max_header_bytes,
            asyncore_use_poll=True,  # select() cannot watch descriptors past 1023
            clear_untrusted_proxy_headers=False,  # headers reach the app as they did before
            # A client resetting its connection is no error of ours (it would log at ERROR).
            log_socket_errors=False,
            ident="dispatch-local",
        )
        # waitress's default socket options turn Nagle's algorithm off on every connection (with
        # it on, a keep-alive client's delayed ACK held each response ~40 ms under chalice local).
        self._server = FrontServer(application, adj, self._gate, limits.request_seconds)
        self._thread = threading.Thread(target=self._server.run, name="local-front", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wait(self) -> None:
        """Block until the front stops (a signal handler's exception interrupts it)."""
        self._thread.join()

    def shutdown(self) -> Drained:
        began = time.monotonic()
        deadline = began + self.limits.drain_seconds
        in_flight = self._gate.close()
        self._in_loop(self._server.stop_listening)
        complete = self._gate.wait_empty(deadline - time.monotonic())
        self._in_loop(self._server.close_idle_channels)
        while self._server.open_channels() and time.monotonic() < deadline:
            time.sleep(0.01)  # answers still being written; bounded by the deadline
        self._in_loop(self._server.close_everything)
        self._thread.join(timeout=5)
        self._server.task_dispatcher.shutdown(timeout=1)
        drained = Drained(time.monotonic() - began, in_flight, self._gate.refused, complete)
        logger.info(
            "local front stopped",
            extra={
                "drain_ms": round(drained.seconds * 1000, 1),
                "in_flight": drained.in_flight,
                "refused": drained.refused,
                "complete": drained.complete,
            },
        )
        return drained

    def _in_loop(self, thunk: Callable[[], None]) -> None:
        """Run `thunk` on the event loop's thread, the only one that may touch its sockets."""
        cast(Any, self._server.trigger).pull_trigger(thunk)
