"""RECOVERY_API_TOKENS: the bearer tokens, each naming an actor and a role, kept as a secret.

A token is held by its SHA-256 digest and compared by digest in constant time; nothing prints one (`repr`,
logs, `model_dump(mode="json")`). `get_secret_value()` gives the JSON back, as SecretStr does, for a child
process's environment. A token shorter than MIN_TOKEN_LENGTH, with whitespace, made of one repeated
character, or containing "change" (CHANGE_ME, changeme, a copied placeholder) stops start-up.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, Field, GetCoreSchemaHandler, SecretStr
from pydantic_core import core_schema

MIN_TOKEN_LENGTH = 32
HIDDEN = "**********"  # what a JSON dump of the settings shows, as for SecretStr


class ApiToken(BaseModel):
    actor: str
    role: str = Field(pattern="^(agent|manager|owner)$")


def digest_of(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def weakness_of(token: str) -> str | None:
    """Why a token or key is no secret (None when it may be one)."""
    if "change" in token.lower():
        return 'contains "change": it is a placeholder, not a secret'
    if len(set(token)) <= 1:
        return "is empty or one character repeated"
    if len(token) < MIN_TOKEN_LENGTH:
        return f"has {len(token)} characters: at least {MIN_TOKEN_LENGTH} are needed"
    if any(c.isspace() for c in token):
        return "contains whitespace"
    return None


class ApiTokens:
    """The configured tokens by digest; actor_of() answers the actor and role a presented token names."""

    def __init__(self, tokens: Mapping[str, ApiToken] | None = None) -> None:
        tokens = dict(tokens or {})
        for number, (token, actor) in enumerate(tokens.items(), 1):
            weakness = weakness_of(token)
            if weakness is not None:  # the token itself never goes into the message
                raise ValueError(
                    f"token {number} (actor {actor.actor!r}) {weakness}; make one with"
                    " `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
                )
        self._by_digest = MappingProxyType({digest_of(t): a for t, a in tokens.items()})
        self._secret = SecretStr(json.dumps({t: a.model_dump() for t, a in tokens.items()}))

    def actor_of(self, token: str) -> ApiToken | None:
        """The actor of a configured token; every digest is compared, so the time says nothing of which."""
        digest, found = digest_of(token), None
        for known, actor in self._by_digest.items():
            if hmac.compare_digest(known, digest):
                found = actor
        return found

    def by_digest(self) -> Mapping[bytes, ApiToken]:
        return self._by_digest

    def get_secret_value(self) -> str:
        """The tokens as RECOVERY_API_TOKENS's JSON, for the environment of a process this one starts."""
        return self._secret.get_secret_value()

    def __len__(self) -> int:
        return len(self._by_digest)

    def __repr__(self) -> str:
        return f"ApiTokens(actors={sorted({a.actor for a in self._by_digest.values()})})"

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        """From the environment's JSON text, a mapping, or an ApiTokens; dumped as JSON, hidden."""
        entries = core_schema.no_info_after_validator_function(
            cls, handler.generate_schema(dict[str, ApiToken])
        )
        return core_schema.no_info_wrap_validator_function(
            _tokens_of,
            entries,
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda _: HIDDEN, when_used="json"
            ),
        )


def _tokens_of(value: Any, validate: core_schema.ValidatorFunctionWrapHandler) -> Any:
    if isinstance(value, ApiTokens):
        return value
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:  # its message quotes no part of the text
            raise ValueError(f"not JSON: {e.msg} at character {e.pos}") from None
    return validate(value)
