"""The store's boundary for personal free text: sealed with the customer's key on the way in, opened on the way
out to staff, left out on the way out to other services.

Which fields are personal is said once, by the `PersonalText` marker (domain/personal.py) and the registry's
paths derived from it; nothing here lists a field. The domain never sees a key: writers seal the values the
domain decided, readers that show a case to staff open what they read, and every other reader (the intake's
snapshots, timers, the rebuild) carries sealed texts through untouched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from service.adapters.postgres.data_keys import SEALED_PREFIX, DataKey, Keyring, open_text
from service.domain.case import CaseState
from service.domain.intake import NewEvent
from service.domain.personal import map_personal, map_personal_json, personal_paths
from service.domain.registry import PERSONAL_PATHS

T = TypeVar("T")
_KEY_IDS = re.compile(re.escape(SEALED_PREFIX) + r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}):")


class Sealer:
    """Seals the personal texts of what one transaction writes, each case's with its customer's key."""

    def __init__(self, keys: Mapping[str, DataKey]) -> None:
        self._keys = keys  # case id -> its customer's key
        self._sealed: dict[tuple[str, str], str] = {}  # (key id, text) -> sealed: a signal's text is in the
        # signal log, its event and maybe the summary; sealed once (a synthetic nonce: the same text, the same seal)

    @classmethod
    async def for_cases(cls, conn: Any, keyring: Keyring, cases: Iterable[CaseState]) -> Sealer:
        """One query for the keys of these cases' customers, creating those that have none yet."""
        cases = list(cases)
        by_customer = await keyring.of_customers(conn, (c.customer_id for c in cases))
        return cls({c.case_id: by_customer[c.customer_id] for c in cases})

    def key(self, case_id: str) -> DataKey:
        return self._keys[case_id]

    def _sealing(self, case_id: str) -> Callable[[str], str]:
        key = self._keys[case_id]
        sealed = self._sealed

        def seal(text: str) -> str:
            if text.startswith(SEALED_PREFIX):  # read from the store as it was written (or shaped like it)
                return key.seal(text)
            found = sealed.get((key.key_id, text))
            if found is None:
                found = sealed[key.key_id, text] = key.seal(text)
            return found

        return seal

    def state(self, state: CaseState) -> CaseState:
        return map_personal(state, self._sealing(state.case_id))

    def states(self, states: Iterable[CaseState]) -> list[CaseState]:
        return [self.state(s) for s in states]

    def events(self, events: Iterable[NewEvent]) -> list[NewEvent]:
        sealed = []
        for e in events:
            event = self.value(e.stream_id, e.event)
            sealed.append(e if event is e.event else NewEvent(e.stream_id, e.version, event, e.traceparent))
        return sealed

    def value(self, case_id: str, value: T) -> T:
        """An event (or any value) of a case, its personal texts sealed; one that holds none as it is."""
        if not personal_paths(type(value)):
            return value
        return map_personal(value, self._sealing(case_id))

    def text(self, case_id: str, text: str | None) -> str | None:
        return None if text is None else self._sealing(case_id)(text)


class Opener:
    """Opens sealed texts with the keys they name (those still stored)."""

    def __init__(self, keys: Mapping[str, DataKey]) -> None:
        self._keys = keys  # key id -> key

    @classmethod
    async def for_texts(cls, conn: Any, keyring: Keyring, stored: Iterable[str | None]) -> Opener:
        """One query for every key the stored JSON or texts name."""
        ids = {m.group(1) for text in stored if text for m in _KEY_IDS.finditer(text)}
        return cls(await keyring.by_ids(conn, ids))

    def text(self, text: str | None) -> str | None:
        return None if text is None else open_text(text, self._keys)

    def value(self, value: T) -> T:
        return map_personal(value, lambda text: open_text(text, self._keys))

    def event_json(self, type_: str, data: str) -> str:
        """A stored event's JSON with its personal texts opened."""
        paths = PERSONAL_PATHS.get(type_)
        if not paths or SEALED_PREFIX not in data:
            return data
        parsed = json.loads(data)
        map_personal_json(parsed, paths, lambda text: open_text(text, self._keys))
        return json.dumps(parsed, separators=(",", ":"))
