"""Checks on what users type: repository URLs, branches and subdirectories.

These values end up as arguments to git inside Cloud Build and as names in Firestore, so they are
checked against a strict allow-list, not sanitised.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from devgem.domain.errors import InvalidInput

MAX_URL_LENGTH = 512
MAX_BRANCH_LENGTH = 200
MAX_SUBDIR_LENGTH = 200

_URL_ALLOWED = re.compile(r"^[A-Za-z0-9._~:/@%+\-]+$")
_HOST = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_PATH_SEGMENT = re.compile(r"^[A-Za-z0-9._\-]+$")
_REF_COMPONENT_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")

ACCEPTED_URLS = "an https:// URL such as https://github.com/owner/repo, without credentials"


def json_kind(value: object) -> str:
    """How a value reads in the JSON a caller sent, so an error names what they wrote."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def text_field(body: Mapping[str, object], field: str, *, default: str, absent_means: str) -> str:
    """A field that may be left out; present, it must be a string.

    Checking `body.get(field) or default` took `{}`, `[]`, `false`, `0` and `null` as if the field
    were absent, so a caller's mistake silently became a default they never asked for. A present
    field of another type, null included, is refused instead, and the message says how to leave it out.
    """
    if field not in body:
        return default
    value = body[field]
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string, not {json_kind(value)}; leave it out {absent_means}")
    return value


def repo_url(value: object, *, allow_local: bool = False) -> str:
    """Return the URL if git may fetch it, else raise InvalidInput saying what is accepted."""
    accepted = ACCEPTED_URLS + (" (or, locally, an absolute path or file:// URL)" if allow_local else "")
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"repoUrl must be a string, not {json_kind(value)}; use {accepted}")
    if not value:
        raise InvalidInput(f"repoUrl is required: {accepted}")
    if len(value) > MAX_URL_LENGTH:
        raise InvalidInput(f"repoUrl is longer than {MAX_URL_LENGTH} characters")
    if not _URL_ALLOWED.match(value):
        raise InvalidInput(f"repoUrl contains characters that are not allowed in a repository URL; use {accepted}")
    if value.startswith("-"):
        raise InvalidInput(f"repoUrl must not start with '-'; use {accepted}")
    if allow_local and (value.startswith("/") or value.startswith("file:///")):
        path = value.removeprefix("file://")
        if any(part in ("..", "") for part in path.strip("/").split("/")) and path != "/":
            raise InvalidInput("a local repository path must be absolute and normalised (no '..' or '//')")
        return value
    parts = urlsplit(value)
    if parts.scheme != "https":
        raise InvalidInput(f"repoUrl scheme {parts.scheme or '(none)'!r} is not accepted: use {accepted}")
    if parts.username or parts.password or "@" in parts.netloc:
        raise InvalidInput(f"repoUrl must not carry credentials; use {accepted} and connect the repository instead")
    host = parts.hostname or ""
    if not _HOST.match(host) or "." not in host:
        raise InvalidInput(f"repoUrl host {host!r} is not a valid public host name; use {accepted}")
    if parts.query or parts.fragment:
        raise InvalidInput(f"repoUrl must not have a query or fragment; use {accepted}")
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) < 2 or any(not _PATH_SEGMENT.match(s) or s in (".", "..") for s in segments):
        raise InvalidInput(f"repoUrl path must name a repository like /owner/repo; use {accepted}")
    return value


def branch(value: object) -> str:
    """Apply git's check-ref-format rules, plus: no leading '-', so it can never read as an option."""
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"branch must be a string, not {json_kind(value)}, for example 'main'")
    if not value:
        raise InvalidInput("branch is required, for example 'main'")
    problem = _branch_problem(value)
    if problem:
        raise InvalidInput(f"branch {value[:80]!r} is not a valid git branch name: {problem}")
    return value


def _branch_problem(name: str) -> str | None:
    if len(name) > MAX_BRANCH_LENGTH:
        return f"longer than {MAX_BRANCH_LENGTH} characters"
    if name.startswith("-"):
        return "it starts with '-'"
    if name == "@" or "@{" in name:
        return "it contains '@{' or is '@'"
    if ".." in name or "//" in name or name.startswith("/") or name.endswith("/"):
        return "it contains '..' or an empty path component"
    if name.endswith(".") or name.endswith(".lock"):
        return "it ends with '.' or '.lock'"
    if _REF_COMPONENT_FORBIDDEN.search(name):
        return "it contains a space, control character or one of ~ ^ : ? * [ \\"
    for component in name.split("/"):
        if component.startswith(".") or component.endswith(".lock"):
            return "a component starts with '.' or ends with '.lock'"
    return None


def subdirectory(value: object) -> str:
    """A relative path inside the repository, or '' for its root."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"subdirectory must be a string, not {json_kind(value)}, like 'services/web'")
    if len(value) > MAX_SUBDIR_LENGTH:
        raise InvalidInput(f"subdirectory must be a relative path of at most {MAX_SUBDIR_LENGTH} characters")
    parts = value.strip("/").split("/")
    if value.startswith("/") or any(p in ("", ".", "..") or not _PATH_SEGMENT.match(p) for p in parts):
        raise InvalidInput("subdirectory must be a relative path inside the repository, like 'services/web'")
    return "/".join(parts)


def identifier(value: object, what: str) -> str:
    """Ids in paths: our own format only, so nothing odd reaches a Firestore path."""
    if not isinstance(value, str) or not re.fullmatch(r"[a-z0-9]{6,40}", value):
        raise InvalidInput(f"{what} {str(value)[:60]!r} is not a valid id")
    return value
