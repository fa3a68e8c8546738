"""Sealing the customer's words: a round trip under the customer's key, a wrong or missing key, master key
rotation, and which fields of the stored shapes are personal."""

from __future__ import annotations

import base64
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.adapters.postgres.data_keys import (
    ERASED,
    UNREADABLE,
    DataKey,
    MissingMasterKey,
    key_id_of,
    open_text,
    parse_master_keys,
)
from service.domain.case import CaseState
from service.domain.events import CaseOpened, SignalRef
from service.domain.personal import map_personal, personal_paths

KEY_ID = "0b6f1d0e-8a52-4c4e-9a43-2f1f3f7d9c10"
OTHER_ID = "7d3c2b1a-0f9e-4d8c-b7a6-5e4d3c2b1a09"


def key(key_id: str = KEY_ID) -> DataKey:
    return DataKey(key_id, os.urandom(32))


def master_table(**keys: bytes) -> str:
    import json

    return json.dumps({k: base64.b64encode(v).decode() for k, v in keys.items()})


@given(st.text(max_size=500))
def test_a_sealed_text_opens_to_itself_under_its_key_and_names_the_key(text: str) -> None:
    customer = key()
    sealed = customer.seal(text)
    assert sealed != text and key_id_of(sealed) == KEY_ID
    assert open_text(sealed, {KEY_ID: customer}) == text
    assert customer.seal(sealed) == sealed  # sealing twice changes nothing: read-back values are written as they are


def test_the_same_text_seals_the_same_and_different_texts_differently() -> None:
    customer = key()
    assert customer.seal("the ceiling leaks") == customer.seal("the ceiling leaks")
    assert customer.seal("the ceiling leaks") != customer.seal("the ceiling leaks!")


def test_a_text_whose_key_is_gone_reads_as_erased_and_one_under_the_wrong_key_as_unreadable() -> None:
    sealed = key().seal("water through the ceiling")
    assert open_text(sealed, {}) == ERASED
    assert open_text(sealed, {KEY_ID: key()}) == UNREADABLE  # same id, other secret: the tag fails
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    customer = key()
    assert open_text(tampered, {KEY_ID: customer}) == UNREADABLE


def test_a_text_stored_in_clear_by_an_older_release_reads_as_it_is() -> None:
    assert open_text("Nobody came.", {}) == "Nobody came."


def test_a_text_sealed_under_a_destroyed_key_is_never_sealed_again_under_the_next_one() -> None:
    erased = key().seal("old words")
    assert key(OTHER_ID).seal(erased) == erased


def test_rotation_the_current_master_key_wraps_and_every_configured_one_unwraps() -> None:
    old, new = os.urandom(32), os.urandom(32)
    before = parse_master_keys(master_table(k1=old), None)
    secret = os.urandom(32)
    wrapped = before.wrap(KEY_ID, secret)
    during = parse_master_keys(master_table(k1=old, k2=new), "k2")
    assert during.unwrap("k1", KEY_ID, wrapped) == secret
    rewrapped = during.wrap(KEY_ID, secret)
    after = parse_master_keys(master_table(k2=new), None)
    assert after.unwrap("k2", KEY_ID, rewrapped) == secret
    with pytest.raises(MissingMasterKey, match="'k1'"):
        after.unwrap("k1", KEY_ID, wrapped)


def test_a_wrapped_key_does_not_unwrap_under_another_key_id() -> None:
    from cryptography.exceptions import InvalidTag

    master = parse_master_keys(master_table(k1=os.urandom(32)), None)
    wrapped = master.wrap(KEY_ID, os.urandom(32))
    with pytest.raises(InvalidTag):
        master.unwrap("k1", OTHER_ID, wrapped)  # the key id is the associated data: rows cannot be swapped


@pytest.mark.parametrize(
    ("raw", "current", "named"),
    [
        ("not json", None, "RECOVERY_DATA_KEYS"),
        ("{}", None, "RECOVERY_DATA_KEYS"),
        ('{"k1": "c2hvcnQ="}', None, "RECOVERY_DATA_KEYS['k1']"),
        (master_table(k1=b"a" * 32, k2=b"b" * 32), None, "RECOVERY_DATA_KEY_CURRENT"),
        (master_table(k1=b"a" * 32), "k9", "RECOVERY_DATA_KEY_CURRENT"),
    ],
)
def test_bad_master_keys_are_refused_naming_the_variable(raw: str, current: str | None, named: str) -> None:
    with pytest.raises(ValueError, match=named.replace("[", r"\[").replace("]", r"\]")):
        parse_master_keys(raw, current)


def test_the_personal_fields_are_those_marked_and_a_value_maps_them_only() -> None:
    assert ("text",) in personal_paths(SignalRef)
    assert {("summary",), ("reason",), ("signal", "text")} <= set(personal_paths(CaseOpened))
    assert ("customer_id",) not in personal_paths(CaseOpened)  # personal, but not free text: kept as it is
    assert ("summary",) in personal_paths(CaseState)
    ref = SignalRef(
        source="s",
        id="1",
        type="complaint",  # type: ignore[arg-type]
        severity="minor",  # type: ignore[arg-type]
        reasons=(),
        category="other",
        occurred_at=None,  # type: ignore[arg-type]
        received_at=None,  # type: ignore[arg-type]
        text="words",
    )
    assert map_personal(ref, str.upper).text == "WORDS" and map_personal(ref, str.upper).source == "s"
    assert map_personal(ref, lambda text: text) is ref  # nothing changed: the value itself, no copy


@given(
    st.lists(st.tuples(st.text(max_size=40), st.booleans()), min_size=1, max_size=4),
    st.sampled_from(["case.opened", "case.signal_attached", "case.step_recorded", "case.reopened"]),
)
def test_the_outgoing_feed_nulls_sealed_and_clear_texts_alike_and_nothing_else(
    texts: list[tuple[str, bool]], type_: str
) -> None:
    import json

    from service.adapters.kafka.free_text import without_free_text
    from service.domain.personal import map_personal_json
    from service.domain.registry import PERSONAL_PATHS

    sealer = key()
    data: dict[str, object] = {"customer_id": "c-1", "untouched": "sealed:" + KEY_ID + ":AAAA"}
    for i, (text, sealed) in enumerate(texts):
        value = sealer.seal(text) if sealed else text
        path = PERSONAL_PATHS[type_][i % len(PERSONAL_PATHS[type_])]
        node = data
        for name in path[:-1]:
            node = node.setdefault(name, {})  # type: ignore[assignment]
        node[path[-1]] = value
    stored = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    expected = json.loads(stored)
    map_personal_json(expected, PERSONAL_PATHS[type_], lambda _: None)
    assert json.loads(without_free_text(type_, stored)) == expected
