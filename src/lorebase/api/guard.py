"""A pure-ASGI guard in front of routing: bounded bodies, and no body read for strangers.

Before a route runs, the request is matched against the routes once to learn two things:
whether the route needs a credential and how large its body may be. Then:

- a `Content-Length` over the route's cap is answered 413 at once, the body unread;
- a body without `Content-Length` (chunked) is counted as it arrives and cut at the cap (413);
- a request to an authenticated route without a valid credential is answered 401 before a
  single body byte is read, parsed or spooled (the principal found here is reused by
  `deps.get_principal`, so authenticating costs nothing extra).

Caps: multipart uploads `MAX_UPLOAD_REQUEST_BYTES` (each file is also held to
`MAX_UPLOAD_BYTES` while it streams, `api.uploads`); JSON bodies whose schema admits a long
text (documents, `/knowledge/text`) and `/mcp` `MAX_UPLOAD_BYTES + MAX_JSON_BYTES`; every other
body `MAX_JSON_BYTES`.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lorebase.api.deps import credential_of, get_principal
from lorebase.api.problems import render_problem
from lorebase.auth.service import authenticate
from lorebase.errors import AppError, Invalid, PayloadTooLarge, Unauthorized, problem_from
from lorebase.settings import Settings
from lorebase.text import REASON, forbidden_paths, has_forbidden, strip_forbidden

PRINCIPAL_STATE_KEY = "principal"
_BODYLESS = frozenset({"GET", "HEAD", "OPTIONS"})
_MULTIPART = "multipart/form-data"


@dataclass(frozen=True, slots=True)
class RoutePolicy:
    """What the guard needs to know of one route before it runs."""

    needs_auth: bool
    cap: int
    kind: str  # "upload", "text", "json": named in the 413's detail
    scan: bool = True  # JSON and form bodies are checked for NUL and non-characters


def _needs_auth(dependant: Dependant) -> bool:
    return any(dep.call is get_principal or _needs_auth(dep) for dep in dependant.dependencies)


def _is_multipart(route: APIRoute) -> bool:
    extra = route.openapi_extra or {}
    content = extra.get("requestBody", {}).get("content", {})
    return _MULTIPART in content


def _longest_text(route: APIRoute) -> int:
    """The largest `max_length` among the body model's string fields (0 if none)."""
    field = route.body_field
    model = getattr(field, "type_", None) if field is not None else None
    fields = getattr(model, "model_fields", None)
    if not isinstance(fields, dict):
        return 0
    longest = 0
    for info in fields.values():
        for item in info.metadata:
            longest = max(longest, int(getattr(item, "max_length", 0) or 0))
    return longest


def _text_cap(settings: Settings) -> int:
    # A text of MAX_UPLOAD_BYTES plus room for the other fields and JSON escapes.
    return settings.max_upload_bytes + settings.max_json_bytes


def policy_for(route: Any, settings: Settings) -> RoutePolicy:
    """The guard's view of `route` (any Starlette route) under `settings`."""
    if not isinstance(route, APIRoute):
        # `/mcp` authenticates by itself before reading; an MCP ingest_text carries a text.
        # Tool arguments are checked by mcp.runtime (so the refusal is an MCP tool error).
        return RoutePolicy(needs_auth=False, cap=_text_cap(settings), kind="text", scan=False)
    needs_auth = _needs_auth(route.dependant)
    if _is_multipart(route):
        return RoutePolicy(needs_auth, settings.max_upload_request_bytes, "upload")
    if _longest_text(route) > settings.max_json_bytes:
        return RoutePolicy(needs_auth, _text_cap(settings), "text")
    return RoutePolicy(needs_auth, settings.max_json_bytes, "json")


class _BodyTooLarge(HTTPException):
    """Raised from `receive` once a streamed body passes its cap; FastAPI re-raises
    HTTPExceptions from body parsing, and the problem handler renders it as 413."""


def _too_large(policy: RoutePolicy) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the request body is larger than this route's limit of {policy.cap} bytes "
        f"({_SETTING_OF_KIND[policy.kind]})"
    )


_SETTING_OF_KIND = {
    "upload": "MAX_UPLOAD_REQUEST_BYTES",
    "text": "MAX_UPLOAD_BYTES + MAX_JSON_BYTES",
    "json": "MAX_JSON_BYTES",
}


class BodyGuard:
    """Bounds request bodies by route and refuses strangers before their body is read."""

    _CACHE_SIZE = 512

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._policies: OrderedDict[tuple[str, str], RoutePolicy] = OrderedDict()
        self._routes: list[RouteContext] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            _check_query(scope)
            if _may_have_body(scope):
                receive = await self._admit(scope, receive)
        except AppError as exc:
            await _send_problem(scope, send, exc)
            return
        await self.app(scope, receive, send)

    async def _admit(self, scope: Scope, receive: Receive) -> Receive:
        """Size, credential and (for JSON and forms) content checks, in that order; the
        `receive` the route should read from."""
        application = scope["app"]
        ctx = application.state.ctx
        policy = self._policy(application, scope, ctx.settings)
        declared = _content_length(scope)
        if declared is not None and declared > policy.cap:
            raise _too_large(policy)
        if policy.needs_auth:
            credential = credential_of(_headers(scope), scope["method"])
            if credential is None:
                raise Unauthorized("authentication required")
            principal = await authenticate(ctx=ctx, credential=credential)
            scope.setdefault("state", {})[PRINCIPAL_STATE_KEY] = principal
        counted = _counted(receive, policy)
        media = _media_type(scope)
        if not policy.scan or media not in _SCANNED:
            return counted
        try:
            body = await _read_all(counted)
        except _BodyTooLarge:
            raise _too_large(policy) from None
        check_body(body, media)
        return _replay(body, receive)

    def _policy(self, application: Any, scope: Scope, settings: Settings) -> RoutePolicy:
        key = (scope["method"], scope["path"])
        policy = self._policies.get(key)
        if policy is not None:
            self._policies.move_to_end(key)
            return policy
        policy = RoutePolicy(needs_auth=False, cap=settings.max_json_bytes, kind="json")
        if self._routes is None:
            # FastAPI nests included routers; match against the flat list of their routes.
            self._routes = list(iter_route_contexts(application.router.routes))
        for context in self._routes:
            match, _ = context.matches(scope)
            if match is Match.FULL:
                policy = policy_for(context.original_route, settings)
                break
        self._policies[key] = policy
        if len(self._policies) > self._CACHE_SIZE:
            self._policies.popitem(last=False)
        return policy


_SCANNED = frozenset({"application/json", "application/x-www-form-urlencoded"})


def _media_type(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"content-type":
            media: str = value.decode("latin-1")
            return media.split(";", 1)[0].strip().lower()
    return ""


def _refusal(paths: list[tuple[str, ...]], where: str) -> Invalid:
    errors: list[dict[str, Any]] = [
        {
            "loc": [where, *path],
            "field": ".".join(path),
            "msg": f"Value error, {REASON}",
            "type": "value_error",
        }
        for path in paths
    ]
    fields = ", ".join(sorted({".".join(path) or where for path in paths}))
    return Invalid(f"invalid request: {fields} {REASON}", errors=errors)


def _check_query(scope: Scope) -> None:
    raw: bytes = scope.get("query_string", b"")
    if b"%" not in raw:
        return  # forbidden characters can only arrive percent-encoded
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    paths = [(name,) for name, value in pairs if has_forbidden(name) or has_forbidden(value)]
    if paths:
        raise _refusal([(strip_forbidden(name),) for (name,) in paths], "query")


def check_body(body: bytes, media: str) -> None:
    """422 naming every field of a JSON or form body that holds NUL or a non-character."""
    if media == "application/x-www-form-urlencoded":
        pairs = parse_qsl(body.decode("latin-1"), keep_blank_values=True)
        decoded: Any = {}
        for name, value in pairs:
            decoded[name] = value
    else:
        try:
            decoded = orjson.loads(body)
        except orjson.JSONDecodeError:
            return  # FastAPI answers malformed JSON itself
    paths = list(forbidden_paths(decoded))
    if paths:
        raise _refusal(paths, "body")


async def _read_all(receive: Receive) -> bytes:
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(parts)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def receive_replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # http.disconnect, for streaming responses

    return receive_replayed


def _may_have_body(scope: Scope) -> bool:
    if scope["method"] not in _BODYLESS:
        return True
    return any(name in (b"content-length", b"transfer-encoding") for name, _ in scope["headers"])


def _headers(scope: Scope) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _counted(receive: Receive, policy: RoutePolicy) -> Receive:
    seen = 0

    async def receive_counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > policy.cap:
                raise _BodyTooLarge(413, _too_large(policy).detail)
        return message

    return receive_counted


async def _send_problem(scope: Scope, send: Send, exc: AppError) -> None:
    problem = problem_from(exc)
    status, media, body = render_problem(problem, instance=scope.get("path", ""))
    headers = [
        (b"content-type", media.encode()),
        (b"content-length", str(len(body)).encode()),
        # The body was not read: the connection cannot carry another request.
        (b"connection", b"close"),
        *((name.lower().encode(), value.encode()) for name, value in problem.headers.items()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
