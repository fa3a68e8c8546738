"""The classification policy from a file (RECOVERY_POLICY_FILE), or the one packaged with the domain.

Reading the file is I/O, so it happens here, at start-up; the domain only ever sees a parsed, checked Policy.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from service.domain.severity import Policy, load_default_policy


class PolicyFileError(ValueError):
    """The policy file cannot be read or is not a valid policy; the message names the file and each field."""


def load_policy(path: Path | None) -> Policy:
    """The policy in the file, or the packaged default when no file is configured."""
    if path is None:
        return load_default_policy()
    return read_document(path, Policy, PolicyFileError)


Document = TypeVar("Document", bound=BaseModel)


def read_document(path: Path, model: type[Document], error: type[ValueError]) -> Document:
    """A JSON policy document read and validated whole; `error` names the file and each field that is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"{path}: cannot be read ({getattr(e, 'strerror', None) or e})") from e
    try:
        return model.model_validate_json(text)
    except ValidationError as e:
        raise error(f"{path}: {fields_of(e)}") from e


def fields_of(error: ValidationError) -> str:
    """Each problem as `field.path: what is wrong` (`policy` for the document as a whole)."""
    return "; ".join(
        f"{'.'.join(str(part) for part in e['loc']) or 'policy'}: {e['msg']}"
        for e in error.errors(include_input=False, include_url=False)
    )
