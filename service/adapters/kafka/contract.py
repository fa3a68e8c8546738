"""The wire contract as documents: the JSON Schemas and the AsyncAPI document, built from the wire models and the
domain events. The service serves the AsyncAPI document (/asyncapi); `tools/schemas.py` writes them all to
schemas/ and checks that folder against the code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, TypeAdapter

from service.adapters.kafka.outgoing import (
    CASE_EVENT_CLASSES,
    COMPENSATION_REQUESTED,
    CUSTOMER_ERASED,
    SLA_TYPES,
    SOURCE,
    TREND_TYPE,
    UTC_TIME_PATTERN,
    CompensationRequestData,
    CustomerErasedData,
    IncidentData,
    OutgoingTopics,
    SlaEventData,
    TrendData,
    outgoing_case_type,
)
from service.adapters.kafka.personal_schema import personal_fields, personal_marked
from service.adapters.kafka.results import RESULT_TYPES, CompensationResultData
from service.adapters.kafka.schema_components import inline, schema_path, schema_ref
from service.adapters.kafka.wire import (
    DATA_MODELS,
    EVENT_MODELS,
    JSON_CONTENT_TYPE,
    STRUCTURED_CONTENT_TYPE,
    TYPE_BY_KIND,
    CloudEventAttributes,
    StructuredCloudEvent,
)
from service.config import Settings
from service.domain.signals import SignalKind
from service.tracing import TRACEPARENT_PATTERN

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_BASE_URI = "https://schemas.recovery-loop.example/"  # placeholder host; $id only names the files
ASYNCAPI_VERSION = "3.0.0"
API_VERSION = "1.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
ENVELOPE_PATH = "cloudevent.schema.json"
ASYNCAPI_PATH = "asyncapi.json"
REQUIRED_HEADERS = ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time")
OUTGOING_REQUIRED_HEADERS = (*REQUIRED_HEADERS, "ce_subject", "content-type")
SLA_DATA_PATH = "outgoing/sla.data.schema.json"
COMPENSATION_DATA_PATH = "outgoing/compensation.requested.data.schema.json"
TREND_DATA_PATH = "outgoing/rootcause.trend_detected.data.schema.json"
INCIDENT_DATA_PATH = "outgoing/incident.data.schema.json"
CUSTOMER_ERASED_DATA_PATH = "outgoing/customer.erased.data.schema.json"
RESULT_DATA_PATH = "inbound/compensation.result.data.schema.json"
RESULT_EVENT_PATH = "inbound/compensation.result.event.schema.json"


@dataclass(frozen=True)
class MessageSpec:
    """One message of a channel, as documented in AsyncAPI."""

    id: str
    title: str
    summary: str
    content_type: str
    headers: dict[str, Any]
    payload: dict[str, Any]
    key: dict[str, Any]


@dataclass(frozen=True)
class ChannelSpec:
    """One Kafka topic in AsyncAPI: its address, what this service does with it, and its messages."""

    id: str
    address: str
    action: Literal["send", "receive"]
    operation_id: str
    description: str
    messages: list[MessageSpec] = field(default_factory=list)


def data_schema_path(kind: SignalKind) -> str:
    """Path under schemas/ of a signal kind's data schema."""
    return f"signals/{kind}.data.schema.json"


def event_schema_path(kind: SignalKind) -> str:
    """Path under schemas/ of a signal kind's structured-event schema."""
    return f"signals/{kind}.event.schema.json"


def case_data_schema_path(stored_type: str) -> str:
    """Path under schemas/ of an outgoing case event's data schema, by its stored type (case.opened)."""
    return f"outgoing/{stored_type}.data.schema.json"


# --- JSON Schemas -----------------------------------------------------------------------------------------


def _document(model: type[BaseModel], path: str, **overrides: Any) -> dict[str, Any]:
    return _schema_document(model.model_json_schema(), path, **overrides)


def _schema_document(schema: dict[str, Any], path: str, **overrides: Any) -> dict[str, Any]:
    schema.update(overrides)
    return {"$schema": SCHEMA_DIALECT, "$id": SCHEMA_BASE_URI + path, **schema}


def envelope_schema() -> dict[str, Any]:
    """The CloudEvents 1.0 structured envelope with any JSON object as data."""
    return _document(StructuredCloudEvent[dict[str, Any]], ENVELOPE_PATH, title="CloudEvent")


def data_schema(kind: SignalKind) -> dict[str, Any]:
    """The data schema of one signal kind."""
    return personal_marked(_document(DATA_MODELS[kind], data_schema_path(kind)), outgoing=False)


def event_schema(kind: SignalKind) -> dict[str, Any]:
    """The structured CloudEvent of one signal kind: the envelope with its type fixed and its data."""
    type_ = TYPE_BY_KIND[kind]
    schema = _document(EVENT_MODELS[kind], event_schema_path(kind), title=f"{type_} event")
    schema["description"] = f"A {type_} CloudEvent 1.0 in structured content mode."
    schema["properties"]["type"]["const"] = type_
    return personal_marked(schema, outgoing=False)


def case_data_schema(stored_type: str) -> dict[str, Any]:
    """The data of an outgoing case event: the stored domain event as JSON, `type` always present."""
    type_ = outgoing_case_type(stored_type)
    schema = personal_marked(TypeAdapter(CASE_EVENT_CLASSES[stored_type]).json_schema(mode="serialization"))
    required = set(schema.get("required", [])) | {"type"}
    schema["required"] = [name for name in schema["properties"] if name in required]
    return _schema_document(
        schema,
        case_data_schema_path(stored_type),
        title=f"{type_} data",
        description=(
            f"Data of a {type_} CloudEvent: the stored {stored_type} event. Fields marked x-free-text are null"
            " unless the service is configured to publish free text (RECOVERY_PUBLISH_FREE_TEXT); x-personal-data"
            " marks personal data. Later versions may add fields; consumers ignore those they do not know."
        ),
    )


def sla_data_schema() -> dict[str, Any]:
    """The data of an outgoing SLA warning or breach."""
    schema = SlaEventData.model_json_schema(mode="serialization")
    return _schema_document(schema, SLA_DATA_PATH)


def json_schemas() -> dict[str, dict[str, Any]]:
    """Every JSON Schema document by its path under schemas/."""
    documents = {ENVELOPE_PATH: envelope_schema()}
    for kind in DATA_MODELS:
        documents[data_schema_path(kind)] = data_schema(kind)
        documents[event_schema_path(kind)] = event_schema(kind)
    for stored_type in CASE_EVENT_CLASSES:
        documents[case_data_schema_path(stored_type)] = case_data_schema(stored_type)
    documents[SLA_DATA_PATH] = sla_data_schema()
    documents[COMPENSATION_DATA_PATH] = _schema_document(
        personal_marked(CompensationRequestData.model_json_schema(mode="serialization"), outgoing=False),
        COMPENSATION_DATA_PATH,
    )
    documents[CUSTOMER_ERASED_DATA_PATH] = _schema_document(
        personal_marked(CustomerErasedData.model_json_schema(mode="serialization"), outgoing=False),
        CUSTOMER_ERASED_DATA_PATH,
    )
    documents[TREND_DATA_PATH] = _schema_document(
        TrendData.model_json_schema(mode="serialization"), TREND_DATA_PATH
    )
    documents[INCIDENT_DATA_PATH] = _schema_document(
        IncidentData.model_json_schema(mode="serialization"), INCIDENT_DATA_PATH
    )
    documents[RESULT_DATA_PATH] = _schema_document(
        CompensationResultData.model_json_schema(mode="validation"), RESULT_DATA_PATH
    )
    documents[RESULT_EVENT_PATH] = result_event_schema()
    return documents


# What billing's answers carry, as decode_result reads them (decode_event: either mode, the signal envelope's
# bounds; subject and the record key are never read).
RESULT_ATTRIBUTES = {
    "id": "Billing's own event id; (source, id) should be unique per answer, and stable when it is re-sent.",
    "source": "Billing's URI-reference, e.g. /billing.",
    "type": "The answer: recovery.compensation.settled or recovery.compensation.failed.",
    "time": "When billing decided: RFC 3339 with an offset, from 1970-01-01T00:00:00Z up to (not including)"
    " 2100-01-01T00:00:00Z.",
    "subject": "Optional and not read; the case id (data.case_id of the request) is a good choice.",
}
RESULT_KEY_DESCRIPTION = (
    "Optional and not read by the service: any key, or none. Recommended: data.request_id, so that every"
    " answer to one request stays in order on one partition."
)


def result_event_schema() -> dict[str, Any]:
    """Billing's answer as a structured CloudEvent: the envelope, a result type, and the result data."""
    schema = _document(
        StructuredCloudEvent[CompensationResultData], RESULT_EVENT_PATH, title="Compensation result event"
    )
    schema["description"] = (
        f"A {' or '.join(RESULT_TYPES)} CloudEvent 1.0 in structured content mode, from billing."
    )
    schema["properties"]["type"]["enum"] = list(RESULT_TYPES)
    for name, description in RESULT_ATTRIBUTES.items():
        schema["properties"][name]["description"] = description
    return schema


# --- AsyncAPI ---------------------------------------------------------------------------------------------


def _header_property(schema: dict[str, Any]) -> dict[str, Any]:
    """A header's schema from a model property: no title or default, and never null."""
    branches = [branch for branch in schema.get("anyOf", []) if branch != {"type": "null"}]
    merged = {**(branches[0] if len(branches) == 1 else {}), **schema}
    return {name: value for name, value in merged.items() if name not in ("anyOf", "title", "default")}


def binary_headers(type_: str) -> dict[str, Any]:
    """Schema of the Kafka headers of a binary-mode CloudEvent of the given type."""
    attributes = CloudEventAttributes.model_json_schema()["properties"]
    properties = {
        f"ce_{name}": _header_property(schema)
        for name, schema in attributes.items()
        if name != "datacontenttype"
    }
    properties["ce_type"]["const"] = type_
    properties["content-type"] = {
        "type": "string",
        "description": f"{JSON_CONTENT_TYPE} (or absent): data is the record value.",
    }
    return {"type": "object", "required": list(REQUIRED_HEADERS), "properties": properties}


def _customer_key() -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "description": "The customer id (equals data.customer_id)."}


def signal_channel(kind: SignalKind, topic: str) -> ChannelSpec:
    """The inbound channel of one signal kind, accepting binary and structured CloudEvents."""
    type_, name = TYPE_BY_KIND[kind], kind.value.capitalize()
    binary = MessageSpec(
        id=f"{kind}Signal",
        title=f"{type_} (binary mode)",
        summary=f"A {type_} CloudEvent: attributes in ce_* headers, the record value is data.",
        content_type=JSON_CONTENT_TYPE,
        headers=binary_headers(type_),
        payload=schema_ref(data_schema_path(kind)),
        key=_customer_key(),
    )
    structured = MessageSpec(
        id=f"{kind}SignalStructured",
        title=f"{type_} (structured mode)",
        summary=f"A {type_} CloudEvent: the record value is the whole event in the JSON format.",
        content_type=STRUCTURED_CONTENT_TYPE,
        headers={
            "type": "object",
            "required": ["content-type"],
            "properties": {"content-type": {"type": "string", "const": STRUCTURED_CONTENT_TYPE}},
        },
        payload=schema_ref(event_schema_path(kind)),
        key=_customer_key(),
    )
    return ChannelSpec(
        id=f"{kind}Signals",
        address=topic,
        action="receive",
        operation_id=f"receive{name}Signal",
        description=f"Inbound {type_} CloudEvents (default topic name; configurable).",
        messages=[binary, structured],
    )


def dlq_channel(topic: str) -> ChannelSpec:
    """The dead-letter channel: refused records, unchanged, with why and where they came from."""
    headers = {
        "type": "object",
        "required": ["dlq_reason", "dlq_topic", "dlq_partition", "dlq_offset"],
        "description": "The original headers, unchanged, plus the dlq_* headers.",
        "properties": {
            "dlq_reason": {"type": "string", "description": "Why the record was refused (no customer text)."},
            "dlq_topic": {"type": "string", "description": "The topic the record was read from."},
            "dlq_partition": {"type": "string", "pattern": "^[0-9]+$", "description": "Its partition."},
            "dlq_offset": {"type": "string", "pattern": "^[0-9]+$", "description": "Its offset."},
        },
    }
    message = MessageSpec(
        id="deadLetter",
        title="Dead-lettered signal",
        summary="A signal record that could not be parsed or failed its schema.",
        content_type="application/octet-stream",
        headers=headers,
        payload={"description": "The original record value, byte for byte (it may not be JSON)."},
        key={"description": "The original record key, unchanged."},
    )
    return ChannelSpec(
        id="signalsDeadLetter",
        address=topic,
        action="send",
        operation_id="sendDeadLetter",
        description="Signal records refused by the service, for inspection and replay.",
        messages=[message],
    )


def outgoing_headers(
    type_: str, id_description: str, time_description: str, subject_description: str = "The case id."
) -> dict[str, Any]:
    """Schema of the Kafka headers of an outgoing binary-mode CloudEvent of the given type."""
    properties = {
        "ce_specversion": {
            "type": "string",
            "const": "1.0",
            "description": "The CloudEvents specification version, always 1.0.",
        },
        "ce_id": {"type": "string", "minLength": 1, "description": id_description},
        "ce_source": {
            "type": "string",
            "minLength": 1,
            "description": f"This service: {SOURCE} unless configured otherwise.",
        },
        "ce_type": {"type": "string", "const": type_, "description": "The event type."},
        "ce_time": {
            "type": "string",
            "format": "date-time",
            "pattern": UTC_TIME_PATTERN,
            "description": time_description,
        },
        "ce_subject": {"type": "string", "minLength": 1, "description": subject_description},
        "content-type": {
            "type": "string",
            "const": JSON_CONTENT_TYPE,
            "description": "data is the record value, as JSON.",
        },
        "ce_traceparent": {
            "type": "string",
            "pattern": TRACEPARENT_PATTERN,
            "description": "CloudEvents distributed-tracing extension, present when what caused the event"
            " carried trace context: the W3C traceparent of the signal (its ce_traceparent header or"
            " traceparent attribute), of billing's answer, or of the HTTP command (this service's span for the"
            " request when tracing is on, else the request's traceparent header). Continue that trace from it.",
        },
    }
    return {"type": "object", "required": list(OUTGOING_REQUIRED_HEADERS), "properties": properties}


def _case_key() -> dict[str, Any]:
    return {
        "type": "string",
        "minLength": 1,
        "description": "The case id (equals ce_subject and data.case_id).",
    }


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def case_events_channel(topic: str) -> ChannelSpec:
    """The outgoing channel of every case domain event, one message per type that exists now."""
    messages = []
    for stored_type in CASE_EVENT_CLASSES:
        type_ = outgoing_case_type(stored_type)
        messages.append(
            MessageSpec(
                id=f"case{_camel(stored_type.removeprefix('case.'))}",
                title=f"{type_} (binary mode)",
                summary=f"A {type_} CloudEvent: attributes in ce_* headers, the record value is data.",
                content_type=JSON_CONTENT_TYPE,
                headers=outgoing_headers(
                    type_,
                    "The event's id in the event log; a re-publish repeats it, so consumers drop repeats.",
                    "When the service decided the event (data.at), RFC 3339 in UTC.",
                ),
                payload=schema_ref(case_data_schema_path(stored_type)),
                key=_case_key(),
            )
        )
    messages.append(
        MessageSpec(
            id="customerErased",
            title=f"{CUSTOMER_ERASED} (binary mode)",
            summary="A customer's personal data was erased: erase what you hold about them. Published once, after"
            " every case event of theirs, keyed by their latest case.",
            content_type=JSON_CONTENT_TYPE,
            headers=outgoing_headers(
                CUSTOMER_ERASED,
                "Derived from the erasure's event id: a re-publish repeats it.",
                "When the data was erased (data.erased_at), RFC 3339 in UTC.",
            ),
            payload=schema_ref(CUSTOMER_ERASED_DATA_PATH),
            key=_case_key(),
        )
    )
    return ChannelSpec(
        id="caseEvents",
        address=topic,
        action="send",
        operation_id="sendCaseEvent",
        description=(
            "Every case domain event as a recovery.case.* CloudEvent (binary mode), in order per case."
            " Later versions add types; consumers ignore the types they do not know."
        ),
        messages=messages,
    )


def sla_channel(topic: str) -> ChannelSpec:
    """The outgoing channel of SLA warnings and breaches."""
    messages = [
        MessageSpec(
            id=f"sla{_camel(type_.removeprefix('recovery.sla.'))}",
            title=f"{type_} (binary mode)",
            summary=f"A {type_} CloudEvent: attributes in ce_* headers, the record value is data.",
            content_type=JSON_CONTENT_TYPE,
            headers=outgoing_headers(
                type_,
                "One id per case, SLA, kind and deadline; a repeat is the same warning or breach.",
                "When the service decided the warning or breach (data.fired_at), RFC 3339 in UTC.",
            ),
            payload=schema_ref(SLA_DATA_PATH),
            key=_case_key(),
        )
        for type_, _ in SLA_TYPES.values()
    ]
    return ChannelSpec(
        id="sla",
        address=topic,
        action="send",
        operation_id="sendSlaEvent",
        description="SLA warnings and breaches of open cases as recovery.sla.* CloudEvents (binary mode).",
        messages=messages,
    )


def compensation_channel(topic: str) -> ChannelSpec:
    """Requests to billing: one recovery.compensation.requested per request id, ever."""
    message = MessageSpec(
        id="compensationRequested",
        title=f"{COMPENSATION_REQUESTED} (binary mode)",
        summary="Billing is asked to refund, credit or comp; request_id is its idempotency key.",
        content_type=JSON_CONTENT_TYPE,
        headers=outgoing_headers(
            COMPENSATION_REQUESTED,
            "Derived from request_id: a repeat of the same request has the same id.",
            "When the request went out (requested within limits, or approved).",
        ),
        payload=schema_ref(COMPENSATION_DATA_PATH),
        key=_case_key(),
    )
    return ChannelSpec(
        id="compensationRequests",
        address=topic,
        action="send",
        operation_id="sendCompensationRequest",
        description="Compensation requests for billing and credit services (binary mode).",
        messages=[message],
    )


def result_headers(type_: str) -> dict[str, Any]:
    """Headers of billing's binary-mode answer: the envelope decode_result requires; subject optional."""
    headers = binary_headers(type_)
    for name, description in RESULT_ATTRIBUTES.items():
        headers["properties"][f"ce_{name}"]["description"] = description
    return headers


def compensation_results_channel(topic: str) -> ChannelSpec:
    """Billing's answers, settled or failed, naming the request id, in either content mode."""
    messages = []
    for type_ in RESULT_TYPES:
        outcome = type_.rsplit(".", 1)[-1]
        name = f"compensation{_camel(outcome)}"
        key = {"type": "string", "description": RESULT_KEY_DESCRIPTION}
        messages.append(
            MessageSpec(
                id=name,
                title=f"{type_} (binary mode)",
                summary=f"Billing's {outcome} answer: attributes in ce_* headers, the record value is data.",
                content_type=JSON_CONTENT_TYPE,
                headers=result_headers(type_),
                payload=schema_ref(RESULT_DATA_PATH),
                key=key,
            )
        )
        messages.append(
            MessageSpec(
                id=f"{name}Structured",
                title=f"{type_} (structured mode)",
                summary=f"Billing's {outcome} answer: the record value is the whole event in the JSON format.",
                content_type=STRUCTURED_CONTENT_TYPE,
                headers={
                    "type": "object",
                    "required": ["content-type"],
                    "properties": {"content-type": {"type": "string", "const": STRUCTURED_CONTENT_TYPE}},
                },
                payload=schema_ref(RESULT_EVENT_PATH),
                key=key,
            )
        )
    return ChannelSpec(
        id="compensationResults",
        address=topic,
        action="receive",
        operation_id="receiveCompensationResult",
        description="Settled or failed answers from billing, in binary or structured mode; they land on the"
        " case that asked. An answer that cannot be read, or names no known request, goes to the dead-letter"
        " topic.",
        messages=messages,
    )


def trends_channel(topic: str) -> ChannelSpec:
    """Root-cause trends, once per crossing of the threshold."""
    message = MessageSpec(
        id="rootcauseTrendDetected",
        title=f"{TREND_TYPE} (binary mode)",
        summary="Enough recently resolved cases share a root-cause tag within the configured trend window;"
        " published once per crossing: again only after the tag fell below the threshold (cases left the"
        " window or were reopened) and crossed it anew. Falling below publishes nothing.",
        content_type=JSON_CONTENT_TYPE,
        headers=outgoing_headers(
            TREND_TYPE,
            "The stored trend event's id.",
            "When the threshold was crossed.",
            "The root-cause tag, not a case id (equals the record key and data.tag).",
        ),
        payload=schema_ref(TREND_DATA_PATH),
        key={
            "type": "string",
            "minLength": 1,
            "description": "The root-cause tag (equals ce_subject and data.tag).",
        },
    )
    return ChannelSpec(
        id="trends",
        address=topic,
        action="send",
        operation_id="sendTrend",
        description="Root-cause trends detected across resolved cases (binary mode).",
        messages=[message],
    )


_INCIDENT_SUMMARIES = {
    "incident.proposed": "A surge rule that proposes crossed: many distinct customers of one scope within its window."
    " A manager confirms (then incident.declared follows) or dismisses it.",
    "incident.declared": "An incident is declared: by a surge rule that declares (data.detection says why), by a"
    " manager, or a proposal confirmed (data.declared_by names the manager). One open incident per scope.",
    "incident.dismissed": "A manager dismissed the incident as a false alarm (data.reason says why): nothing more"
    " links to it, and its scope may open a new incident.",
}


def incidents_channel(topic: str) -> ChannelSpec:
    """Every incident event, keyed by the incident id."""
    messages = [
        MessageSpec(
            id=f"incident{stored.split('.')[1].capitalize()}",
            title=f"recovery.{stored} (binary mode)",
            summary=summary,
            content_type=JSON_CONTENT_TYPE,
            headers=outgoing_headers(
                f"recovery.{stored}",
                "The stored incident event's id.",
                "When it happened.",
                "The incident id (equals the record key and data.incident_id).",
            ),
            payload=schema_ref(INCIDENT_DATA_PATH),
            key={"type": "string", "minLength": 1, "description": "The incident id (equals ce_subject)."},
        )
        for stored, summary in _INCIDENT_SUMMARIES.items()
    ]
    return ChannelSpec(
        id="incidents",
        address=topic,
        action="send",
        operation_id="sendIncident",
        description="Incidents: a surge of customers failing in one scope, seen and worked as one (binary mode).",
        messages=messages,
    )


def channel_specs(settings: Settings | None = None) -> list[ChannelSpec]:
    """Every channel in the AsyncAPI document: signals in, dead letters, case and SLA events out, at the topics
    the settings name (the service serves its own); without settings, at the declared defaults (schemas/)."""
    topics = settings or Settings.model_construct()  # declared defaults only, no environment
    outgoing = OutgoingTopics.from_settings(topics)
    return [
        *(signal_channel(kind, topic) for topic, kind in topics.signal_topics().items()),
        dlq_channel(topics.topic_dlq),
        case_events_channel(outgoing.case_events),
        sla_channel(outgoing.sla),
        compensation_channel(outgoing.compensation),
        trends_channel(outgoing.trends),
        incidents_channel(outgoing.incidents),
        compensation_results_channel(topics.topic_compensation_results),
    ]


def _message(spec: MessageSpec, schemas: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The message; `x-personal-data` lists the payload's personal fields (marked in its schema too)."""
    payload = schemas.get(schema_path(spec.payload["$ref"])) if "$ref" in spec.payload else None
    personal = {"x-personal-data": personal_fields(payload)} if payload and personal_fields(payload) else {}
    return {
        **personal,
        "name": spec.id,
        "title": spec.title,
        "summary": spec.summary,
        "contentType": spec.content_type,
        "headers": spec.headers,
        "payload": spec.payload,
        "bindings": {"kafka": {"key": spec.key, "bindingVersion": KAFKA_BINDING_VERSION}},
    }


def _channel(spec: ChannelSpec) -> dict[str, Any]:
    return {
        "address": spec.address,
        "description": spec.description,
        "messages": {
            message.id: {"$ref": f"#/components/messages/{message.id}"} for message in spec.messages
        },
        "bindings": {"kafka": {"topic": spec.address, "bindingVersion": KAFKA_BINDING_VERSION}},
    }


def _operation(spec: ChannelSpec) -> dict[str, Any]:
    return {
        "action": spec.action,
        "channel": {"$ref": f"#/channels/{spec.id}"},
        "messages": [{"$ref": f"#/channels/{spec.id}/messages/{message.id}"} for message in spec.messages],
    }


def asyncapi(specs: Sequence[ChannelSpec]) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document of the given channels, self-contained: the payload schemas are inlined."""
    messages = [m for spec in specs for m in spec.messages]
    payloads = [schema_path(m.payload["$ref"]) for m in messages if "$ref" in m.payload]
    schemas = json_schemas()
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Recovery Loop",
            "version": API_VERSION,
            "description": (
                "Customer failure signals in as CloudEvents 1.0 (binary or structured mode);"
                " case and SLA events out as CloudEvents 1.0 in binary mode."
            ),
        },
        "defaultContentType": JSON_CONTENT_TYPE,
        "servers": {
            "kafka": {
                "host": "localhost:9092",
                "protocol": "kafka",
                "description": "Placeholder; set per environment with RECOVERY_KAFKA_BOOTSTRAP_SERVERS.",
            }
        },
        "channels": {spec.id: _channel(spec) for spec in specs},
        "operations": {spec.operation_id: _operation(spec) for spec in specs},
        "components": {
            "messages": {m.id: _message(m, schemas) for m in messages},
            "schemas": inline(schemas, payloads),
        },
    }


def render(document: dict[str, Any]) -> str:
    """Deterministic JSON text: sorted keys, 2-space indent, trailing newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
