"""The OpenAPI 3.1 description of the HTTP API, served at ``GET /api/openapi.json``."""

from __future__ import annotations

from typing import Any

from imagerec.settings import Settings
from imagerec.text import human_pixels, human_size


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


def _ok(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def openapi_document(settings: Settings) -> dict[str, Any]:
    size, pixels = human_size(settings.max_bytes), human_pixels(settings.max_pixels)
    upload = human_size(settings.max_upload_bytes)
    number = {"type": "number"}
    integer = {"type": "integer"}
    string = {"type": "string"}
    schemas: dict[str, Any] = {
        "Prediction": {
            "type": "object",
            "required": ["index", "label", "score"],
            "properties": {
                "index": {**integer, "description": "ImageNet class index"},
                "label": string,
                "score": {**number, "minimum": 0, "maximum": 1},
            },
        },
        "Classification": {
            "type": "object",
            "required": ["model", "predictions", "image", "timing_ms"],
            "properties": {
                "model": {
                    "type": "object",
                    "properties": {"name": string, "runtime": string},
                },
                "predictions": {"type": "array", "items": _ref("Prediction")},
                "image": {
                    "type": "object",
                    "properties": {"width": integer, "height": integer, "format": string},
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
                        "code": {
                            **string,
                            "examples": [
                                "empty_body",
                                "corrupt_image",
                                "invalid_argument",
                                "invalid_base64",
                                "invalid_json",
                                "invalid_multipart",
                                "missing_image",
                                "payload_too_large",
                                "image_too_large",
                                "unsupported_format",
                                "invalid_upload_id",
                                "invalid_upload_form",
                                "invalid_s3_reference",
                                "upload_form_rejected",
                                "bucket_not_allowed",
                                "s3_access_denied",
                                "upload_not_found",
                                "s3_object_not_found",
                                "uploads_unavailable",
                                "upload_expired",
                                "not_found",
                                "method_not_allowed",
                                "internal_error",
                            ],
                        },
                        "message": string,
                        "request_id": string,
                        "filename": string,
                    },
                }
            },
        },
    }
    binary = {"schema": {"type": "string", "format": "binary"}}
    classify = {
        "summary": "What is in this photo?",
        "description": (
            "Send one image as the raw body, several as multipart/form-data (field `image`), "
            'or base64 in JSON; or name it in JSON: `{"upload": id}` after `POST /api/uploads`, '
            'or `{"s3": {"bucket", "key", "version"}}` in a bucket the operator allows. '
            "JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC/HEIF and AVIF are accepted, whatever the "
            f"Content-Type says; up to {size} in the body ({upload} by upload or "
            f"S3 reference) and {pixels} per image. "
            "`Accept: text/plain` answers one line per image."
        ),
        "parameters": [
            {
                "name": "top_k",
                "in": "query",
                "schema": {
                    **integer,
                    "minimum": 1,
                    "maximum": settings.max_top_k,
                    "default": settings.default_top_k,
                },
            }
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
                            "image": {
                                "type": "array",
                                "items": {"type": "string", "format": "binary"},
                            },
                            "top_k": integer,
                        },
                    }
                },
                "application/json": {
                    "schema": {
                        "type": "object",
                        "description": "Exactly one of image, images, upload or s3.",
                        "properties": {
                            "image": {**string, "contentEncoding": "base64"},
                            "images": {
                                "type": "array",
                                "items": {**string, "contentEncoding": "base64"},
                            },
                            "upload": {**string, "pattern": "^[0-9a-f]{32}$"},
                            "s3": {
                                "type": "object",
                                "required": ["bucket", "key"],
                                "properties": {"bucket": string, "key": string, "version": string},
                            },
                            "top_k": integer,
                        },
                    }
                },
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
            "400": _error("Empty, corrupt or malformed input, or a bad top_k"),
            "403": _error("An S3 bucket the operator does not allow, or S3 denied the read"),
            "404": _error("No such upload (never uploaded, or already classified) or object"),
            "410": _error("The upload is over a day old"),
            "413": _error(f"Over {size} ({upload} stored) or {pixels}"),
            "415": _error("Not a supported raster image"),
            "500": _error("Our failure; carries a request id"),
        },
    }
    status_schema = {
        "type": "object",
        "properties": {
            "status": string,
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
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "imagerec",
            "version": "1.0.0",
            "description": "Serverless image recognition: photo in, ImageNet labels out.",
        },
        "paths": {
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
                    "responses": {"200": _ok(upload_schema)},
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
                        "403": _error("The signature, key or expiry does not match"),
                        "404": _error("Uploads go to S3 on this deployment"),
                        "413": _error(f"Over {upload}"),
                    },
                }
            },
            "/api/health": {
                "get": {
                    "operationId": "health",
                    "summary": "Liveness, model and warmth",
                    "responses": {"200": _ok(status_schema)},
                }
            },
            "/api/models": {
                "get": {
                    "operationId": "models",
                    "summary": "The served model: input, labels, preprocessing, top-1, latency",
                    "responses": {"200": _ok({"type": "object"})},
                }
            },
            "/api/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {"200": _ok({"type": "object"})},
                }
            },
        },
        "components": {"schemas": schemas},
    }
