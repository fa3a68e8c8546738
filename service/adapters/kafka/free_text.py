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
_TEXT_VALUE: Final = re.compile(
    r'"(' + "|".join(map(re.escape, _LEAVES)) + r')"\s*:\s*"(' + re.escape(SEALED_PREFIX) + r'[0-9a-f-]{36}:[A-Za-z0-9+/=]*")?'
)
"""A string value at one of those names; group 2 when it is a sealed text as the store writes it (base64 needs
no escapes). Only personal fields are ever sealed, so a sealed one is nulled in place: most events hold no text
in clear, and need no parse."""


def without_free_text(type_: str, data: str) -> str:
    """A stored event's JSON with every personal free text null; the JSON as it is when it holds none."""
    paths = PERSONAL_PATHS.get(type_)
    if not paths:
        return data
    clear = False

    def nulled(found: re.Match[str]) -> str:
        nonlocal clear
        if found[2] is None:
            clear = True
            return found[0]
        return f'"{found[1]}":null'

    data = _TEXT_VALUE.sub(nulled, data)
    if not clear:
        return data
    parsed = json.loads(data)
    map_personal_json(parsed, paths, lambda _: None)
    return json.dumps(parsed, separators=(",", ":"), ensure_ascii=False)
