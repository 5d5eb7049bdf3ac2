"""Checks on what users type: repository URLs, branches and subdirectories.

These values end up as arguments to git inside Cloud Build and as names in Firestore, so they are
checked against a strict allow-list, not sanitised.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Mapping
from urllib.parse import urlsplit

from devgem.domain.errors import InvalidInput

MAX_URL_LENGTH = 512
MAX_BRANCH_LENGTH = 200
MAX_SUBDIR_LENGTH = 200

_URL_ALLOWED = re.compile(r"^[A-Za-z0-9._~:/@%+\-\[\]]+$")
_HOST = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_PATH_SEGMENT = re.compile(r"^[A-Za-z0-9._\-]+$")
_REF_COMPONENT_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
# A last label like this makes the host an IPv4 address in URL parsers and in git's resolver
# (inet_aton): 2852039166, 0xa9fea9fe, 0251.0376.0251.0376 and 169.254.43518 all mean 169.254.169.254.
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_METADATA_ADDRESS = ipaddress.IPv4Address("169.254.169.254")

ACCEPTED_URLS = "an https:// URL such as https://github.com/owner/repo, without credentials"

DEFAULT_GIT_HOSTS: tuple[str, ...] = ("github.com", "gitlab.com", "bitbucket.org")
GIT_HOSTS_SETTING = "DEVGEM_GIT_HOSTS"

# Names that only mean something inside a network (RFC 6761, 6762, 8375, ICANN's .internal):
# whatever they resolve to from a build worker is never a tenant's public repository.
_INTERNAL_NAMES = {"localhost": "loopback", "metadata": "the cloud metadata server"}
_INTERNAL_SUFFIXES = {
    "localhost": "loopback",
    "internal": "a private network name, like the metadata server's",
    "local": "a multicast DNS name",
    "localdomain": "a local network name",
    "home.arpa": "a home network name",
    "lan": "a local network name",
    "intranet": "a private network name",
    "corp": "a private network name",
    "home": "a home network name",
    "arpa": "a reverse-lookup name",
}


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


def repo_url(value: object, *, allow_local: bool = False, git_hosts: Collection[str] = DEFAULT_GIT_HOSTS) -> str:
    """Return the URL if git may fetch it, else raise InvalidInput saying what is accepted.

    The URL is fetched by Cloud Build inside Google's network, where the metadata server
    (169.254.169.254, metadata.google.internal) and private addresses are reachable: a URL that
    points there turns a build into a request forgery whose answer lands in the build log the
    tenant reads. Refusing internal names and addresses is not enough on its own, since any public
    name can resolve to an internal address and the check cannot see DNS; so only the hosts named
    in DEVGEM_GIT_HOSTS are fetched (`git_hosts`). Internal hosts and IP literals are refused even
    if that setting lists them. `allow_local` (local development) adds absolute paths and file://
    URLs only; https URLs get the same checks in both modes, so the local stack exercises them.
    """
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
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(f"repoUrl is not a valid URL ({exc}); use {accepted}") from exc
    if parts.scheme != "https":
        raise InvalidInput(f"repoUrl scheme {parts.scheme or '(none)'!r} is not accepted: use {accepted}")
    # Before the host: in https://github.com@169.254.169.254/ the host is the part after the '@'.
    if parts.username or parts.password or "@" in parts.netloc:
        raise InvalidInput(f"repoUrl must not carry credentials; use {accepted} and connect the repository instead")
    _check_host(parts.hostname or "", parts.netloc.startswith("["), git_hosts)
    if port not in (None, 443) or parts.netloc.endswith(":"):
        raise InvalidInput(f"repoUrl must not name a port; use {accepted}")
    if parts.query or parts.fragment:
        raise InvalidInput(f"repoUrl must not have a query or fragment; use {accepted}")
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) < 2 or any(not _PATH_SEGMENT.match(s) or s in (".", "..") for s in segments):
        raise InvalidInput(f"repoUrl path must name a repository like /owner/repo; use {accepted}")
    return value


def _check_host(host: str, bracketed: bool, git_hosts: Collection[str]) -> None:
    allowed = ", ".join(git_hosts) or "no host"
    hint = f"Devgem builds from https:// repositories on {allowed} ({GIT_HOSTS_SETTING})"
    if not host:
        raise InvalidInput(f"repoUrl names no host; {hint}")
    internal = _internal_reason(host, bracketed)
    if internal:
        raise InvalidInput(f"repoUrl host {host!r} is {internal}, which Devgem never fetches; {hint}")
    if not _HOST.match(host):
        raise InvalidInput(f"repoUrl host {host!r} is not a valid public host name; {hint}")
    if host not in git_hosts:
        raise InvalidInput(f"repoUrl host {host!r} is not allowed; {hint}")


def _internal_reason(host: str, bracketed: bool) -> str | None:
    """Why a host is internal, or None: for the refusal to say what it caught."""
    if bracketed:
        return _address_reason(host)
    if all(_NUMERIC_LABEL.match(label) for label in host.split(".")):
        return _address_reason(host)
    if host in _INTERNAL_NAMES:
        return f"internal ({_INTERNAL_NAMES[host]})"
    for suffix, why in _INTERNAL_SUFFIXES.items():
        if host == suffix or host.endswith("." + suffix):
            return f"internal ({why})"
    if "." not in host.strip("."):
        return "internal (a single-label name only resolves inside a network)"
    return None


def _address_reason(host: str) -> str:
    """Every IP literal is refused (git hosts are named); this only says which range it is in."""
    address = _ip_literal(host)
    if address is None:
        return "an IP address literal"
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    if mapped is not None:
        return f"an IP address ({mapped} inside IPv6, {_range(mapped)})"
    return f"an IP address ({_range(address)})"


def _range(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if address == _METADATA_ADDRESS:
        return "link-local: the cloud metadata server"
    for label, test in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("not globally routable", not address.is_global),
    ):
        if test:
            return label
    return "public, but not a named git host"


def _ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host names, read the way inet_aton reads it (what git's resolver does)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    labels = host.split(".")
    if len(labels) > 4 or not all(_NUMERIC_LABEL.match(label) for label in labels):
        return None
    try:
        numbers = [
            int(label, 0) if label.startswith("0x") else int(label, 8 if label[:1] == "0" else 10) for label in labels
        ]
    except ValueError:
        return None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for i, n in enumerate(head):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


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
