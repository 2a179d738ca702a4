"""The framework-edge half of the fuzz run (`scripts/fuzz.py`): requests no OpenAPI tool sends.

Raw bytes over a loopback socket, one connection per request, so the request line, the header
bytes and the framing are exactly what a case says: every method (the seven API Gateway routes,
TRACE, CONNECT and junk tokens) on every path of the document, unknown paths, headers up to
1 MiB and many of them, header bytes outside ASCII and controls, bad Content-Length and
Transfer-Encoding framing, and garbage request lines. Cases are drawn from a seeded generator:
each kind is sent round-robin first, so a small run covers them all, then at random.

Every answer is held to the rules of issue 14 (`check`): it comes (no reset, no silence, within
`ANSWER_SECONDS`), its status is below 500 and is one the case allows (405 with `Allow` listing
the path's documented methods for a method it does not serve, 404 for an unknown path, 431 or
400 for oversized headers, 400 or 413 for broken framing), every non-2xx is an
`application/problem+json` whose `type`, `title` and `status` agree with it, and no body is
HTML or carries AWS's, Chalice's or Python's own messages.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import socket
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

#: Long enough for any sane server on loopback; a case that gets nothing in this time failed.
ANSWER_SECONDS = 3.0
#: Oversized requests take longer to send, and the answer may come only once they are read.
LARGE_ANSWER_SECONDS = 8.0
#: A request that never completes is answered at the server's request timeout (10 s in
#: scripts/local_front.py), and this is when the check gives up on it.
INCOMPLETE_ANSWER_SECONDS = 15.0
MAX_BODY_READ = 1 << 20
ROUTABLE = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
OTHER_METHODS = ("TRACE", "CONNECT")
#: Method tokens no route serves: valid tokens (405) and lookalikes.
JUNK_TOKENS = ("PROPFIND", "FOO", "get", "Post", "M-SEARCH", "X" * 64, "BREW", "QUERY")
#: Not tokens at all (RFC 9110 tchar): the request line is malformed.
NON_TOKENS = ("GE T", "GET\x00", "G(E)T", "ÄGET", "")
PROBLEM = "application/problem+json"
#: What a body must never carry: other layers' messages and the runtime's internals.
INTERNALS = (
    "MethodNotAllowedError",
    "Missing Authentication Token",
    "Authorization header requires",
    "SigV4",
    "Credential=",
    "ForbiddenError",
    "NotFoundError",
    "BadRequestError",
    '"Code"',
    "Traceback",
    'File "',
    "chalice",
    "werkzeug",
    "Werkzeug",
    "set_int_max_str_digits",
    "RecursionError",
    "botocore",
    "<html",
    "<HTML",
    "<!DOCTYPE",
    "Error response",
)
UNKNOWN_PATHS = (
    "/",
    "/v0.1",
    "/v0.1/nope",
    "/v0.2/dispatch",
    "/V0.1/DISPATCH",
    "/v0.1/dispatch/a/b/c",
    "/v0.1/openapi.json/x",
    "/beta",
    "/sandbox",
    "/webhooks",
    "/webhooks/vonage",
    "/webhooks/vonage/status/extra",
    "//",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/..;/v0.1/dispatch",
    "/v0.1/%00",
    "/v0.1/dispatch%2f",
    "/.env",
    "/admin",
    "/v0.1/" + "a" * 2000,
    "/" + "%ff" * 300,
    "/\u00e9t\u00e9".encode().decode("latin-1"),
)


@dataclass(frozen=True)
class Target:
    """One stack and the paths its document lists, each with the methods it serves."""

    base_url: str
    routes: Mapping[str, tuple[str, ...]]
    authorization: str | None = None  #: valid credentials, sent on some requests

    @property
    def address(self) -> tuple[str, int]:
        parts = urlsplit(self.base_url)
        return parts.hostname or "127.0.0.1", parts.port or 80


@dataclass(frozen=True)
class EdgeCase:
    kind: str
    target: Target
    method: str  #: as sent; the raw request may say more
    path: str
    raw: bytes
    expected: tuple[int, ...] = ()  #: allowed statuses; empty: any below 500
    allow: tuple[str, ...] = ()  #: what a 405 must list
    time_limit: float = ANSWER_SECONDS

    def describe(self) -> str:
        shown = self.raw[:300].decode("latin-1").encode("unicode_escape").decode()
        more = f" ... ({len(self.raw)} bytes)" if len(self.raw) > 300 else ""
        host, port = self.target.address
        return f"printf '%s' '{shown}{more}' | nc {host} {port}"


@dataclass
class Answer:
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str | None = None
    seconds: float = 0.0


def routes_of(document: Mapping[str, Any], only: Sequence[str] | None = None) -> dict[str, tuple[str, ...]]:
    """Each path of the document (those starting with a prefix in `only`, if given) and its
    methods, upper case."""
    return {
        path: tuple(method.upper() for method in item)
        for path, item in document["paths"].items()
        if only is None or path.startswith(tuple(only))
    }


def fill(path: str, rng: random.Random) -> str:
    """A concrete path for a template: ids that exist nowhere, real provider and kind names."""
    values = {
        "dispatch_uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "message_uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "provider": rng.choice(("vonage", "whatsapp", "messenger", "viber", "aws_sms")),
        "kind": rng.choice(("status", "inbound")),
    }
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    return path


def request(
    method: str,
    path: str,
    target: Target,
    headers: Sequence[tuple[bytes, bytes]] = (),
    body: bytes = b"",
    content_length: bool = True,
    version: bytes = b"HTTP/1.1",
) -> bytes:
    host, port = target.address
    lines = [method.encode("latin-1") + b" " + path.encode("latin-1") + b" " + version]
    lines.append(b"Host: " + f"{host}:{port}".encode())
    lines.append(b"Connection: close")
    lines += [name + b": " + value for name, value in headers]
    if content_length and (body or method in ("POST", "PUT", "PATCH")):
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class EdgeCases:
    """The seeded generator: `cases(count)` yields `count` cases over `targets`."""

    KINDS = ("method", "unknown-path", "header-size", "header-bytes", "content-length", "request-line")
    #: Sent once each, last (see `_incomplete`); not one of KINDS, which are sent round-robin.
    INCOMPLETE = "incomplete"

    def __init__(self, targets: Sequence[Target], seed: int) -> None:
        self.targets = list(targets)
        self.rng = random.Random(seed)

    def cases(self, count: int) -> Iterator[EdgeCase]:
        made, first = 0, True
        while made < count:
            # Each round makes every case afresh (new ids, credentials or not, routes for the
            # per-route kinds) and sends the kinds round-robin, so a small run covers them all.
            fixed = {kind: list(getattr(self, "_" + kind.replace("-", "_"))()) for kind in self.KINDS}
            for group in fixed.values():
                self.rng.shuffle(group)
            rounds = max(len(group) for group in fixed.values())
            ordered = [group[n] for n in range(rounds) for group in fixed.values() if n < len(group)]
            if first:  # each costs the server's whole request timeout: sent once, last
                ordered += list(self._incomplete())
                first = False
            for case in ordered:
                if made >= count:
                    return
                yield case
                made += 1

    # Each generator below yields every case of its kind once.

    def _route(self) -> tuple[Target, str, tuple[str, ...]]:
        target = self.rng.choice(self.targets)
        template = self.rng.choice(sorted(target.routes))
        return target, template, target.routes[template]

    def _credentials(self, target: Target) -> list[tuple[bytes, bytes]]:
        if target.authorization and self.rng.random() < 0.5:
            return [(b"Authorization", target.authorization.encode())]
        return []

    def _served_request(
        self, extra: Sequence[tuple[bytes, bytes]] = (), **kwargs: Any
    ) -> tuple[Target, str, str, bytes]:
        """A request a route serves, with `extra` headers: (target, method, path, raw)."""
        target, template, methods = self._route()
        method = self.rng.choice(methods)
        path = fill(template, self.rng)
        headers = self._credentials(target) + list(extra)
        body = b"{}" if method == "POST" else b""
        if body:
            headers.append((b"Content-Type", b"application/json"))
        return target, method, path, request(method, path, target, headers, body, **kwargs)

    def _secured_request(
        self, name: str, extra: Sequence[tuple[bytes, bytes]], expected: tuple[int, ...]
    ) -> EdgeCase:
        """A GET of the first path taking credentials (the API's, not the document or a webhook)."""
        target = self.targets[0]
        path = next(
            p
            for p, methods in sorted(target.routes.items())
            if p.startswith("/v0.1/") and "GET" in methods and not p.endswith("openapi.json")
        )
        path = fill(path, self.rng)
        return EdgeCase("header-bytes", target, "GET", path, request("GET", path, target, extra), expected)

    def _method(self) -> Iterator[EdgeCase]:
        for target in self.targets:
            for template, served in sorted(target.routes.items()):
                for method in (*ROUTABLE, *OTHER_METHODS, *JUNK_TOKENS, *NON_TOKENS):
                    path = fill(template, self.rng)
                    body = b"{}" if method in ("POST", "PUT", "PATCH") else b""
                    headers = self._credentials(target)
                    if body:
                        headers.append((b"Content-Type", b"application/json"))
                    raw = request(method, path, target, headers, body)
                    if method in served:
                        yield EdgeCase("method", target, method, path, raw)
                    elif method in NON_TOKENS:
                        yield EdgeCase("method", target, method, path, raw, (400,))
                    elif method == "CONNECT":
                        # CONNECT takes an authority, not a path: a 400 for the form is as right.
                        yield EdgeCase("method", target, method, path, raw, (400, 405), served)
                    else:
                        yield EdgeCase("method", target, method, path, raw, (405,), served)

    def _unknown_path(self) -> Iterator[EdgeCase]:
        target = self.targets[0]
        for path in UNKNOWN_PATHS:
            for method in ("GET", "POST", "DELETE", "OPTIONS", "TRACE", "FOO"):
                raw = request(method, path, target, self._credentials(target))
                expected = (404, 414) if len(path) > 1000 else (404,)
                if not path.isascii():  # raw bytes outside ASCII: not a valid request target
                    expected = (400, 404)
                yield EdgeCase("unknown-path", target, method, path, raw, expected)

    def _header_size(self) -> Iterator[EdgeCase]:
        for size in (4_000, 16_000, 60_000, 100_000, 130_000, 256_000, 1_048_576):
            for name in (b"X-Fuzz", b"Authorization", b"Cookie"):
                value = b"Basic " + b"A" * size if name == b"Authorization" else b"a" * size
                target, method, path, raw = self._served_request([(name, value)])
                yield EdgeCase(
                    "header-size",
                    target,
                    method,
                    path,
                    raw,
                    _size_rule(size),
                    time_limit=LARGE_ANSWER_SECONDS,
                )
        for count, each in ((100, 100), (101, 10), (500, 200), (2_000, 60), (10_000, 8)):
            extra = [(f"X-Fuzz-{n}".encode(), b"v" * each) for n in range(count)]
            target, method, path, raw = self._served_request(extra)
            yield EdgeCase(
                "header-size",
                target,
                method,
                path,
                raw,
                _size_rule(count * (each + 12)),
                time_limit=LARGE_ANSWER_SECONDS,
            )

    def _header_bytes(self) -> Iterator[EdgeCase]:
        odd: list[tuple[str, Sequence[tuple[bytes, bytes]], tuple[int, ...]]] = [
            ("authorization-latin1", [(b"Authorization", b"Basic \xe9")], (400, 401)),
            ("authorization-utf8", [(b"Authorization", "Basic é".encode())], (400, 401)),
            ("authorization-bearer-utf8", [(b"Authorization", "Bearer ü.ü.ü".encode())], (400, 401)),
            ("value-high-bytes", [(b"X-Fuzz", bytes(range(0x80, 0x100)))], ()),
            ("value-nul", [(b"X-Fuzz", b"a\x00b")], ()),
            ("value-controls", [(b"X-Fuzz", b"a\x01\x07\x1b\x7fb")], ()),
            ("value-bare-cr", [(b"X-Fuzz", b"a\rb")], (400,)),
            ("obs-fold", [(b"X-Fuzz", b"a\r\n folded")], ()),
            ("name-with-space", [(b"X Fuzz", b"v")], (400,)),
            ("space-before-colon", [(b"X-Fuzz ", b"v")], (400,)),
            ("name-non-token", [(b"X-(Fuzz)", b"v")], (400,)),
            ("name-high-bytes", [(b"X-F\xfczz", b"v")], (400,)),
            ("empty-name", [(b"", b"v")], (400,)),
            ("no-colon", [(b"X-Fuzz-no-colon", b"")], ()),
            ("host-twice", [(b"Host", b"evil.example")], (400,)),
            ("content-type-odd", [(b"Content-Type", b"application/json; charset=\xff")], ()),
            ("expect-continue", [(b"Expect", b"100-continue")], ()),
            ("expect-unknown", [(b"Expect", b"fuzz")], ()),
        ]
        for name, extra, expected in odd:
            if name == "no-colon":
                extra = []
            if name.startswith("authorization"):  # to a route that takes credentials
                yield self._secured_request(name, extra, expected)
                continue
            target, method, path, raw = self._served_request(extra)
            if name == "no-colon":
                raw = raw.replace(b"Connection: close\r\n", b"Connection: close\r\nX-Fuzz-no-colon\r\n", 1)
            yield EdgeCase("header-bytes", target, method, path, raw, expected)

    def _content_length(self) -> Iterator[EdgeCase]:
        target = self.targets[0]
        post = sorted(path for path, methods in target.routes.items() if "POST" in methods)
        bad = {
            "letters": (b"abc", b"{}"),
            "negative": (b"-1", b"{}"),
            "plus": (b"+2", b"{}"),
            "hex": (b"0x2", b"{}"),
            "exponent": (b"2e0", b"{}"),
            "list-equal": (b"2, 2", b"{}"),
            "list-different": (b"2, 3", b"{}"),
            "empty": (b"", b"{}"),
            "huge-digits": (b"9" * 40, b"{}"),
            "billion": (b"1000000000", b"{"),
            "shorter-than-body": (b"1", b"{}  "),
        }
        for name, (value, body) in bad.items():
            path = fill(self.rng.choice(post), self.rng)
            headers = self._credentials(target) + [
                (b"Content-Type", b"application/json"),
                (b"Content-Length", value),
            ]
            raw = request("POST", path, target, headers, body, content_length=False)
            # Shorter than the body: the rest is the next request's start, then the close.
            expected: tuple[int, ...] = (400, 413) if name != "shorter-than-body" else ()
            yield EdgeCase(f"content-length-{name}", target, "POST", path, raw, expected)
        for name, framing in (
            ("two-headers", [(b"Content-Length", b"2"), (b"Content-Length", b"3")]),
            ("te-and-cl", [(b"Transfer-Encoding", b"chunked"), (b"Content-Length", b"2")]),
            ("te-gzip", [(b"Transfer-Encoding", b"gzip")]),
            ("te-bad-chunk", [(b"Transfer-Encoding", b"chunked")]),
        ):
            path = fill(self.rng.choice(post), self.rng)
            headers = self._credentials(target) + [(b"Content-Type", b"application/json"), *framing]
            body = {"te-bad-chunk": b"zz\r\n{}\r\n0\r\n\r\n", "te-and-cl": b"2\r\n{}\r\n0\r\n\r\n"}.get(
                name, b"{}"
            )
            raw = request("POST", path, target, headers, body, content_length=False)
            # Both framings: refusing (smuggling) or reading the chunks (RFC 9112, 6.3) are right.
            expected = {"te-and-cl": (), "te-gzip": (400, 413, 501)}.get(name, (400, 413))
            yield EdgeCase(f"content-length-{name}", target, "POST", path, raw, expected)
        # 2 MiB: past every route's own limit (413 where a body is read; a route that takes
        # none may ignore it). 11 MiB: past the front's, API Gateway's 10 MB, on any route.
        for size, paths, expected in ((2 << 20, post, ()), (11 << 20, [self.rng.choice(post)], (413,))):
            too_big = b'{"pad": "' + b"x" * size + b'"}'
            for path in paths:
                concrete = fill(path, self.rng)
                headers = self._credentials(target) + [(b"Content-Type", b"application/json")]
                raw = request("POST", concrete, target, headers, too_big)
                yield EdgeCase(
                    f"content-length-too-large-{size >> 20}MiB",
                    target,
                    "POST",
                    concrete,
                    raw,
                    expected,
                    time_limit=LARGE_ANSWER_SECONDS,
                )

    def _incomplete(self) -> Iterator[EdgeCase]:
        """Requests that never end: the server cannot know they will not, so the answer may come
        only at its request timeout (`INCOMPLETE_ANSWER_SECONDS`), but it must come."""
        target = self.targets[0]
        post = fill(sorted(p for p, m in target.routes.items() if "POST" in m)[0], self.rng)
        raws = {
            "body-shorter-than-announced": request(
                "POST", post, target, [(b"Content-Length", b"100")], b"{}", content_length=False
            ),
            "lf-only-line-ends": b"GET /v0.1/openapi.json HTTP/1.1\nHost: x\n\n",
            "headers-never-end": b"GET /v0.1/openapi.json HTTP/1.1\r\nHost: x\r\nX-Fuzz: 1\r\n",
            "chunks-never-end": request(
                "POST",
                post,
                target,
                [(b"Transfer-Encoding", b"chunked")],
                b"2\r\n{}\r\n",
                content_length=False,
            ),
        }
        for name, raw in raws.items():
            yield EdgeCase(
                f"incomplete-{name}", target, "GET", "", raw, (400, 408), time_limit=INCOMPLETE_ANSWER_SECONDS
            )

    def _request_line(self) -> Iterator[EdgeCase]:
        target = self.targets[0]
        host, port = target.address
        lines = {
            "method-only": b"GET\r\n\r\n",
            "no-version": b"GET /v0.1/openapi.json\r\n\r\n",
            "bad-version": b"GET /v0.1/openapi.json HTTP/1.1x\r\nHost: x\r\n\r\n",
            "two-spaces": b"GET  /v0.1/openapi.json  HTTP/1.1\r\nHost: x\r\n\r\n",
            "tls-hello": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32) + b"\r\n\r\n",
            "binary": bytes(range(256)) + b"\r\n\r\n",
            "absolute-form": f"GET http://{host}:{port}/v0.1/nope HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
            "relative-target": b"GET v0.1/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n",
            "asterisk": b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
            "long-line": b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        }
        for name, raw in lines.items():
            expected: tuple[int, ...] = (400,)
            if name == "absolute-form":
                expected = (400, 404)
            elif name == "asterisk":
                expected = (400, 404, 405)
            elif name == "long-line":
                expected = (400, 404, 414, 431)
            elif name in ("two-spaces", "no-version", "relative-target"):
                expected = (200, 400, 404)
            yield EdgeCase(f"request-line-{name}", target, "GET", "", raw, expected)


def _size_rule(total: int) -> tuple[int, ...]:
    """Headers of this many bytes: any answer while small, and refused once past 100 KB."""
    return (400, 431) if total >= 100_000 else ()


def send(case: EdgeCase) -> Answer:
    """Send the case's bytes on a fresh connection and read one answer."""
    started = time.monotonic()
    answer = Answer()
    try:
        sock = socket.create_connection(case.target.address, timeout=case.time_limit)
    except OSError as exc:
        return Answer(error=f"no connection ({type(exc).__name__})")
    try:
        # The server may answer (and close) before reading everything: read on.
        with contextlib.suppress(OSError):
            sock.sendall(case.raw)
        response = http.client.HTTPResponse(sock, method="HEAD" if case.method == "HEAD" else "GET")
        try:
            response.begin()
            answer.status = response.status
            answer.headers = {name.lower(): value for name, value in response.getheaders()}
            answer.body = response.read(MAX_BODY_READ)
        except TimeoutError:
            answer.error = "silence (no answer in time)"
        except ConnectionResetError:
            answer.error = "connection reset"
        except http.client.RemoteDisconnected:
            answer.error = "closed without an answer"
        except (http.client.HTTPException, OSError) as exc:
            if answer.status is None:
                answer.error = f"no readable answer ({type(exc).__name__})"
    finally:
        sock.close()
    answer.seconds = time.monotonic() - started
    return answer


def check(case: EdgeCase, answer: Answer) -> list[tuple[str, str]]:
    """(failure kind, detail) for every rule the answer breaks."""
    if answer.error is not None or answer.status is None:
        return [(answer.error or "no answer", "")]
    status, found = answer.status, []
    if status >= 500:
        found.append(("server error", f"{status}"))
    if case.expected and status not in case.expected:
        found.append((f"status {status}, not {'/'.join(map(str, case.expected))}", ""))
    if answer.seconds > case.time_limit:
        found.append(("slow answer", f"{answer.seconds:.1f} s"))
    content_type = answer.headers.get("content-type", "")
    text = answer.body.decode("utf-8", "replace")
    if not 200 <= status < 300:
        if not content_type.startswith(PROBLEM):
            found.append((f"{status} not problem+json", f"Content-Type {content_type or 'none'}"))
        elif case.method != "HEAD":
            found += [(f"{status} problem body", problem) for problem in _problem_faults(status, answer.body)]
    if status == 405:
        allow = {m.strip() for m in answer.headers.get("allow", "").split(",") if m.strip()}
        if not allow:
            found.append(("405 without Allow", ""))
        elif case.allow and allow != set(case.allow):
            found.append(
                (
                    "405 Allow not the documented methods",
                    f"Allow: {sorted(allow)}, document: {sorted(case.allow)}",
                )
            )
    if content_type.startswith("text/html"):
        found.append(("HTML body", content_type))
    leaked = [marker for marker in INTERNALS if marker in text]
    if leaked and not 200 <= status < 300:  # a success's body is ours (e.g. the document)
        found.append(("framework or runtime message in the body", ", ".join(leaked)))
    if status == 404 and len(case.path) > 8 and case.path in text:
        found.append(("404 echoes the path", ""))
    return found


def _problem_faults(status: int, body: bytes) -> list[str]:
    try:
        problem = json.loads(body)
    except ValueError:
        return ["not JSON"]
    if not isinstance(problem, dict):
        return ["not an object"]
    faults = []
    if not isinstance(problem.get("type"), str) or not problem["type"]:
        faults.append("no type")
    if not isinstance(problem.get("title"), str) or not problem["title"]:
        faults.append("no title")
    if "status" in problem and problem["status"] != status:
        faults.append(f"status {problem['status']!r} in the body")
    return faults
