"""The OpenLineage run event's rules (spec 2-0-2, ``OpenLineage.json#/$defs/RunEvent``), as a JSON
Schema the tests check every captured event against.

Written from the spec's definitions: an event has ``eventTime`` (date-time), ``producer`` and
``schemaURL`` (URIs), ``eventType`` (START, RUNNING, COMPLETE, ABORT, FAIL or OTHER), a ``run``
with a UUID ``runId``, a ``job`` with ``namespace`` and ``name``, and ``inputs`` and ``outputs``
of datasets with ``namespace`` and ``name``; every facet (run, job, dataset, input and output
facets) carries ``_producer`` and ``_schemaURL``, both URIs.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import jsonschema

_URI = {"type": "string", "format": "uri"}
_FACET = {
    "type": "object",
    "required": ["_producer", "_schemaURL"],
    "properties": {"_producer": _URI, "_schemaURL": _URI},
}
_FACETS = {"type": "object", "additionalProperties": _FACET}
_DATASET = {
    "type": "object",
    "required": ["namespace", "name"],
    "properties": {
        "namespace": {"type": "string", "minLength": 1},
        "name": {"type": "string", "minLength": 1},
        "facets": _FACETS,
        "inputFacets": _FACETS,
        "outputFacets": _FACETS,
    },
}
RUN_EVENT = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["eventTime", "producer", "schemaURL", "run", "job"],
    "properties": {
        "eventType": {"enum": ["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]},
        "eventTime": {"type": "string", "format": "date-time"},
        "producer": _URI,
        "schemaURL": _URI,
        "run": {
            "type": "object",
            "required": ["runId"],
            "properties": {"runId": {"type": "string", "format": "uuid"}, "facets": _FACETS},
        },
        "job": {
            "type": "object",
            "required": ["namespace", "name"],
            "properties": {"namespace": {"type": "string"}, "name": {"type": "string"}, "facets": _FACETS},
        },
        "inputs": {"type": "array", "items": _DATASET},
        "outputs": {"type": "array", "items": _DATASET},
    },
}

FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("uri")
def _uri(value: object) -> bool:
    """An absolute URI: a scheme, and no whitespace (jsonschema checks "uri" only with rfc3987)."""
    return isinstance(value, str) and bool(urlsplit(value).scheme) and not any(c.isspace() for c in value)


def validate(event: dict, schema: dict = RUN_EVENT) -> None:
    """Raise ``jsonschema.ValidationError`` naming the first rule ``event`` breaks."""
    jsonschema.Draft202012Validator(schema, format_checker=FORMATS).validate(event)
