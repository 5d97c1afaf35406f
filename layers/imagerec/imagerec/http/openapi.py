"""The OpenAPI 3.1 description of the HTTP API, served at ``GET /api/openapi.json``.

It is the contract a machine checks: every route (this one included), every request shape
the parser accepts with its limits, and every error. An integration test runs schemathesis
against ``imagerec serve`` with it and fails on any 5xx or any answer it does not describe.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from imagerec.core.settings import Settings
from imagerec.core.text import human_pixels, human_size
from imagerec.http import uploads

ERROR_CODES: tuple[str, ...] = (
    "empty_body",
    "corrupt_image",
    "invalid_argument",
    "invalid_base64",
    "invalid_json",
    "invalid_multipart",
    "missing_image",
    "payload_too_large",
    "image_too_large",
    "too_many_images",
    "too_many_pixels",
    "unsupported_format",
    "invalid_upload_id",
    "invalid_upload_form",
    "invalid_s3_reference",
    "upload_form_rejected",
    "bucket_not_allowed",
    "s3_access_denied",
    "s3_references_disabled",
    "authorization_required",
    "upload_already_used",
    "too_many_uploads",
    "upload_store_full",
    "upload_not_found",
    "s3_object_not_found",
    "uploads_unavailable",
    "upload_expired",
    "not_found",
    "method_not_allowed",
    "bad_request",
    "request_timeout",
    "headers_too_large",
    "not_implemented",
    "http_version_not_supported",
    "internal_error",
)
IMAGE_FIELDS: tuple[str, ...] = tuple(sorted(uploads.IMAGE_FIELDS))


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


def _ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


# Answers any route can give: the local server's own refusals and our failures.
_COMMON_ERRORS: dict[str, Any] = {
    "400": _error("A malformed request: framing, request line or headers"),
    "405": _error("Another method is allowed on this route (the Allow header lists it)"),
    "408": _error("`imagerec serve` only: the request's headers or body came too slowly"),
    "431": _error("`imagerec serve` only: request headers too large"),
    "500": _error("Our failure; carries a request id, never a stack trace"),
    "503": _error("`imagerec serve` only: too many open connections or waiting uploads"),
}


def openapi_document(settings: Settings, categories: Sequence[str] = ()) -> dict[str, Any]:
    """The document; ``categories`` are the served model's broad categories (may be none)."""
    size, pixels = human_size(settings.max_bytes), human_pixels(settings.max_pixels)
    upload = human_size(settings.max_upload_bytes)
    request_pixels = human_pixels(settings.max_request_pixels)
    decode_size = human_size(settings.max_decode_bytes)
    images = settings.max_images
    number = {"type": "number"}
    integer = {"type": "integer"}
    string = {"type": "string"}
    score = {**number, "minimum": 0, "maximum": 1}
    category = {**string, "enum": list(categories)} if categories else string
    names = {
        "type": "array",
        "items": category,
        "description": "category names; in a query or form, comma-separated",
    }
    label_options = {
        "min_confidence": score,
        "include_categories": {"oneOf": [names, string]},
        "exclude_categories": {"oneOf": [names, string]},
    }
    top_k_number = {
        **integer,
        "minimum": 1,
        "maximum": settings.max_top_k,
        "default": settings.default_top_k,
    }
    # As text (a query or form field): ASCII digits only, whatever int() would take.
    top_k_text = {**string, "pattern": "^[0-9]{1,9}$"}
    base64_image = {
        **string,
        "minLength": 1,
        "contentEncoding": "base64",
        "description": "Standard or URL-safe base64, padding optional; a data: URL prefix is "
        "accepted.",
    }
    named_image = {
        "type": "object",
        "required": ["data"],
        "properties": {"filename": string, "data": base64_image, "image": base64_image},
    }
    phrase = {
        **string,
        "description": 'the label as a sentence reads it: "a dog", "an admiral", "clothing"',
    }
    schemas: dict[str, Any] = {
        "Prediction": {
            "type": "object",
            "required": ["index", "label", "score", "phrase", "parents"],
            "properties": {
                "index": {**integer, "minimum": 0, "description": "ImageNet class index"},
                "label": string,
                "score": score,
                "phrase": phrase,
                "parents": {
                    "type": "array",
                    "items": string,
                    "description": "familiar categories above the class, nearest first "
                    '(admiral: "nymphalid", "butterfly", "insect", "animal"); empty for '
                    "classes with only abstractions above them and for custom labels",
                },
            },
        },
        "Summary": {
            "type": "object",
            "required": ["label", "score", "phrase"],
            "description": "What the model is sure enough of: the top class when it reaches "
            "0.9, else the deepest familiar category (dog, bird, fruit, car; never animal or "
            "mammal) whose summed probability over every class under it reaches the model's "
            "category threshold, else the top class when it reaches the model's class "
            "threshold; each at least min_confidence. The thresholds are measured per model "
            "(docs/accuracy.md); IMAGEREC_SUMMARY_THRESHOLD, when set, is both. null: not sure.",
            "properties": {"label": string, "score": score, "phrase": phrase},
        },
        "CategoryScore": {
            "type": "object",
            "required": ["name", "score"],
            "description": "A broad category and the summed probability of its classes; "
            "every class is in exactly one, so all of them add up to 1",
            "properties": {"name": category, "score": score},
        },
        "Classification": {
            "type": "object",
            "required": ["model", "summary", "predictions", "categories", "image", "timing_ms"],
            "properties": {
                "model": {
                    "type": "object",
                    "required": ["name", "runtime"],
                    "properties": {"name": string, "runtime": string},
                },
                "summary": {"oneOf": [_ref("Summary"), {"type": "null"}]},
                "predictions": {
                    "type": "array",
                    "maxItems": settings.max_top_k,
                    "description": "the top_k allowed classes at or above min_confidence "
                    "(none when min_confidence leaves none)",
                    "items": _ref("Prediction"),
                },
                "image": {
                    "type": "object",
                    "required": ["width", "height", "format"],
                    "properties": {
                        "width": {**integer, "minimum": 1},
                        "height": {**integer, "minimum": 1},
                        "format": {"enum": ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"]},
                    },
                },
                "timing_ms": {"type": "object", "additionalProperties": number},
                "filename": {"type": ["string", "null"]},
            },
        },
        "Results": {
            "type": "object",
            "required": ["results"],
            "properties": {
                "results": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": images,
                    "items": {"oneOf": [_ref("Classification"), _ref("Error")]},
                }
            },
        },
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"enum": list(ERROR_CODES)},
                        "message": string,
                        "request_id": string,
                    },
                },
                "filename": {"type": ["string", "null"]},
            },
        },
        "ClassifyJson": {
            "description": f'One image as "image", or 1-{images} as "images" (several answer '
            '{"results": [...]}); or one stored image, as "upload" or "s3".',
            "oneOf": [
                {
                    "type": "object",
                    "required": ["image"],
                    "not": {"required": ["images"]},
                    "properties": {
                        "image": {"oneOf": [base64_image, named_image]},
                        "top_k": {"oneOf": [top_k_number, top_k_text]},
                        **label_options,
                    },
                },
                {
                    "type": "object",
                    "required": ["images"],
                    "properties": {
                        "images": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": images,
                            "items": {"oneOf": [base64_image, named_image]},
                        },
                        "top_k": {"oneOf": [top_k_number, top_k_text]},
                        **label_options,
                    },
                },
                {
                    "type": "object",
                    "required": ["upload"],
                    "properties": {
                        "upload": {**string, "pattern": "^[0-9a-f]{32}$"},
                        "top_k": {"oneOf": [top_k_number, top_k_text]},
                        **label_options,
                    },
                },
                {
                    "type": "object",
                    "required": ["s3"],
                    "properties": {
                        "s3": {
                            "type": "object",
                            "required": ["bucket", "key"],
                            "properties": {"bucket": string, "key": string, "version": string},
                        },
                        "top_k": {"oneOf": [top_k_number, top_k_text]},
                        **label_options,
                    },
                },
            ],
        },
    }
    file = {**string, "format": "binary", "maxLength": settings.max_bytes}
    form_files = {"type": "array", "maxItems": images, "items": file}
    binary = {"schema": file}
    classify = {
        "summary": "What is in this photo?",
        "description": (
            "Send one image as the raw body, one or several as multipart/form-data (file "
            f"fields {', '.join(IMAGE_FIELDS)}; file names in UTF-8 or RFC 8187 "
            '`filename*=`), or base64 in JSON; or name it in JSON: `{"upload": id}` after '
            '`POST /api/uploads`, or `{"s3": {"bucket", "key", "version"}}` in a bucket the '
            "operator allows. JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC/HEIF and AVIF are "
            f"accepted, whatever the Content-Type says; up to {size} in the body ({upload} by "
            f"upload or S3 reference) and {pixels} per image, {decode_size} of memory to "
            f"decode one, {images} images and {request_pixels} decoded per request. "
            "`Accept: text/plain` answers one line per image."
        ),
        "parameters": [
            {
                "name": "top_k",
                "in": "query",
                "description": "Labels per image, in ASCII digits; wins over a body's top_k.",
                "schema": top_k_number,
            },
            {
                "name": "min_confidence",
                "in": "query",
                "description": "drop predictions and categories scoring below it; the "
                "summary must reach it too",
                "schema": {**score, "default": 0},
            },
            {
                "name": "include_categories",
                "in": "query",
                "description": "only classes in these broad categories",
                "style": "form",
                "explode": False,
                "schema": names,
            },
            {
                "name": "exclude_categories",
                "in": "query",
                "description": "no classes in these broad categories",
                "style": "form",
                "explode": False,
                "schema": names,
            },
        ],
        "requestBody": {
            "required": True,
            "content": {
                "image/*": binary,
                "application/octet-stream": binary,
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            **dict.fromkeys(IMAGE_FIELDS, form_files),
                            "top_k": top_k_text,
                            # Form fields are text: a number, and comma-separated names.
                            "min_confidence": string,
                            "include_categories": string,
                            "exclude_categories": string,
                        },
                    }
                },
                "application/json": {"schema": _ref("ClassifyJson")},
            },
        },
        "responses": {
            "200": {
                "description": "Ranked labels (several files: one result or error each)",
                "content": {
                    "application/json": {
                        "schema": {"oneOf": [_ref("Classification"), _ref("Results")]}
                    },
                    "text/plain": {"schema": string},
                },
            },
            **_COMMON_ERRORS,
            "400": _error(
                "Empty, corrupt or malformed input, or a bad top_k, min_confidence or category"
            ),
            "403": _error(
                "An S3 reference where they are off (Auth=none) or from an anonymous caller, "
                "a bucket the operator does not allow, S3 denied the read, an upload sent "
                "twice through one form, or an anonymous caller where the operator refuses them"
            ),
            "404": _error("No such upload (never uploaded, or already classified) or object"),
            "410": _error("The upload is over a day old"),
            "413": _error(
                f"Over {size} ({upload} stored), {pixels} or {decode_size} to decode per image, "
                f"or over {images} images or {request_pixels} per request"
            ),
            "415": _error("Not a supported raster image"),
        },
    }
    status_schema = {
        "type": "object",
        "required": ["status", "model", "runtime", "warm"],
        "properties": {
            "status": {"const": "ok"},
            "model": string,
            "runtime": string,
            "warm": {"type": "boolean"},
        },
    }
    upload_schema = {
        "type": "object",
        "required": ["upload", "max_bytes"],
        "properties": {
            "upload": {
                "type": "object",
                "required": ["id", "url", "fields", "expires_in"],
                "properties": {
                    "id": string,
                    "url": {**string, "format": "uri"},
                    "fields": {"type": "object", "additionalProperties": string},
                    "expires_in": integer,
                },
            },
            "max_bytes": integer,
        },
    }
    models_schema = {
        "type": "object",
        "required": ["default", "models", "buildable"],
        "properties": {
            "default": string,
            "models": {"type": "array", "items": {"type": "object"}},
            "buildable": {"type": "array", "items": string},
        },
    }
    document_schema = {
        "type": "object",
        "required": ["openapi", "info", "paths"],
        "properties": {"openapi": string, "info": {"type": "object"}, "paths": {"type": "object"}},
    }

    retry_after = {
        "description": "Seconds until a retry may succeed",
        "schema": {**integer, "minimum": 1},
    }

    def get(operation_id: str, summary: str, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "get": {
                "operationId": operation_id,
                "summary": summary,
                "responses": {"200": _ok(schema), **_COMMON_ERRORS},
            }
        }

    paths: dict[str, Any] = {
        "/api/classify": {"post": {**classify, "operationId": "classify"}},
        "/api/uploads": {
            "post": {
                "operationId": "createUpload",
                "summary": "A form to upload one large file (the S3 presigned-POST contract)",
                "description": (
                    "POST multipart/form-data to `url`: every field of `fields`, then the "
                    f"file in a part named `file`, up to {upload}, within "
                    f"{settings.upload_expires_s} s. Then POST /api/classify "
                    '`{"upload": id}`. An upload is deleted once classified, and after a '
                    "day in any case."
                ),
                "responses": {
                    "200": _ok(upload_schema),
                    "403": _error("An anonymous caller where the operator refuses them"),
                    "404": _error("Uploads are not configured on this deployment"),
                    "429": {
                        **_error(
                            "The caller (anonymous callers: all of them together) holds "
                            "as many open forms and unclassified uploads as allowed"
                        ),
                        "headers": {"Retry-After": retry_after},
                    },
                    "507": {
                        **_error("`imagerec serve` only: the upload folder is full"),
                        "headers": {"Retry-After": retry_after},
                    },
                },
            }
        },
        "/api/uploads/{upload_id}": {
            "post": {
                "operationId": "receiveUpload",
                "summary": "The form's target when uploads are stored locally (not on AWS)",
                "parameters": [
                    {"name": "upload_id", "in": "path", "required": True, "schema": string}
                ],
                "requestBody": {
                    "required": True,
                    "content": {"multipart/form-data": {"schema": {"type": "object"}}},
                },
                "responses": {
                    "204": {"description": "Stored"},
                    "400": _error("Not a complete form"),
                    "403": _error(
                        "The signature, key or expiry does not match, or the form was "
                        "used already (a form takes one upload)"
                    ),
                    "404": _error("Uploads go to S3 on this deployment"),
                    "413": _error(f"Over {upload}"),
                    "507": {
                        **_error("The upload folder is full"),
                        "headers": {"Retry-After": retry_after},
                    },
                },
            }
        },
        "/api/health": get("health", "Liveness, model and warmth", status_schema),
        "/api/models": get(
            "models", "The served model: input size, labels, preprocessing", models_schema
        ),
        "/api/openapi.json": get("openapi", "This document", document_schema),
    }
    # The page's routes: the same operations, never behind an authorizer (their callers are
    # anonymous, so S3 references are refused there).
    public = "The same as {}, for anonymous callers: never behind an authorizer."
    paths["/api/public/classify"] = {
        "post": {
            **paths["/api/classify"]["post"],
            "operationId": "classifyPublic",
            "summary": public.format("POST /api/classify"),
        }
    }
    paths["/api/public/uploads"] = {
        "post": {
            **paths["/api/uploads"]["post"],
            "operationId": "createUploadPublic",
            "summary": public.format("POST /api/uploads"),
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "imagerec",
            "version": "1.0.0",
            "description": "Serverless image recognition: photo in, ImageNet labels out. "
            "Every error is JSON in the Error shape. Deployed with Auth=iam or Auth=jwt, "
            "POST /api/classify and POST /api/uploads are behind API Gateway's authorizer "
            "(SigV4, or a bearer JWT) and only there may a request name an S3 object; the "
            "/api/public/ routes serve anonymous callers where the operator allows them.",
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }
