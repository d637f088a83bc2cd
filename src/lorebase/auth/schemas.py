"""Auth request and response bodies."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from lorebase.auth.policy import MIN_PASSWORD_LENGTH, password_problem


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    password: SecretStr = Field(
        min_length=MIN_PASSWORD_LENGTH,
        max_length=256,
        description=f"At least {MIN_PASSWORD_LENGTH} characters, not a common password.",
    )
    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

    @field_validator("password")
    @classmethod
    def _policy(cls, value: SecretStr) -> SecretStr:
        problem = password_problem(value.get_secret_value())
        if problem:
            raise ValueError(problem)
        return value


class UserRead(BaseModel):
    id: UUID
    username: str
    email: str | None
    is_admin: bool
    created_at: datetime


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=1, max_length=4096)
