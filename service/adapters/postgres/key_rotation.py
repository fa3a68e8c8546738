"""Master key rotation: every customer key wrapped by an older master key is wrapped again by the current one.

Rotation is three steps (docs/operators.md): add the new master key to RECOVERY_DATA_KEYS and name it in
RECOVERY_DATA_KEY_CURRENT on every instance (new customer keys are then wrapped by it, and every configured
key still unwraps), run `recovery keys rewrap`, then drop the old key from RECOVERY_DATA_KEYS. The data keys
themselves, and so every sealed text, stay as they are: only their wrapping changes.
"""

from __future__ import annotations

from service.adapters.postgres.case_writes import Connection
from service.adapters.postgres.data_keys import MasterKeys

REWRAP_BATCH = 500
"""Customer keys rewrapped per transaction: each batch's rows are locked only for that transaction."""

_OLDER = (
    "SELECT key_id::text, master_key_id, wrapped FROM customer_keys WHERE master_key_id <> $1"
    " ORDER BY key_id LIMIT $2 FOR UPDATE SKIP LOCKED"
)
_REWRAPPED = (
    "UPDATE customer_keys AS k SET master_key_id = $1, wrapped = u.wrapped"
    " FROM unnest($2::uuid[], $3::bytea[]) AS u(key_id, wrapped) WHERE k.key_id = u.key_id"
)


async def rewrap_keys(conn: Connection, master: MasterKeys, batch: int = REWRAP_BATCH) -> int:
    """Wrap every customer key not under the current master key by it; how many were rewrapped.
    MissingMasterKey (naming the master key id) when one is wrapped by a key that is not configured."""
    done = 0
    while True:
        async with conn.transaction():
            rows = await conn.fetch(_OLDER, master.current, batch)
            if not rows:
                return done
            ids = [r["key_id"] for r in rows]
            secrets = [master.unwrap(r["master_key_id"], r["key_id"], bytes(r["wrapped"])) for r in rows]
            wrapped = [master.wrap(key_id, secret) for key_id, secret in zip(ids, secrets, strict=True)]
            await conn.execute(_REWRAPPED, master.current, ids, wrapped)
        done += len(rows)
