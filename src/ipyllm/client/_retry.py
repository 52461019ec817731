"""When to send a request again, and how long to wait first."""

from __future__ import annotations

import random
import time
from email.utils import parsedate_to_datetime

import httpx

from ..errors import HTTPStatusError, StreamError

RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
_MAX_BACKOFF = 8.0


def retry_after(headers: httpx.Headers) -> float | None:
    """Seconds to wait, from retry-after-ms or retry-after (seconds or an HTTP date)."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def should_retry(error: HTTPStatusError, headers: httpx.Headers) -> bool:
    """Whether an error status is worth another attempt (the server's own hint first)."""
    hint = str(headers.get("x-should-retry", "")).lower()
    if hint in ("true", "false"):
        return hint == "true"
    if error.error_code == "insufficient_quota":
        return False  # billing, not load: waiting will not help
    return error.status_code in RETRYABLE_STATUSES or error.status_code >= 500


def retry_delay(
    error: StreamError, attempt: int, max_retries: int, deadline: float
) -> float | None:
    """Seconds to wait before attempt ``attempt + 1``, or None when it must not be made.

    A server's ``retry-after`` is obeyed when it fits the budget; otherwise the wait is
    exponential with jitter, so that many clients do not come back at the same moment.
    """
    if attempt >= max_retries:
        return None
    remaining = deadline - time.monotonic()
    wait = error.retry_after if isinstance(error, HTTPStatusError) else None
    if wait is not None and wait > 0:
        return wait if wait <= remaining else None
    backoff = min(_MAX_BACKOFF, 0.5 * 2**attempt) * (1 - 0.25 * random.random())
    return backoff if backoff <= remaining else None
