"""Typed errors. Each carries a stable machine-readable ``code`` and a human message.

The HTTP status for each family lives in one place: ``imagerec.http.api``.
"""

from __future__ import annotations

import math

# Characters of a client's value an error message repeats: enough to recognise it, never
# a megabyte of it in a log line or a response.
SHOWN_CHARS = 40


def shown(value: object) -> str:
    """A client's value as an error message echoes it: its repr, cut to a short prefix."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


class ImagerecError(Exception):
    """Base class for every error imagerec raises on purpose."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RetryLater(ImagerecError):
    """The condition passes with time; ``retry_after`` says in how many seconds to retry."""

    code = "retry_later"

    def __init__(self, message: str, *, retry_after: float = 1) -> None:
        super().__init__(message)
        self.retry_after = max(1, math.ceil(retry_after))


# --- client input: the request or file is wrong (HTTP 400) -------------------------------


class InvalidInput(ImagerecError):
    code = "invalid_input"


class EmptyInput(InvalidInput):
    code = "empty_body"


class CorruptImage(InvalidInput):
    code = "corrupt_image"


class InvalidArgument(InvalidInput):
    code = "invalid_argument"


class InvalidBase64(InvalidInput):
    code = "invalid_base64"


class MissingImage(InvalidInput):
    code = "missing_image"


class InvalidMultipart(InvalidInput):
    code = "invalid_multipart"


class InvalidJson(InvalidInput):
    code = "invalid_json"


class InvalidUploadId(InvalidInput):
    code = "invalid_upload_id"


class InvalidUploadForm(InvalidInput):
    code = "invalid_upload_form"


class InvalidS3Reference(InvalidInput):
    code = "invalid_s3_reference"


# --- client input: not allowed (HTTP 403) -----------------------------------------------


class Forbidden(ImagerecError):
    code = "forbidden"


class UploadFormRejected(Forbidden):
    """The signature does not match, the form has expired, or a field was changed."""

    code = "upload_form_rejected"


class BucketNotAllowed(Forbidden):
    code = "bucket_not_allowed"


class S3AccessDenied(Forbidden):
    code = "s3_access_denied"


class S3ReferencesDisabled(Forbidden):
    """The deployment has no authorization (``Auth=none``): nobody may name an S3 object."""

    code = "s3_references_disabled"


class AuthorizationRequired(Forbidden):
    """The request came without an authorized caller, where one is needed."""

    code = "authorization_required"


class UploadAlreadyUsed(Forbidden):
    """A form is single-use: its upload was classified or deleted, so it takes no other."""

    code = "upload_already_used"


# --- client input: no such thing (HTTP 404) or no longer (HTTP 410) ---------------------


class NotFound(ImagerecError):
    code = "not_found"


class UploadNotFound(NotFound):
    code = "upload_not_found"


class S3ObjectNotFound(NotFound):
    code = "s3_object_not_found"


class UploadsUnavailable(NotFound):
    code = "uploads_unavailable"


class Gone(ImagerecError):
    code = "gone"


class UploadExpired(Gone):
    code = "upload_expired"


# --- client input: too big (HTTP 413) ---------------------------------------------------


class TooLarge(ImagerecError):
    code = "too_large"


class PayloadTooLarge(TooLarge):
    code = "payload_too_large"


class ImageTooLarge(TooLarge):
    code = "image_too_large"


class TooManyImages(TooLarge):
    code = "too_many_images"


class TooManyPixels(TooLarge):
    code = "too_many_pixels"


# --- too many at once (HTTP 429) or no room (HTTP 507): retry later, with Retry-After -----


class TooManyRequests(RetryLater):
    code = "too_many_requests"


class TooManyUploads(TooManyRequests):
    """The caller (or, anonymously, everyone) holds as many open upload forms as allowed."""

    code = "too_many_uploads"


class InsufficientStorage(RetryLater):
    code = "insufficient_storage"


class UploadStoreFull(InsufficientStorage):
    """The local upload store holds as many bytes as it may."""

    code = "upload_store_full"


# --- client input: not a supported raster image (HTTP 415) ------------------------------


class UnsupportedFormat(ImagerecError):
    code = "unsupported_format"


# --- operator errors: configuration or build (not client input) -------------------------


class ConfigError(ImagerecError):
    """A setting (an IMAGEREC_* variable or a command-line value) is invalid."""

    code = "config_error"


class ModelError(ImagerecError):
    code = "model_error"


class UnknownModel(ModelError):
    code = "unknown_model"


class ModelNotBuilt(ModelError):
    code = "model_not_built"
