"""Per-customer data keys, each wrapped by a master key from the environment: what the customer's words are
sealed with.

- `customer_keys` (migration 018) holds one row per customer: a random key id, the 32-byte data key wrapped with
  AES-GCM by one master key (its id is on the row, so several master keys can be configured while one rotates
  in), and the customer id. Deleting a customer's row makes every text sealed with their key unreadable, in the
  events, the snapshots, the signal log and the remembered answers alike (crypto-shredding: erasure).
- A sealed text is `sealed:<key id>:<base64 of nonce and AES-GCM ciphertext>`, the key id as associated data.
  Its nonce is an HMAC of the text under the data key (a synthetic nonce): the same text sealed twice reads the
  same, so a replayed snapshot equals the stored one and a nonce never repeats for two different texts; the
  price is that two equal texts of one customer are seen to be equal.
- A text already sealed (with any key) passes through a seal unchanged: values read from the store without
  opening (the intake's snapshots, timers, the rebuild) are written back as they are, and a text sealed with a
  key since destroyed stays erased, never sealed again under the customer's next key. (A customer who sends
  words shaped like a sealed text has them kept as they are; they read as erased, naming a key that is not.)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from service.domain.case import CaseIds
from service.domain.personal import ERASED_TEXT

SEALED_PREFIX: Final = "sealed:"
_KEY_ID_LENGTH: Final = 36  # a uuid's text form
KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
ERASED: Final = ERASED_TEXT
"""What a sealed text reads as once its customer's key is gone."""
UNREADABLE: Final = "[unreadable]"
"""What a sealed text reads as when it does not open under its key (a damaged row)."""
CACHED_KEYS: Final = 10_000
"""Unwrapped data keys kept in memory, least recently used out first (about 1 KB each with their ciphers)."""


NO_DATA_KEYS: Final = (
    "RECOVERY_DATA_KEYS is not set: the service seals each customer's texts with a key that a master key from"
    ' it wraps; set it to {"<id>": "<base64 of 32 random bytes>"} (see docs/operators.md); `recovery dev` makes one'
)


class MissingMasterKey(LookupError):
    """A data key is wrapped by a master key that is not configured; the message names the variable."""


@dataclass(frozen=True)
class MasterKeys:
    """The configured master keys by id, and the id of the one that wraps new data keys."""

    keys: Mapping[str, bytes]
    current: str

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise ValueError(f"RECOVERY_DATA_KEY_CURRENT {self.current!r} is not a key of RECOVERY_DATA_KEYS")
        for key_id, key in self.keys.items():
            if len(key) != KEY_BYTES:
                raise ValueError(f"RECOVERY_DATA_KEYS[{key_id!r}] is not {KEY_BYTES} bytes (base64)")

    def case_ids(self) -> CaseIds:
        """New cases' ids keyed by a secret derived from the current master key. A rotation changes the ids of
        cases opened after it only: every case is found by its stored id, never by computing it again."""
        return CaseIds(_derive(self.keys[self.current], b"case-ids"))

    def customer_digests(self, customer_id: str) -> list[bytes]:
        """A keyed hash of the customer id under each configured master key, the current one's first: how an
        erased customer is known again (erased_customers) without their id being stored."""
        ids = [self.current, *sorted(set(self.keys) - {self.current})]
        return [hmac.digest(_derive(self.keys[i], b"erased-customer"), customer_id.encode(), hashlib.sha256) for i in ids]

    def wrap(self, key_id: str, data_key: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + _aead(self.keys[self.current]).encrypt(nonce, data_key, key_id.encode())

    def unwrap(self, master_id: str, key_id: str, wrapped: bytes) -> bytes:
        master = self.keys.get(master_id)
        if master is None:
            raise MissingMasterKey(
                f"a customer key is wrapped by master key {master_id!r}, which RECOVERY_DATA_KEYS does not hold"
            )
        return _aead(master).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], key_id.encode())


@lru_cache(maxsize=16)
def _aead(master_key: bytes) -> AESGCM:
    """The cipher of a master key, made once (every new customer's key is wrapped by it)."""
    return AESGCM(master_key)


def parse_key_table(raw: str) -> dict[str, bytes]:
    """RECOVERY_DATA_KEYS read: a JSON object of ids to base64 keys of 32 bytes; the errors name no key."""
    try:
        table = json.loads(raw)
    except ValueError:
        raise ValueError("RECOVERY_DATA_KEYS is not JSON: an object of key ids to base64 keys") from None
    if not isinstance(table, dict) or not table:
        raise ValueError("RECOVERY_DATA_KEYS must be a non-empty JSON object of key ids to base64 keys")
    keys = {}
    for key_id, encoded in table.items():
        try:
            keys[key_id] = base64.b64decode(encoded, validate=True)
        except (TypeError, ValueError):
            raise ValueError(f"RECOVERY_DATA_KEYS[{key_id!r}] is not base64") from None
        if len(keys[key_id]) != KEY_BYTES or not key_id or not key_id.isprintable():
            raise ValueError(f"RECOVERY_DATA_KEYS[{key_id!r}] must be a printable id and {KEY_BYTES} bytes")
    return keys


def parse_master_keys(raw: str, current: str | None) -> MasterKeys:
    """The master keys configured, and the one that wraps new keys (the only one when `current` is None)."""
    keys = parse_key_table(raw)
    if current is None:
        if len(keys) > 1:
            raise ValueError("RECOVERY_DATA_KEY_CURRENT must name one of the several RECOVERY_DATA_KEYS")
        current = next(iter(keys))
    return MasterKeys(keys, current)


def new_master_key() -> str:
    """A fresh master key, base64 (what `recovery dev` configures, and operators make with it)."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return hmac.digest(secret, b"recovery-loop/" + purpose, hashlib.sha256)


class DataKey:
    """One customer's key: seals and opens their texts."""

    __slots__ = ("_aad", "_aead", "_nonce_key", "key_id", "prefix")

    def __init__(self, key_id: str, secret: bytes) -> None:
        self.key_id = key_id
        self.prefix = f"{SEALED_PREFIX}{key_id}:"
        self._aad = key_id.encode()
        self._aead = AESGCM(_derive(secret, b"text"))
        self._nonce_key = _derive(secret, b"nonce")

    def seal(self, text: str) -> str:
        """The text sealed; one already sealed (with any key) as it is."""
        if key_id_of(text) is not None:
            return text
        plain = text.encode()
        nonce = hmac.digest(self._nonce_key, plain, hashlib.sha256)[:NONCE_BYTES]
        sealed = nonce + self._aead.encrypt(nonce, plain, self._aad)
        return self.prefix + base64.b64encode(sealed).decode()

    def open(self, sealed: str) -> str:
        raw = base64.b64decode(sealed[len(self.prefix) :], validate=True)
        return self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], self._aad).decode()


def key_id_of(text: str) -> str | None:
    """The key id a sealed text names; None for a text stored in clear (before sealing)."""
    if not text.startswith(SEALED_PREFIX) or text[len(SEALED_PREFIX) + _KEY_ID_LENGTH : ][:1] != ":":
        return None
    return text[len(SEALED_PREFIX) : len(SEALED_PREFIX) + _KEY_ID_LENGTH]


def open_text(text: str, keys: Mapping[str, DataKey]) -> str:
    """A stored text as staff read it: opened, as it is when stored in clear, ERASED when its key is gone."""
    key_id = key_id_of(text)
    if key_id is None:
        return text
    key = keys.get(key_id)
    if key is None:
        return ERASED
    try:
        return key.open(text)
    except (InvalidTag, ValueError):
        return UNREADABLE


_BY_CUSTOMER = (
    "SELECT customer_id, key_id::text, master_key_id, wrapped FROM customer_keys"
    " WHERE customer_id = ANY($1::text[])"
)
_BY_ID = "SELECT customer_id, key_id::text, master_key_id, wrapped FROM customer_keys WHERE key_id = ANY($1::uuid[])"
_CREATE = (
    "INSERT INTO customer_keys (customer_id, key_id, master_key_id, wrapped)"
    " SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::bytea[]) ORDER BY 1"
    " ON CONFLICT (customer_id) DO NOTHING RETURNING customer_id, key_id::text, master_key_id, wrapped"
)


class Keyring:
    """Finds, creates and unwraps customers' data keys; keeps recently unwrapped ones in memory.

    Every lookup asks the database (one query for a whole batch), so a key deleted there is gone for every
    instance at once; the memory only saves unwrapping a row again, and is keyed by the row's wrapped bytes."""

    def __init__(self, master: MasterKeys, cached: int = CACHED_KEYS) -> None:
        self.master = master
        self._cached = cached
        self._unwrapped: OrderedDict[tuple[str, bytes], DataKey] = OrderedDict()

    async def of_customers(self, conn: Any, customer_ids: Iterable[str], create: bool = True) -> dict[str, DataKey]:
        """Customer id -> key for these customers; with `create`, a customer without one gets one (race-safe:
        a concurrent creation wins and is read back)."""
        wanted = sorted(set(customer_ids))
        if not wanted:
            return {}
        found = {r["customer_id"]: self._key(r) for r in await conn.fetch(_BY_CUSTOMER, wanted)}
        missing = [c for c in wanted if c not in found]
        if missing and create:
            customers, ids, masters, wrapped, secrets = self._new(missing)
            for row in await conn.fetch(_CREATE, customers, ids, masters, wrapped):
                found[row["customer_id"]] = self._remember(row, DataKey(row["key_id"], secrets[row["key_id"]]))
            lost = [c for c in missing if c not in found]  # created meanwhile by a transaction that committed
            if lost:
                found |= {r["customer_id"]: self._key(r) for r in await conn.fetch(_BY_CUSTOMER, lost)}
        return found

    async def by_ids(self, conn: Any, key_ids: Iterable[str]) -> dict[str, DataKey]:
        """Key id -> key for the ids that still exist."""
        ids = sorted(set(key_ids))
        if not ids:
            return {}
        return {r["key_id"]: self._key(r) for r in await conn.fetch(_BY_ID, ids)}

    async def check(self, conn: Any) -> None:
        """MissingMasterKey if a stored key is wrapped by a master key that is not configured."""
        used = await conn.fetch("SELECT DISTINCT master_key_id FROM customer_keys")
        absent = sorted({r["master_key_id"] for r in used} - self.master.keys.keys())
        if absent:
            raise MissingMasterKey(
                f"RECOVERY_DATA_KEYS lacks the master key(s) {', '.join(absent)} that wrap stored customer keys:"
                " configure every master key still in use (see docs/operators.md, rotating keys)"
            )

    def _new(
        self, customers: list[str]
    ) -> tuple[list[str], list[str], list[str], list[bytes], dict[str, bytes]]:
        """New keys for these customers: their rows' columns, and each key's secret by key id (a key created
        now is used without being unwrapped again)."""
        secrets = {str(uuid.uuid4()): os.urandom(KEY_BYTES) for _ in customers}
        wrapped = [self.master.wrap(key_id, secret) for key_id, secret in secrets.items()]
        return customers, list(secrets), [self.master.current] * len(secrets), wrapped, secrets

    def _key(self, row: Any) -> DataKey:
        key = self._unwrapped.get((row["key_id"], bytes(row["wrapped"])))
        if key is None:
            secret = self.master.unwrap(row["master_key_id"], row["key_id"], bytes(row["wrapped"]))
            return self._remember(row, DataKey(row["key_id"], secret))
        self._unwrapped.move_to_end((row["key_id"], bytes(row["wrapped"])))
        return key

    def _remember(self, row: Any, key: DataKey) -> DataKey:
        self._unwrapped[row["key_id"], bytes(row["wrapped"])] = key
        if len(self._unwrapped) > self._cached:
            self._unwrapped.popitem(last=False)
        return key
