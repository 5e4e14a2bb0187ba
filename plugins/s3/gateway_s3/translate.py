"""botocore's exceptions, turned into the gateway's own errors.

Messages are built from the error *code* and the store's safe description only: never from the
server's free-text message, the request URL or the credentials (S3 servers echo the access key
id and the string to sign in some error bodies).
"""

from __future__ import annotations

from gateway.errors import ConfigError, GatewayError, NotFound, Unavailable

_MISSING_KEY = {"NoSuchKey", "404", "NotFound"}
_MISSING_BUCKET = {"NoSuchBucket"}
_CREDENTIALS = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
    "InvalidClientTokenId",
    "AuthorizationHeaderMalformed",
    "AuthFailure",
    "RequestTimeTooSkewed",
    "InvalidSecurity",
}
_DENIED = {"AccessDenied", "403", "AllAccessDisabled", "AccountProblem"}


def translate(exc: Exception, description: str, what: str = "") -> GatewayError:
    """Return the gateway error for ``exc`` (a botocore exception) raised while using a store.

    ``what`` names the key or folder involved, for ``NotFound`` messages.
    """
    from botocore import exceptions as bx

    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, bx.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _MISSING_KEY:
            return NotFound(f"no file {what!r}" if what else "not found")
        if code in _MISSING_BUCKET:
            return ConfigError(f"{description}: the bucket does not exist")
        if code in _CREDENTIALS:
            return Unavailable(f"{description}: the server refused the credentials ({code})")
        if code in _DENIED:
            return Unavailable(
                f"{description}: access denied (check the credentials and the bucket policy)"
            )
        if code == "SlowDown" or (isinstance(status, int) and status >= 500):
            return Unavailable(f"{description}: the server failed ({code or status})")
        return Unavailable(f"{description}: the server answered {code or status}")
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return Unavailable(
            f"{description}: no S3 credentials found (set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, a profile, or an instance role)"
        )
    if isinstance(exc, bx.ProfileNotFound):
        return ConfigError(f"{description}: the AWS profile in its settings does not exist")
    if isinstance(exc, bx.ConnectTimeoutError):
        return Unavailable(f"{description}: timed out connecting to the server")
    if isinstance(exc, bx.ReadTimeoutError):
        return Unavailable(f"{description}: the server did not answer in time")
    if isinstance(exc, bx.EndpointConnectionError):
        return Unavailable(f"{description}: cannot connect to the server")
    if isinstance(exc, bx.SSLError):
        return Unavailable(f"{description}: TLS failed (certificate or protocol)")
    if isinstance(exc, bx.BotoCoreError):
        return Unavailable(f"{description}: {type(exc).__name__}")
    if isinstance(exc, OSError):
        return Unavailable(f"{description}: {type(exc).__name__}")
    return Unavailable(f"{description}: unexpected {type(exc).__name__}")
