"""The one bound of every identifier, wherever it comes from (a Kafka record, an HTTP request, a console form).

A customer id accepted from Kafka must be one staff can search for over HTTP, so both read these.
"""

MAX_ID_LENGTH = 256
"""Ids, sources, subjects, customer ids, case ids, keys: (source, id) stays far below PostgreSQL's btree row limit."""
NO_CONTROL_CHARACTERS = r"^[^\u0000-\u001f\u007f-\u009f]*$"
"""Identifiers never carry control characters (PostgreSQL refuses NUL; the others only mislead)."""
