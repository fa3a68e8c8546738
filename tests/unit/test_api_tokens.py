"""Tokens are secrets: placeholders and short tokens stop start-up naming the variable, nothing prints one,
and failed authentications are throttled per client."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from service.adapters.http.token_gate import FailureThrottle, TokenGate, TooManyFailures
from service.api_tokens import ApiToken, ApiTokens
from service.config import Settings
from service.entrypoints.cli import refusal_to_serve, write_private
from service.observability import AUTH_FAILURES
from tests.support import DATA_KEYS
from tests.unit.conftest import Serve

TOKEN = "a-real-token-0123456789-abcdefghij"
OWNER = ApiToken(actor="ops", role="owner")


WITH_KEYS = {"RECOVERY_DATA_KEYS": DATA_KEYS}  # every refusal here comes before anything is reached


@pytest.mark.parametrize(
    "token",
    ["CHANGE_ME", "changeme", "", "a", "short-but-random-Zx81", "x" * 64, "please-CHANGE-this-" + "q" * 20],
)
def test_a_placeholder_or_short_token_stops_start_up_naming_the_variable_and_not_the_token(
    token: str, serve: Serve
) -> None:
    run = serve({**WITH_KEYS, "RECOVERY_API_TOKENS": json.dumps({token: {"actor": "ops", "role": "owner"}})})
    assert run.returncode == 2 and "RECOVERY_API_TOKENS" in run.stderr and "actor 'ops'" in run.stderr
    assert len(token) < 4 or token not in run.stderr  # the message never quotes the token


@pytest.mark.parametrize("key", ["CHANGE_ME", "CHANGE_ME-" * 4, "k" * 40, "short-but-random-Zx81"])
def test_a_placeholder_or_short_console_key_stops_start_up_naming_the_variable(key: str, serve: Serve) -> None:
    run = serve({**WITH_KEYS, "RECOVERY_CONSOLE_SESSION_KEY": key})
    assert run.returncode == 2 and "RECOVERY_CONSOLE_SESSION_KEY" in run.stderr
    assert key not in run.stderr


def test_a_token_with_whitespace_is_refused() -> None:
    with pytest.raises(ValueError, match="whitespace"):
        ApiTokens({"a token with spaces in it, 32 characters": OWNER})


def test_no_repr_or_dump_of_the_settings_prints_a_token() -> None:
    settings = Settings(api_tokens={TOKEN: OWNER})
    for shown in (repr(settings), str(settings), settings.model_dump_json(), repr(settings.api_tokens)):
        assert TOKEN not in shown
    assert json.loads(settings.api_tokens.get_secret_value()) == {TOKEN: {"actor": "ops", "role": "owner"}}


def test_a_token_is_found_by_its_digest_and_no_other_string_is() -> None:
    tokens = ApiTokens({TOKEN: OWNER, "b" + TOKEN: ApiToken(actor="ana", role="agent")})
    assert tokens.actor_of(TOKEN) == OWNER
    assert tokens.actor_of(TOKEN[:-1]) is None and tokens.actor_of("") is None
    assert TOKEN.encode() not in b"".join(tokens.by_digest())


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_client_that_keeps_failing_waits_and_the_metric_counts_it() -> None:
    clock = Ticks()
    gate = TokenGate(ApiTokens({TOKEN: OWNER}), FailureThrottle(3, clock))
    throttled = AUTH_FAILURES.labels("api", "throttled")
    before = throttled._value.get()
    with capture_logs() as logs:
        for _ in range(3):
            assert gate.actor_of("10.0.0.1", "wrong", "api") is None
    assert [e for e in logs if e["event"] == "authentication_throttled"] == [
        {"event": "authentication_throttled", "log_level": "warning", "surface": "api", "client": "10.0.0.1"}
    ]  # once, when the budget ran out, and never the token
    with pytest.raises(TooManyFailures) as refused:
        gate.actor_of("10.0.0.1", TOKEN, "api")  # a right token waits too: guessing goes no faster
    assert refused.value.retry_after == 20  # one more failure per 60/3 seconds
    assert throttled._value.get() == before + 1
    assert gate.actor_of("10.0.0.2", TOKEN, "api") == OWNER  # another address is not held back
    clock.now = 20.0
    assert gate.actor_of("10.0.0.1", TOKEN, "api") == OWNER


def test_the_throttle_tracks_a_bounded_number_of_clients() -> None:
    throttle = FailureThrottle(1, Ticks(), max_clients=2)
    for client in ("a", "b", "c"):
        throttle.failed(client)
    assert throttle.retry_after("a") == 0  # forgotten: the oldest failure went first
    assert throttle.retry_after("b") > 0 and throttle.retry_after("c") > 0


def test_serving_off_loopback_needs_the_session_key_and_a_secure_cookie() -> None:
    key = "console-key-for-these-tests-only-0123456789"
    assert refusal_to_serve(Settings()) is None  # 127.0.0.1: `make run`
    refused = refusal_to_serve(Settings(http_host="0.0.0.0"))
    assert refused is not None and "RECOVERY_CONSOLE_SESSION_KEY" in refused
    plain = refusal_to_serve(
        Settings(http_host="10.1.2.3", console_session_key=key, console_cookie_secure=False)
    )
    assert plain is not None and "RECOVERY_CONSOLE_COOKIE_SECURE" in plain
    assert refusal_to_serve(Settings(http_host="0.0.0.0", console_session_key=key)) is None
    assert refusal_to_serve(Settings(http_host="::1", console_cookie_secure=False)) is None


def test_recovery_serve_without_a_master_key_refuses_to_start_naming_the_variable(serve: Serve) -> None:
    run = serve({})
    assert run.returncode == 2 and "RECOVERY_DATA_KEYS is not set" in run.stderr


def test_recovery_serve_off_loopback_without_the_key_refuses_to_start_naming_it(serve: Serve) -> None:
    run = serve({**WITH_KEYS, "RECOVERY_HTTP_HOST": "0.0.0.0"})
    assert run.returncode == 2 and "RECOVERY_CONSOLE_SESSION_KEY is unset" in run.stderr


def test_recovery_serve_off_loopback_refuses_a_cookie_without_secure_naming_the_variable(serve: Serve) -> None:
    run = serve(
        {
            **WITH_KEYS,
            "RECOVERY_HTTP_HOST": "0.0.0.0",
            "RECOVERY_CONSOLE_SESSION_KEY": "console-key-for-these-tests-only-0123456789",
            "RECOVERY_CONSOLE_COOKIE_SECURE": "false",
        }
    )
    assert run.returncode == 2 and "RECOVERY_CONSOLE_COOKIE_SECURE is false" in run.stderr


def test_the_cookie_is_secure_unless_turned_off() -> None:
    assert Settings().console_cookie_secure is True


def test_dev_json_is_written_for_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "dev.json"
    path.write_text("{}")
    path.chmod(0o644)  # left by an earlier version
    write_private(path, '{"tokens": {}}')
    assert path.stat().st_mode & 0o777 == 0o600 and path.read_text() == '{"tokens": {}}'
    fresh = tmp_path / "fresh.json"
    write_private(fresh, "{}")
    assert fresh.stat().st_mode & 0o777 == 0o600
