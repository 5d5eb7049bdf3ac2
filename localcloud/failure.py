"""The one way a build step says "this build failed, and here is why, in words a user can act on"."""

from __future__ import annotations


class BuildFailure(Exception):
    """failure_type: a Build.FailureInfo.FailureType name (FETCH_SOURCE_FAILED, USER_BUILD_STEP...)."""

    def __init__(self, failure_type: str, detail: str) -> None:
        super().__init__(detail)
        self.failure_type = failure_type
        self.detail = detail
