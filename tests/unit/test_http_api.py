"""The api's error mapping: every DevgemError a caller may see answers with its own status, subclasses too."""

from __future__ import annotations

import pytest

from devgem.domain.errors import (
    Conflict,
    DevgemError,
    InvalidEvent,
    InvalidInput,
    NotFound,
    RetryLater,
    Unauthenticated,
)
from devgem.entrypoints.http_api import status_of


class TokenExpired(Unauthenticated):
    """A subclass, as a later feature may add: it must answer like its base, not 500."""


class QuotaExceeded(Conflict):
    pass


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidInput("x"), 400),
        (Unauthenticated("x"), 401),
        (TokenExpired("x"), 401),
        (NotFound("x"), 404),
        (Conflict("x"), 409),
        (QuotaExceeded("x"), 409),
        (RetryLater("x"), 503),
    ],
)
def test_errors_answer_with_their_status(error: DevgemError, status: int) -> None:
    assert status_of(error) == status


@pytest.mark.parametrize("error", [DevgemError("x"), InvalidEvent("x")])
def test_errors_not_meant_for_callers_have_no_status(error: DevgemError) -> None:
    assert status_of(error) is None
