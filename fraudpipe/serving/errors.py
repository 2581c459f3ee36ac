"""The one error type a control raises; the app turns it into a JSON response with that status."""

from __future__ import annotations


class ApiError(Exception):
    def __init__(self, status: int, error: str, reason: str, details: dict | None = None,
                 headers: dict | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.error = error
        self.reason = reason
        self.details = details or {}
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": self.error, "reason": self.reason, **self.details}
