"""Error bodies as each provider writes them, and the HTML pages proxies serve instead."""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any


@dataclass(frozen=True)
class _ErrorKind:
    openai_type: str
    openai_code: str | None
    anthropic_type: str
    google_status: str
    message: str


_KINDS = {
    400: _ErrorKind(
        "invalid_request_error",
        None,
        "invalid_request_error",
        "INVALID_ARGUMENT",
        "The request is not valid.",
    ),
    401: _ErrorKind(
        "invalid_request_error",
        "invalid_api_key",
        "authentication_error",
        "UNAUTHENTICATED",
        "Incorrect API key provided. This is the ipyllm teaching server simulating a bad key.",
    ),
    403: _ErrorKind(
        "invalid_request_error",
        "permission_denied",
        "permission_error",
        "PERMISSION_DENIED",
        "Your API key does not have permission to use this resource.",
    ),
    404: _ErrorKind(
        "invalid_request_error",
        "model_not_found",
        "not_found_error",
        "NOT_FOUND",
        "The model does not exist or you do not have access to it.",
    ),
    408: _ErrorKind(
        "server_error",
        "timeout",
        "timeout_error",
        "DEADLINE_EXCEEDED",
        "The request timed out.",
    ),
    413: _ErrorKind(
        "invalid_request_error",
        "request_too_large",
        "request_too_large",
        "INVALID_ARGUMENT",
        "The request is too large.",
    ),
    429: _ErrorKind(
        "requests",
        "rate_limit_exceeded",
        "rate_limit_error",
        "RESOURCE_EXHAUSTED",
        "Rate limit reached for requests per minute. Please try again later.",
    ),
    500: _ErrorKind(
        "server_error",
        None,
        "api_error",
        "INTERNAL",
        "The server had an error while processing your request. Sorry about that!",
    ),
    502: _ErrorKind(
        "server_error",
        None,
        "api_error",
        "UNAVAILABLE",
        "Bad gateway.",
    ),
    503: _ErrorKind(
        "server_error",
        None,
        "overloaded_error",
        "UNAVAILABLE",
        "The service is temporarily unavailable. Please try again later.",
    ),
    504: _ErrorKind(
        "server_error",
        "timeout",
        "timeout_error",
        "DEADLINE_EXCEEDED",
        "The upstream server timed out.",
    ),
    529: _ErrorKind(
        "server_error",
        None,
        "overloaded_error",
        "UNAVAILABLE",
        "Overloaded",
    ),
}


def reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Overloaded" if status == 529 else "Error"


def error_body(family: str, status: int, message: str | None = None) -> dict[str, Any]:
    """The JSON error envelope ``family`` ("openai", "anthropic", "gemini", "ollama") sends."""
    kind = _KINDS.get(status) or _KINDS[400 if status < 500 else 500]
    text = message or kind.message
    if family == "anthropic":
        return {"type": "error", "error": {"type": kind.anthropic_type, "message": text}}
    if family == "gemini":
        return {"error": {"code": status, "message": text, "status": kind.google_status}}
    if family == "ollama":
        return {"error": text}
    return {
        "error": {
            "message": text,
            "type": kind.openai_type,
            "param": None,
            "code": kind.openai_code,
        }
    }


def unknown_route_body(family: str, message: str) -> dict[str, Any]:
    """A 404 for a path nobody serves, in the envelope of the provider the path belongs to."""
    body = error_body(family, 404, message)
    if family == "openai":
        body["error"]["code"] = None  # OpenAI's "Invalid URL" error has no code
    return body


def proxy_error_page(status: int) -> bytes:
    """What a reverse proxy answers when the upstream fails: HTML, not the provider's JSON."""
    title = f"{status} {reason_phrase(status)}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()


CAPTIVE_PORTAL_PAGE = (
    b'<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8">'
    b"<title>Guest Wi-Fi</title></head>\n<body>\n<h1>Welcome to Guest Wi-Fi</h1>\n"
    b"<p>Please accept the terms of use to continue browsing.</p>\n"
    b'<form method="post" action="/accept"><button>Accept and connect</button></form>\n'
    b"</body>\n</html>\n"
)
