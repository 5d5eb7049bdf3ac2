"""Cloud Build's list filter (``tags="dep-abc" AND status="WORKING"``), the part Devgem relies on.

Devgem finds the build an interrupted attempt already submitted by its deployment tag, so tags must
match exactly; a field this does not know is INVALID_ARGUMENT rather than silently ignored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from google.cloud.devtools import cloudbuild_v1

from localcloud.rest import ApiError

Build = cloudbuild_v1.Build

_TERM = re.compile(r'\s*([\w.]+)\s*(!=|=)\s*("(?:[^"\\]|\\.)*"|[^\s()"]+)\s*')
_FIELDS = ("tags", "status", "build_id", "id", "project_id", "trigger_id", "build_trigger_id", "images")


def compile_filter(text: str) -> Callable[[Build], bool]:
    """A predicate for Cloud Build's list filter: field=value terms joined by AND / OR (AND first).

    Supported fields: tags, status, build_id (or id), project_id, trigger_id, images; quoting optional.
    """
    text = text.strip()
    if not text:
        return lambda b: True
    alternatives: list[list[tuple[str, str, str]]] = []
    for part in re.split(r"\s+OR\s+", text):
        terms = []
        for term in re.split(r"\s+AND\s+", part):
            m = _TERM.fullmatch(term)
            if not m:
                raise ApiError("INVALID_ARGUMENT", f"cannot parse filter term {term!r}")
            fld, op, value = m.groups()
            if fld not in _FIELDS:
                raise ApiError("INVALID_ARGUMENT", f"filter field {fld!r} is not supported; use one of {_FIELDS}")
            if value.startswith('"'):
                value = json.loads(value)
            terms.append((fld, op, value))
        alternatives.append(terms)

    def field_values(b: Build, fld: str) -> list[str]:
        if fld == "tags":
            return list(b.tags)
        if fld == "images":
            return list(b.images)
        if fld == "status":
            return [b.status.name]
        if fld in ("build_id", "id"):
            return [b.id]
        if fld in ("trigger_id", "build_trigger_id"):
            return [b.build_trigger_id]
        return [b.project_id]

    def match(b: Build) -> bool:
        return any(all((v in field_values(b, f)) == (op == "=") for f, op, v in terms) for terms in alternatives)

    return match
