"""The public wire contract over HTTP: /asyncapi.json, and /asyncapi, a page rendered here from that document.

The page is built once, when the router is made: no user input reaches it, and it loads nothing from
elsewhere (no script, no stylesheet, no font; a Content-Security-Policy says so to the browser).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from html import escape
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
DIRECTIONS = {
    "receive": "in: you publish, the service consumes",
    "send": "out: the service publishes, you consume",
}
_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#1b1b1b}
table{border-collapse:collapse;margin:.5rem 0 1rem;width:100%}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f2f2f2}code,pre{font:13px/1.4 ui-monospace,monospace}
pre{background:#f7f7f7;padding:.75rem;overflow:auto}section{margin-bottom:2.5rem}
.in{color:#0b5394}.out{color:#38761d}
"""
Schema = Mapping[str, Any]


def asyncapi_router(document_text: str) -> APIRouter:
    """GET /asyncapi.json (the document, byte for byte) and GET /asyncapi (the page); both public."""
    page = render_page(json.loads(document_text))
    router = APIRouter()

    @router.get("/asyncapi.json", include_in_schema=False)
    async def asyncapi_json() -> Response:
        return Response(document_text, media_type="application/json")

    @router.get("/asyncapi", include_in_schema=False)
    async def asyncapi_page() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": PAGE_POLICY})

    return router


def render_page(document: Schema) -> str:
    """The whole page: the channels with their messages, then every schema once; all text escaped."""
    info = document.get("info", {})
    messages = document.get("components", {}).get("messages", {})
    schemas = document.get("components", {}).get("schemas", {})
    channels = document.get("channels", {})
    actions = {
        op["channel"]["$ref"].rsplit("/", 1)[-1]: op["action"] for op in document["operations"].values()
    }
    title = f"{info.get('title', '')} {info.get('version', '')} — topics and messages"
    body = [
        f"<h1>{_e(title)}</h1>",
        f"<p>{_e(info.get('description', ''))}</p>",
        '<p>Machine-readable: <a href="/asyncapi.json">/asyncapi.json</a> (AsyncAPI '
        f"{_e(document.get('asyncapi', ''))}). Topic names are the defaults; each is configurable.</p>",
        _channel_index(channels, actions),
        *(_channel(cid, channel, actions.get(cid, ""), messages) for cid, channel in channels.items()),
        _schema_section(_payload_names(messages), schemas),
    ]
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>{''.join(body)}</body></html>"
    )


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _anchor(kind: str, name: str) -> str:
    return f"{kind}-{re.sub(r'[^A-Za-z0-9_-]', '-', name)}"


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _direction(action: str) -> str:
    css = "in" if action == "receive" else "out"
    return f'<span class="{css}">{_e(DIRECTIONS.get(action, action))}</span>'


def _channel_index(channels: Schema, actions: Mapping[str, str]) -> str:
    rows = "".join(
        f'<tr><td><a href="#{_anchor("channel", cid)}"><code>{_e(channel["address"])}</code></a></td>'
        f"<td>{_direction(actions.get(cid, ''))}</td>"
        f"<td>{', '.join(f'<code>{_e(m)}</code>' for m in channel.get('messages', {}))}</td></tr>"
        for cid, channel in channels.items()
    )
    return f"<h2>Topics</h2><table><tr><th>topic</th><th>direction</th><th>messages</th></tr>{rows}</table>"


def _channel(cid: str, channel: Schema, action: str, messages: Schema) -> str:
    names = [_ref_name(ref["$ref"]) for ref in channel.get("messages", {}).values()]
    return (
        f'<section id="{_anchor("channel", cid)}"><h2><code>{_e(channel["address"])}</code></h2>'
        f"<p>{_direction(action)}. {_e(channel.get('description', ''))}</p>"
        + "".join(_message(name, messages[name]) for name in names)
        + "</section>"
    )


def _message(name: str, message: Schema) -> str:
    key = message.get("bindings", {}).get("kafka", {}).get("key", {})
    payload_ref = message.get("payload", {}).get("$ref", "")
    schema_name = _ref_name(payload_ref)
    payload = (
        f'<a href="#{_anchor("schema", schema_name)}"><code>{_e(schema_name)}</code></a>'
        if payload_ref
        else _e(message.get("payload", {}).get("description", ""))
    )
    return (
        f'<h3 id="{_anchor("message", name)}">{_e(message.get("title", name))}</h3>'
        f"<p><code>{_e(name)}</code>: {_e(message.get('summary', ''))}</p>"
        f"<p>Content type <code>{_e(message.get('contentType', ''))}</code>. Payload: {payload}.</p>"
        f"<p>Record key: {_e(_type_of(key))}. {_e(key.get('description', ''))}</p>"
        f"<h4>Headers</h4>{_properties_table(message.get('headers', {}), 'header')}"
    )


def _payload_names(messages: Schema) -> list[str]:
    refs = [m.get("payload", {}).get("$ref", "") for m in messages.values()]
    return list(dict.fromkeys(_ref_name(ref) for ref in refs if ref))


def _schema_section(payloads: list[str], schemas: Mapping[str, Schema]) -> str:
    """The payload schemas first, in the order of the messages, then the definitions they share."""
    parts = ["<section><h2>Payload schemas</h2>"]
    shared = [name for name in schemas if name not in payloads]
    for name in [*payloads, *shared]:
        schema = schemas.get(name, {})
        parts.append(
            f'<h3 id="{_anchor("schema", name)}"><code>{_e(name)}</code></h3>'
            f"<p>{_e(schema.get('title', ''))}. {_e(schema.get('description', ''))}</p>"
            f"{_properties_table(schema, 'field')}"
            f"<details><summary>JSON Schema</summary><pre>{_e(json.dumps(schema, indent=2, sort_keys=True))}"
            "</pre></details>"
        )
    return "".join(parts) + "</section>"


def _properties_table(schema: Schema, what: str) -> str:
    required = set(schema.get("required", []))
    rows = "".join(
        f"<tr><td><code>{_e(name)}</code></td><td>{'yes' if name in required else 'no'}</td>"
        f"<td>{_e(_type_of(prop))}</td><td>{_e(prop.get('description', ''))}</td></tr>"
        for name, prop in schema.get("properties", {}).items()
    )
    if not rows:
        return f"<p>{_e(schema.get('description', 'No fixed fields.'))}</p>"
    return f"<table><tr><th>{what}</th><th>required</th><th>type</th><th>description</th></tr>{rows}</table>"


def _type_of(schema: Schema) -> str:
    """A one-line reading of a property's schema: its type and its bounds."""
    if "$ref" in schema:
        return _ref_name(schema["$ref"])
    if "anyOf" in schema:
        options = [_type_of(option) for option in schema["anyOf"] if option.get("type") != "null"]
        nullable = any(option.get("type") == "null" for option in schema["anyOf"])
        return " or ".join(options) + (" or null" if nullable else "")
    text = str(schema.get("type", "any"))
    if schema.get("type") == "array" and "items" in schema:
        text = f"array of {_type_of(schema['items'])}"
    if "const" in schema:
        text += f" = {json.dumps(schema['const'])}"
    if "enum" in schema:
        text += f", one of {', '.join(json.dumps(v) for v in schema['enum'])}"
    bounds = ("format", "minLength", "maxLength", "minimum", "maximum", "minItems", "maxItems", "pattern")
    extras = [f"{name} {schema[name]}" for name in bounds if name in schema]
    return text + (f" ({'; '.join(extras)})" if extras else "")
