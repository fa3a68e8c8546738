"""`recovery dlq list|show|replay`: look at the dead-letter topic and publish its records again once the cause
is fixed. Values are customer data: only `show --value` prints one, because an operator asked for it. A replay
skips the dead letters of customers whose personal data was erased (it reads the database for that)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncGenerator
from contextlib import aclosing
from datetime import datetime
from typing import Any

import asyncpg
from tqdm import tqdm

from service.adapters.kafka.client import make_producer
from service.adapters.kafka.dlq import (
    DeadLetter,
    DeadLetterFilter,
    DeadLetterReader,
    DeadLetterReadError,
    Identity,
    SeenIdentities,
    replay,
)
from service.adapters.postgres.erasure import PostgresErasureStore
from service.config import Settings, keyring_of

_MAX_SHOWN = 120  # characters of one attribute on a list line


def add_commands(commands: Any) -> None:
    dlq = commands.add_parser("dlq", help="the dead-letter topic: list, show and replay dead letters")
    sub = dlq.add_subparsers(dest="dlq_command", required=True)
    listing = sub.add_parser("list", help="one line per dead letter: identity, time, reason, CloudEvent ids")
    _add_filters(listing, default_limit=100)
    show = sub.add_parser("show", help="one dead letter's headers (and, with --value, its value)")
    show.add_argument(
        "where", nargs="+", help="<topic> <partition> <offset>, or <topic>/<partition>/<offset>"
    )
    show.add_argument("--value", action="store_true", help="also print the value (customer data) to stdout")
    again = sub.add_parser(
        "replay",
        help="publish matching dead letters again to their original topic, without the dlq_* headers",
    )
    _add_filters(again, default_limit=None)
    again.add_argument("--dry-run", action="store_true", help="print what would be replayed; publish nothing")
    again.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    again.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_filters(parser: argparse.ArgumentParser, default_limit: int | None) -> None:
    parser.add_argument("--reason", help="only dead letters whose reason contains this text (any case)")
    parser.add_argument("--topic", help="only dead letters from this original topic")
    parser.add_argument("--since", type=_instant, help="dead-lettered at or after this RFC 3339 time")
    parser.add_argument("--until", type=_instant, help="dead-lettered before this RFC 3339 time")
    parser.add_argument(
        "--limit",
        type=int,
        default=default_limit,
        help=f"at most this many (default {default_limit or 'all'})",
    )


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time: {text!r}") from e
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give an offset (Z or +hh:mm): {text!r}")
    return value


async def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.dlq_command == "replay" and not args.dry_run and not args.yes and not _confirmed():
        print("nothing replayed (see --dry-run first, then --yes)", file=sys.stderr)
        return 2
    try:
        async with DeadLetterReader(settings) as reader:
            if args.dlq_command == "list":
                return await _list(reader, args)
            if args.dlq_command == "show":
                return await _show(reader, _identity(args.where), args.value)
            return await _replay(reader, args, settings)
    except DeadLetterReadError as e:
        print(f"recovery dlq: {e}", file=sys.stderr)
        return 1


def _filter(args: argparse.Namespace) -> DeadLetterFilter:
    return DeadLetterFilter(args.reason, args.topic, args.since, args.until)


async def _list(reader: DeadLetterReader, args: argparse.Namespace) -> int:
    seen, shown, wanted = SeenIdentities(), 0, _filter(args)
    async with aclosing(reader.letters()) as letters:
        async for letter in letters:
            copy = letter.identity is not None and not seen.add(letter.identity)
            if not wanted.matches(letter):
                continue
            if args.limit is not None and shown >= args.limit:
                print(
                    f"(more dead letters match; showing the first {args.limit}: use --limit)", file=sys.stderr
                )
                break
            print(_line(letter) + ("  copy" if copy else ""))
            shown += 1
    return 0


def _line(letter: DeadLetter) -> str:
    source, id_, type_ = (_clean(a or "-", _MAX_SHOWN) for a in letter.cloudevent())
    reference = "  reference" if letter.is_reference else ""
    return (
        f"{_where(letter)}  {letter.timestamp.isoformat()}  {_clean(letter.reason, 200)}"
        f"  source={source} id={id_} type={type_}{reference}"
    )


def _where(letter: DeadLetter) -> str:
    identity = letter.identity
    if identity is None:
        return f"(no dlq_* identity: dead-letter partition {letter.partition} offset {letter.offset})"
    return _clean("/".join(map(str, identity)), _MAX_SHOWN)


def _identity(where: list[str]) -> Identity:
    parts = where[0].rsplit("/", 2) if len(where) == 1 else where
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
        raise SystemExit(
            "recovery dlq show: give <topic> <partition> <offset> or <topic>/<partition>/<offset>"
        )
    return parts[0], int(parts[1]), int(parts[2])


async def _show(reader: DeadLetterReader, wanted: Identity, with_value: bool) -> int:
    async with aclosing(reader.letters()) as letters:
        async for letter in letters:
            if letter.identity == wanted:
                _print_letter(letter, with_value)
                return 0
    print(f"no dead letter of {'/'.join(map(str, wanted))} on {reader.topic}", file=sys.stderr)
    return 1


def _print_letter(letter: DeadLetter, with_value: bool) -> None:
    print(f"dead letter {_where(letter)}")
    print(f"  on {_position(letter)} at {letter.timestamp.isoformat()}")
    print(f"  key: {'-' if letter.key is None else _clean(letter.key.decode('utf-8', 'replace'), 10_000)}")
    print("  headers:")
    for name, value in letter.headers:
        shown = "(no value)" if value is None else _clean(value.decode("utf-8", "replace"), 100_000)
        print(f"    {_clean(name, 200)}: {shown}")
    size = "no value" if letter.value is None else f"{len(letter.value)} bytes"
    if not with_value or letter.value is None:
        print(f"  value: {size}" + ("" if letter.value is None else " (--value prints it)"))
        return
    print(f"  value: {size}, follows:", flush=True)
    sys.stdout.buffer.write(letter.value + b"\n")
    sys.stdout.flush()


def _position(letter: DeadLetter) -> str:
    return f"dead-letter partition {letter.partition} offset {letter.offset}"


async def _replay(reader: DeadLetterReader, args: argparse.Namespace, settings: Settings) -> int:
    topics = [*settings.signal_topics(), settings.topic_compensation_results]
    bar = tqdm(
        desc="dead letters read", unit="rec", file=sys.stderr, disable=args.quiet or not sys.stderr.isatty()
    )

    def report(letter: DeadLetter, verdict: str | None) -> None:
        if verdict is not None:
            tqdm.write(f"skipped {_where(letter)}: {verdict}", file=sys.stdout)
        elif args.dry_run:
            tqdm.write(f"would replay {_line(letter)}", file=sys.stdout)

    producer = None if args.dry_run else make_producer(settings)
    pool = await asyncpg.create_pool(settings.database_url.get_secret_value(), min_size=1, max_size=1)
    erasures = PostgresErasureStore(pool, keyring_of(settings))

    async def erased(customer_id: str) -> bool:
        try:
            return bool(await erasures.erased([customer_id]))
        except asyncpg.UndefinedTableError:
            raise DeadLetterReadError(
                "the database at RECOVERY_DATABASE_URL has no erased_customers table: is it the service's"
                " (run `recovery migrate`)? A replay checks each customer against it"
            ) from None

    try:
        if producer is not None:
            await producer.start()
        async with aclosing(_matching(reader, args, bar)) as letters:
            outcome = await replay(letters, producer, topics, report, erased=erased)
    finally:
        bar.close()
        await pool.close()
        if producer is not None:
            await producer.stop()
    verb = "would replay" if args.dry_run else "replayed (acknowledged by the broker)"
    print(f"{verb}: {outcome.replayed}; skipped: {sum(outcome.skipped.values())}")
    for why, count in outcome.skipped.most_common():
        print(f"  {count:>8}  {why}")
    return 0


async def _matching(
    reader: DeadLetterReader, args: argparse.Namespace, bar: tqdm[Any]
) -> AsyncGenerator[DeadLetter, None]:
    wanted, taken = _filter(args), 0
    async with aclosing(reader.letters()) as letters:
        async for letter in letters:
            if bar.total is None and reader.total is not None:
                bar.total = reader.total
            bar.update(1)
            if not wanted.matches(letter):
                continue
            if args.limit is not None and taken >= args.limit:
                return
            taken += 1
            yield letter


def _confirmed() -> bool:
    if not sys.stdin.isatty():
        print("recovery dlq replay: pass --yes to publish without a question", file=sys.stderr)
        return False
    return input("publish the matching dead letters to their original topics? [y/N] ").strip().lower() == "y"


def _clean(text: str, limit: int) -> str:
    """Printable on a terminal: control and other unprintable characters escaped, long text cut."""
    cut = text if len(text) <= limit else text[:limit] + "…"
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in cut)
