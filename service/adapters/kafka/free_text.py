"""What other services get of the personal free text on the case events: null in its place, unless the service
is configured to publish it (RECOVERY_PUBLISH_FREE_TEXT; the event feed then opens the texts it reads).

Which fields those are is the registry's `PERSONAL_PATHS`, derived from the `PersonalText` marker; nothing here
lists a field.
"""

from __future__ import annotations

import json
import re
from typing import Final

from service.adapters.postgres.data_keys import SEALED_PREFIX
from service.domain.personal import map_personal_json
from service.domain.registry import PERSONAL_PATHS

_LEAVES: Final = sorted({path[-1] for paths in PERSONAL_PATHS.values() for path in paths})
_HOLDS_TEXT: Final = re.compile(r'"(?:' + "|".join(map(re.escape, _LEAVES)) + r')"\s*:\s*"')
"""A string value at one of those field names, anywhere: the JSON needs parsing (else it holds no text)."""


_SEALED_TEXT: Final = re.compile(
    r'"(' + "|".join(map(re.escape, _LEAVES)) + r')":"' + re.escape(SEALED_PREFIX) + r'[0-9a-f-]{36}:[A-Za-z0-9+/=]*"'
)
"""A sealed text at one of those names, as the store writes it (compact JSON; base64 needs no escapes). Only
personal fields are ever sealed, so nulling each match needs no parse: most events' texts are sealed."""


def without_free_text(type_: str, data: str) -> str:
    """A stored event's JSON with every personal free text null; the JSON as it is when it holds none."""
    paths = PERSONAL_PATHS.get(type_)
    if not paths or _HOLDS_TEXT.search(data) is None:
        return data
    data = _SEALED_TEXT.sub(r'"\1":null', data)
    if _HOLDS_TEXT.search(data) is None:
        return data
    parsed = json.loads(data)
    map_personal_json(parsed, paths, lambda _: None)
    return json.dumps(parsed, separators=(",", ":"), ensure_ascii=False)
