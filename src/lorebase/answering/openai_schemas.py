"""The OpenAI wire shapes of `/openai/v1`: the chat request, the completion, the models list and
the error object (`{"error": {message, type, param, code}}`, which the OpenAI SDKs parse).

Requests accept OpenAI's other parameters and ignore them, as OpenAI does with unknown ones;
what Lorebase cannot honour (`n` > 1, image parts) is refused with a 400 naming the parameter."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from lorebase.errors import Problem

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]
MAX_QUESTION_CHARS = 4000  # QueryCreate.query_text


class ContentPart(BaseModel):
    """One part of a message's content; only `text` parts carry anything Lorebase reads."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(min_length=1, max_length=64)
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")  # name, tool_calls, ...

    role: Role
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        """The message's text: the string, or its text parts joined."""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(part.text or "" for part in self.content or [] if part.type == "text")


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """`model` is a project id (or an unambiguous project name); the last user message is the
    question. OpenAI's other parameters are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=200)
    messages: list[ChatMessage] = Field(min_length=1, max_length=500)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=32768)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=32768)
    n: int | None = Field(default=None, ge=1, le=1, description="Only one choice is made.")

    @model_validator(mode="after")
    def _has_a_question(self) -> ChatCompletionRequest:
        for message in self.messages:
            if isinstance(message.content, list) and any(
                part.type != "text" for part in message.content
            ):
                raise ValueError("only text content parts are supported")
        question = self.question()
        if not question.strip():
            raise ValueError("messages must hold a user message with text (the question)")
        if len(question) > MAX_QUESTION_CHARS:
            raise ValueError(f"the last user message is longer than {MAX_QUESTION_CHARS} chars")
        return self

    def question(self) -> str:
        """The last user message's text ('' when there is none)."""
        last = next((m for m in reversed(self.messages) if m.role == "user"), None)
        return last.text() if last is not None else ""

    def history(self) -> list[ChatMessage]:
        """The user and assistant turns before the last user message."""
        indices = [i for i, m in enumerate(self.messages) if m.role == "user"]
        earlier = self.messages[: indices[-1]] if indices else []
        return [m for m in earlier if m.role in ("user", "assistant") and m.text().strip()]

    def answer_max_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class CitationOut(BaseModel):
    """A verified citation: `number` is the `[n]` marker of the content it backs, `quote` is
    verbatim text of the passage `result_id` of `document_id` at `version`."""

    number: int
    result_id: UUID
    document_id: UUID
    document_name: str
    version: str
    quote: str


class UsageOut(BaseModel):
    """Token counts of the model calls this request made (answer and condensation), estimated
    with the model's tokenizer when it has one, else ~4 characters a token; 0 for a cache hit."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: None = None


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    logprobs: None = None
    finish_reason: Literal["stop"] = "stop"


class LorebaseInfo(BaseModel):
    """Lorebase's own fields: the query id, the question as searched (after condensing the
    conversation), whether the answer came from the cache, and the warnings."""

    query_id: UUID | None = None
    question: str
    cached: bool = False
    warnings: list[str] = Field(default_factory=list)


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    system_fingerprint: str | None = None
    choices: list[Choice]
    usage: UsageOut
    citations: list[CitationOut]
    lorebase: LorebaseInfo


class ModelCard(BaseModel):
    """A project the caller can read, as an OpenAI model."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "lorebase"
    name: str
    description: str | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


# --- errors in OpenAI's shape --------------------------------------------------------------

_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
}


def error_object(
    status: int,
    slug: str,
    message: str,
    *,
    extra: dict[str, Any] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> tuple[int, dict[str, Any]]:
    """The OpenAI status and error body for a problem (status, type slug, detail). A 422 is
    OpenAI's 400; `param` is the first invalid field; `code` the problem's slug unless the
    problem names one (`model_not_found`)."""
    extra = extra or {}
    status = 400 if status == 422 else status
    param = extra.get("param")
    if param is None and errors:
        param = next((str(e["field"]) for e in errors if e.get("field")), None)
    kind = _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    code = extra.get("code") or slug.replace("-", "_")
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return status, body


def openai_error(problem: Problem) -> tuple[int, dict[str, Any]]:
    """`problem` as OpenAI's status and error body."""
    return error_object(
        problem.status,
        problem.type,
        problem.detail,
        extra=dict(problem.extra),
        errors=problem.errors,
    )
