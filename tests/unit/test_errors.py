"""`problem_from`: the one table from an exception to what every transport tells a client."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field, ValidationError

from lorebase.errors import (
    OPAQUE_DETAIL,
    PROBLEM_BASE,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    problem_from,
)
from lorebase.providers.base import AuthFailed, BadResponse, ProviderUnavailable
from lorebase.providers.base import RateLimited as VendorRateLimited


class _Args(BaseModel):
    top_k: int = Field(ge=1, le=100)


@pytest.mark.parametrize(
    ("exc", "status", "slug", "retry_after"),
    [
        (NotFound("no such project"), 404, "not-found", None),
        (RateLimited("slow down", retry_after=7), 429, "rate-limited", 7),
        (ServiceUnavailable("embedder down", retry_after=3), 503, "service-unavailable", 3),
        (
            ProviderUnavailable("openai timed out", provider="openai"),
            503,
            "provider-unavailable",
            5,
        ),
        (
            VendorRateLimited("429", provider="openai", retry_after=2.1),
            503,
            "provider-unavailable",
            3,
        ),
        (AuthFailed("refused sk-abc", provider="anthropic"), 503, "provider-unavailable", 60),
        (BadResponse("ollama answered 400", provider="ollama"), 502, "provider-error", None),
    ],
)
def test_each_error_has_one_status(
    exc: Exception, status: int, slug: str, retry_after: int | None
) -> None:
    problem = problem_from(exc)
    body = problem.body(instance="/x")
    assert (problem.status, body["status"], body["type"]) == (status, status, PROBLEM_BASE + slug)
    assert body.get("retry_after") == retry_after
    if retry_after is not None:
        assert problem.headers["Retry-After"] == str(retry_after)


def test_a_refused_key_tells_the_client_no_vendor_text() -> None:
    body = problem_from(AuthFailed("anthropic said: key sk-abc is bad", provider="anthropic"))
    assert "sk-abc" not in str(body.body())
    assert body.extra == {"provider": "anthropic"}


def test_validation_names_the_fields() -> None:
    with pytest.raises(ValidationError) as caught:
        _Args(top_k=0)
    problem = problem_from(caught.value)
    assert problem.status == 422
    assert problem.detail == "invalid arguments: top_k"
    assert problem.errors is not None
    assert problem.errors[0]["field"] == "top_k"


def test_anything_else_is_an_opaque_500() -> None:
    body = problem_from(RuntimeError("db-password=hunter2")).body(instance="/x")
    assert body["status"] == 500
    assert body["detail"] == OPAQUE_DETAIL
    assert "hunter2" not in str(body)
    assert "RuntimeError" not in str(body)
