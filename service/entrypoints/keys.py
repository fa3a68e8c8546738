"""`recovery keys`: make a master key, and rewrap the customer keys under the current one (rotation)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import asyncpg

from service.adapters.postgres.data_keys import MissingMasterKey, new_master_key
from service.adapters.postgres.key_rotation import rewrap_keys
from service.config import Settings, keyring_of


def add_commands(commands: Any) -> None:
    keys = commands.add_parser("keys", help="the master keys that wrap the customers' data keys").add_subparsers(
        dest="keys_command", required=True
    )
    keys.add_parser("new", help="print a fresh master key (base64 of 32 random bytes) for RECOVERY_DATA_KEYS")
    keys.add_parser(
        "rewrap", help="wrap every customer key by RECOVERY_DATA_KEY_CURRENT (after adding a new master key)"
    )


WITHOUT_STORED_TEXTS = frozenset({"migrate", "publish", "dlq", "incidents"})  # schema, Kafka, or no text read


def needs_data_keys(args: argparse.Namespace) -> bool:
    """Whether the command reads or writes customers' stored texts, or knows erased customers again (`dlq
    replay`); every other needs no master key."""
    if args.command == "dlq":
        return bool(args.dlq_command == "replay")
    if args.command in WITHOUT_STORED_TEXTS:
        return False
    return not (args.command == "keys" and args.keys_command == "new")


async def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.keys_command == "new":
        print(new_master_key())
        return 0
    master = keyring_of(settings).master
    pool = await asyncpg.create_pool(settings.database_url.get_secret_value(), min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            done = await rewrap_keys(conn, master)
    except MissingMasterKey as e:
        print(f"recovery: {e}", file=sys.stderr)
        return 2
    finally:
        await pool.close()
    print(f"rewrapped {done} customer key(s) under master key {master.current!r}")
    return 0
