"""The framework's edges: what Chalice would answer by itself, answered as problem+json instead.

`install(app)` runs once, after every blueprint is registered:

- Each path gets one view for every method API Gateway can route that the path does not serve
  (OPTIONS, HEAD, PUT, PATCH, DELETE, and GET or POST where missing), answering 405
  `method-not-allowed` with `Allow`. Registered, not left to Chalice, because on AWS a method a
  path does not declare never reaches the Lambda: API Gateway answers it itself, with no way to
  know the path's methods. Generated from `app.routes`, so a new route gets it for free.
- One `http` middleware turns every error answer that is not ours into a problem: Chalice's own
  `{"Code": ...}` bodies (a method Chalice cannot route, such as TRACE, under `chalice local` or
  `chalice.test`; its content-type check; its 500) and any exception that escapes a view.

Views still wrap themselves in `problem_errors` (chalicelib/api/http.py): Chalice catches what a
view raises before any middleware sees it, logging it at ERROR and answering its own 500, so a
middleware alone could not map an `ApiError` to its problem.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from chalice import Chalice, Response
from chalice.app import Request

from chalicelib.api.errors import (
    PROBLEM_CONTENT_TYPE,
    ApiError,
    Forbidden,
    InternalError,
    MalformedRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    Unauthorized,
    UnsupportedMediaType,
    internal_error_response,
    problem_response,
)

#: Every method an API Gateway REST API can route to a Lambda (its `ANY` is these seven);
#: Chalice's `route()` takes the same set. TRACE, CONNECT and other tokens never get this far on
#: AWS, and under Chalice's local gateway they reach the middleware as its own 405.
ROUTABLE_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
#: The view name of the 405 views, which tells them apart from the app's own in `app.routes`.
METHOD_NOT_ALLOWED_VIEW = "method_not_allowed"
#: The detail of every unknown path's 404, here and from API Gateway: it never echoes the path.
UNKNOWN_PATH_DETAIL = "Nothing is served at this path; /v0.1/openapi.json lists the paths of this API."

#: The problem a framework answer of this status becomes when its body names nothing we know.
_BY_STATUS: Mapping[int, Callable[[], ApiError]] = {
    400: lambda: MalformedRequest("The request could not be read."),
    401: Unauthorized,
    403: lambda: Forbidden("The request was refused."),
    404: lambda: NotFound(UNKNOWN_PATH_DETAIL),
    413: lambda: PayloadTooLarge("The request is too large."),
    415: lambda: UnsupportedMediaType("This route does not take a body of this Content-Type."),
    429: lambda: TooManyRequests("Too many requests: retry later."),
}


def install(app: Chalice) -> None:
    """Answer every unserved method of every path with 405, and every framework error as a
    problem. Call once, after the last blueprint is registered."""
    for path, methods in served_routes(app).items():
        missing = [method for method in ROUTABLE_METHODS if method not in methods]
        if missing:
            app.route(
                path,
                methods=missing,
                name=METHOD_NOT_ALLOWED_VIEW,
                # Whatever the body's type, the method is what is wrong: never Chalice's 415.
                content_types=["*/*"],
            )(_method_not_allowed_view(methods))
    app.register_middleware(_problem_net(app), "http")


def served_routes(app: Chalice) -> dict[str, tuple[str, ...]]:
    """Each path of `app` and the methods its own views serve (not the 405 views), in the
    order they are listed in `Allow`."""
    served = {
        path: tuple(
            method
            for method in ROUTABLE_METHODS
            if method in entries and entries[method].view_name != METHOD_NOT_ALLOWED_VIEW
        )
        for path, entries in app.routes.items()
    }
    return {path: methods for path, methods in served.items() if methods}


def method_not_allowed(app: Chalice, path: str) -> MethodNotAllowed | None:
    """The 405 for a method `path` (a route template, e.g. `/v0.1/dispatch/{dispatch_uuid}`)
    does not serve; None if no view serves the path at all."""
    methods = served_routes(app).get(path)
    return MethodNotAllowed(methods) if methods else None


def unknown_path() -> NotFound:
    """The 404 for a path no route matches (what API Gateway answers is worded the same)."""
    return NotFound(UNKNOWN_PATH_DETAIL)


def _method_not_allowed_view(allowed: tuple[str, ...]) -> Callable[..., Response]:
    def method_not_allowed(**_path_parameters: str) -> Response:
        # Before credentials, as API Gateway's own answer would be: the method alone is wrong.
        return problem_response(MethodNotAllowed(allowed))

    return method_not_allowed


def _problem_net(app: Chalice) -> Callable[[Request, Callable[[Request], Response]], Response]:
    def problem_net(request: Request, get_response: Callable[[Request], Response]) -> Response:
        try:
            response = get_response(request)
        except Exception:
            return internal_error_response()
        if response.status_code < 400 or _is_problem(response):
            return response
        return problem_response(_as_problem(app, request, response))

    return problem_net


def _is_problem(response: Response) -> bool:
    content_type = next(
        (value for name, value in response.headers.items() if name.lower() == "content-type"), ""
    )
    return isinstance(content_type, str) and content_type.startswith(PROBLEM_CONTENT_TYPE)


def _as_problem(app: Chalice, request: Request | None, response: Response) -> ApiError:
    """The problem for an error answer Chalice made itself (its bodies are `{"Code", "Message"}`),
    chosen by its code where that says more than the status. Its message is never passed on."""
    body: Any = response.body
    code = body.get("Code") if isinstance(body, dict) else None
    status = response.status_code
    if status == 405 or code == "MethodNotAllowedError":
        not_allowed = method_not_allowed(app, request.path) if request is not None else None
        if not_allowed is not None:
            return not_allowed
    if status >= 500:
        # Chalice already logged what it caught; nothing a client sends gets here.
        return InternalError("The request could not be completed; it is safe to retry.")
    make = _BY_STATUS.get(status)
    if make is not None:
        return make()
    error = ApiError("The request was refused.")
    error.status = status
    return error
