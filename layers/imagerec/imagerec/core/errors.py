"""Typed errors. Each carries a stable machine-readable ``code`` and a human message.

The HTTP status for each family lives in one place: ``imagerec.http.api``.
"""

from __future__ import annotations


class ImagerecError(Exception):
    """Base class for every error imagerec raises on purpose."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


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
