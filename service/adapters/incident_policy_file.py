"""The incident policy from a file (RECOVERY_INCIDENT_POLICY_FILE), or the built-in one (the default surge rule).

Read at start-up: a bad file stops the service naming each field at fault.
"""

from __future__ import annotations

from pathlib import Path

from service.adapters.policy_file import read_document
from service.domain.incidents import IncidentPolicy


class IncidentPolicyFileError(ValueError):
    """The file cannot be read or is not a valid incident policy; the message names the file and each field."""


def load_incident_policy(path: Path | None) -> IncidentPolicy:
    if path is None:
        return IncidentPolicy()
    return read_document(path, IncidentPolicy, IncidentPolicyFileError)
