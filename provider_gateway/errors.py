"""One exception tree; the error middleware renders each as Knock's error body."""

from __future__ import annotations

from typing import Any, ClassVar


class GatewayError(Exception):
    """Base of every error a caller may see: `{code, message, status, type}`."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    type: ClassVar[str] = "api_error"
    default_message: ClassVar[str] = "An unexpected error occurred."

    def __init__(self, message: str | None = None, *, headers: dict[str, str] | None = None):
        self.message = message or self.default_message
        self.headers = headers or {}
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "status": self.status,
            "type": self.type,
        }


class ApiKeyMissing(GatewayError):
    status, code, type = 401, "api_key_missing", "authentication_error"
    default_message = "No valid API key provided"


class InvalidApiKey(GatewayError):
    status, code, type = 401, "invalid_api_key", "authentication_error"
    default_message = "The API key provided is invalid"


class InvalidUserToken(GatewayError):
    status, code, type = 401, "invalid_user_token", "authentication_error"
    default_message = "The user token provided is invalid"


class InvalidSignature(GatewayError):
    status, code, type = 401, "invalid_signature", "authentication_error"
    default_message = "The request signature is missing, wrong or too old"


class Forbidden(GatewayError):
    """The caller is known but may not do this (Knock's `authorization` code)."""

    status, code, type = 403, "authorization", "authentication_error"
    default_message = "You are not authorized to perform this action"


class NotFound(GatewayError):
    status, code, type = 404, "resource_missing", "invalid_request_error"
    default_message = "The resource you requested does not exist"


class MethodNotAllowed(GatewayError):
    status, code, type = 405, "method_not_allowed", "invalid_request_error"
    default_message = "This method is not allowed on this resource"


class PayloadTooLarge(GatewayError):
    status, code, type = 413, "request_too_large", "invalid_request_error"
    default_message = "The request body is too large"


class InvalidParams(GatewayError):
    """Bad input; `errors` names each offending field."""

    status, code, type = 422, "invalid_params", "invalid_request_error"
    default_message = "One or more parameters are invalid"

    def __init__(self, message: str | None = None, *, errors: list[dict[str, str]] | None = None):
        self.errors = errors or []
        if message is None and self.errors:
            message = "; ".join(f"{e['field']}: {e['message']}" for e in self.errors)
        super().__init__(message)

    @classmethod
    def field(cls, field: str, message: str) -> InvalidParams:
        return cls(errors=[{"field": field, "message": message}])

    def body(self) -> dict[str, Any]:
        return {**super().body(), "errors": self.errors}


class RateLimited(GatewayError):
    status, code, type = 429, "rate_limited", "rate_limit_error"
    default_message = "Too many requests; retry after the time in the Retry-After header"

    def __init__(self, retry_after: int, message: str | None = None):
        super().__init__(message, headers={"Retry-After": str(max(1, retry_after))})
        self.retry_after = retry_after


class UpstreamError(GatewayError):
    """The provider (Slack, Entra, Graph) failed or could not be reached."""

    status, code, type = 502, "upstream_error", "api_error"
    default_message = "The provider could not be reached"


class UpstreamTimeout(GatewayError):
    status, code, type = 504, "upstream_timeout", "api_error"
    default_message = "The provider did not answer in time"


class Conflict(GatewayError):
    status, code, type = 409, "conflict", "invalid_request_error"
    default_message = "The resource already exists"


class ServiceUnavailable(GatewayError):
    status, code, type = 503, "service_unavailable", "api_error"
    default_message = "The service is not ready"
