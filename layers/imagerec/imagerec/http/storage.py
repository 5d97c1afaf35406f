"""Where images too big for a request body go: upload stores and S3 references.

``POST /api/uploads`` hands out a form the client POSTs its file to, exactly the S3
presigned-POST contract (every field of ``fields``, then the file in a part named
``file``), and ``POST /api/classify {"upload": id}`` reads it back. Two stores keep that
contract: :class:`S3UploadStore` (a real presigned POST, in the cloud) and
:class:`LocalUploadStore` (a folder, forms signed with HMAC and checked by our own
``POST /api/uploads/<id>``, for ``imagerec serve`` and ``imagerec invoke``). One client
works against both.

:class:`S3Objects` reads ``{"s3": {"bucket", "key", "version"}}`` references, from the
operator's allowed buckets only: any other bucket is refused before any S3 call.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn, Protocol

from imagerec.core.errors import (
    BucketNotAllowed,
    EmptyInput,
    InvalidS3Reference,
    InvalidUploadForm,
    InvalidUploadId,
    PayloadTooLarge,
    S3AccessDenied,
    S3ObjectNotFound,
    UploadExpired,
    UploadFormRejected,
    UploadNotFound,
    UploadsUnavailable,
)
from imagerec.core.settings import Settings
from imagerec.http.uploads import FormPart

# boto3 ships no type information; its client is typed as Any here.
S3Client = Any

# Object keys are uploads/<32 hex digits>; the S3 lifecycle rule expires this prefix.
KEY_PREFIX = "uploads/"
# How long an upload may wait to be classified: the S3 lifecycle rule's one day.
RETENTION_S = 24 * 3600
_ID = re.compile(r"^[0-9a-f]{32}$")
_SIGNATURE_FIELD = "x-imagerec-signature"
_S3_KEY_MAX = 1024


@dataclass(frozen=True)
class UploadForm:
    id: str
    url: str
    fields: dict[str, str]
    expires_in: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "fields": self.fields,
            "expires_in": self.expires_in,
        }


class UploadStore(Protocol):
    """Hands out upload forms and gives back what was uploaded through them."""

    max_bytes: int

    def create(self, base_url: str) -> UploadForm:
        """A new form; ``base_url`` is this API's origin (the local store posts back to it)."""
        ...

    def receive(self, upload_id: str, parts: Sequence[FormPart]) -> None:
        """Accept a form POSTed to this API (the local store only)."""
        ...

    def fetch(self, upload_id: str) -> bytes: ...

    def delete(self, upload_id: str) -> None: ...


def check_upload_id(upload_id: object) -> str:
    if not isinstance(upload_id, str) or not _ID.match(upload_id):
        raise InvalidUploadId(
            f"Expected an upload id from POST /api/uploads (32 hex digits), "
            f"received: {str(upload_id)[:80]!r}"
        )
    return upload_id


def _new_id() -> str:
    return uuid.uuid4().hex


def _too_large(size: int, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The file is {size / 1e6:.1f} MB; the limit is {limit / 1e6:.1f} MB.")


# ---- local: a folder, and forms signed with HMAC -------------------------------------------


class LocalUploadStore:
    """Uploads in a folder; the form's policy is signed with a key kept beside them.

    The policy is S3's (base64 JSON with ``expiration`` and ``conditions``) and the form
    carries ``key``, ``policy`` and an HMAC-SHA256 signature of the policy. The key file is
    created once and shared by every process using the folder (``serve --workers``,
    ``invoke``), so a form signed by one is accepted by another.
    """

    def __init__(self, root: Path, *, max_bytes: int, expires_in: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.expires_in = expires_in
        self._objects = root / "objects"
        self._key: bytes | None = None

    def _secret(self) -> bytes:
        # Made on first use, so building a handler touches no disk.
        if self._key is None:
            self._objects.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._key = self._load_secret(self.root / "signing-key")
        return self._key

    @staticmethod
    def _load_secret(path: Path) -> bytes:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            # Another process may be writing it right now: wait for the whole key.
            for _ in range(50):
                secret = path.read_bytes()
                if len(secret) == 32:
                    return secret
                time.sleep(0.01)
            raise RuntimeError(f"The upload signing key {path} is damaged; delete it.") from None
        secret = secrets.token_bytes(32)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secret)
        return secret

    def _sign(self, policy: str) -> str:
        # The policy may come back altered by a client, in any characters.
        return hmac.new(self._secret(), policy.encode(), hashlib.sha256).hexdigest()

    def _path(self, upload_id: str) -> Path:
        return self._objects / check_upload_id(upload_id)

    def create(self, base_url: str) -> UploadForm:
        self._secret()  # the folder and the key exist from here on
        self._sweep()
        upload_id = _new_id()
        key = KEY_PREFIX + upload_id
        expiration = datetime.now(UTC) + timedelta(seconds=self.expires_in)
        document = {
            "expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "conditions": [{"key": key}, ["content-length-range", 1, self.max_bytes]],
        }
        policy = base64.b64encode(json.dumps(document).encode()).decode("ascii")
        fields = {"key": key, "policy": policy, _SIGNATURE_FIELD: self._sign(policy)}
        url = f"{base_url.rstrip('/')}/api/uploads/{upload_id}"
        return UploadForm(upload_id, url, fields, self.expires_in)

    def receive(self, upload_id: str, parts: Sequence[FormPart]) -> None:
        path = self._path(upload_id)
        fields: dict[str, str] = {}
        data: bytes | None = None
        for part in parts:
            if part.name == "file":
                data = part.data
                break  # as in S3, anything after the file is ignored
            fields[part.name.lower()] = part.data.decode("utf-8", "replace")
        policy, signature = fields.get("policy"), fields.get(_SIGNATURE_FIELD)
        if not policy or not signature or "key" not in fields:
            raise InvalidUploadForm(
                "The form lacks key, policy or its signature: send every field that "
                "POST /api/uploads returned, then the file."
            )
        if data is None:
            raise InvalidUploadForm('The form has no file: send it last, in a part named "file".')
        if not hmac.compare_digest(self._sign(policy).encode(), signature.encode()):
            raise UploadFormRejected("The upload form's signature does not match its policy.")
        document = json.loads(base64.b64decode(policy))  # ours: it is signed
        expiration = datetime.strptime(document["expiration"], "%Y-%m-%dT%H:%M:%SZ")
        if datetime.now(UTC) > expiration.replace(tzinfo=UTC):
            raise UploadFormRejected("The upload form has expired; ask POST /api/uploads again.")
        key_condition, (_, low, high) = document["conditions"]
        if fields["key"] != key_condition["key"] or fields["key"] != KEY_PREFIX + upload_id:
            raise UploadFormRejected("The form's key is not the one its policy was signed for.")
        if len(data) < low:
            raise EmptyInput("The uploaded file is empty.")
        if len(data) > high:
            raise _too_large(len(data), high)
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        temporary.write_bytes(data)
        temporary.replace(path)

    def fetch(self, upload_id: str) -> bytes:
        path = self._path(upload_id)
        try:
            age = time.time() - path.stat().st_mtime
            if age > RETENTION_S:
                path.unlink(missing_ok=True)
                raise UploadExpired("This upload is over a day old and was deleted; upload again.")
            data = path.read_bytes()
        except FileNotFoundError:
            raise UploadNotFound(_NOT_FOUND) from None
        if len(data) > self.max_bytes:  # the cap was lowered since the upload
            raise _too_large(len(data), self.max_bytes)
        return data

    def delete(self, upload_id: str) -> None:
        self._path(upload_id).unlink(missing_ok=True)

    def _sweep(self) -> None:
        """Delete what nobody classified within a day (S3's lifecycle rule, locally)."""
        cutoff = time.time() - RETENTION_S
        for entry in self._objects.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if entry.stat().st_mtime < cutoff:
                    entry.unlink()


_NOT_FOUND = (
    "No upload has this id: it was never uploaded, its form expired first, or it was "
    "already classified (an upload is deleted once classified)."
)


# ---- S3: presigned POST -----------------------------------------------------------------------


def s3_client(settings: Settings) -> S3Client:
    """A SigV4 S3 client. Virtual-hosted URLs on AWS (the bucket's own origin, which the
    page's CSP and the bucket's CORS name); path-style for a custom endpoint (moto, MinIO)."""
    import boto3
    from botocore.config import Config

    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path" if settings.s3_endpoint_url else "virtual"},
        connect_timeout=3,
        read_timeout=10,
        retries={"max_attempts": 3, "mode": "standard"},
    )
    return boto3.client("s3", endpoint_url=settings.s3_endpoint_url, config=config)


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


class S3UploadStore:
    """Uploads in an S3 bucket under ``uploads/``, through presigned POST forms."""

    def __init__(self, client: S3Client, bucket: str, *, max_bytes: int, expires_in: int) -> None:
        self.client = client
        self.bucket = bucket
        self.max_bytes = max_bytes
        self.expires_in = expires_in

    def create(self, base_url: str) -> UploadForm:
        upload_id = _new_id()
        post = self.client.generate_presigned_post(
            Bucket=self.bucket,
            Key=KEY_PREFIX + upload_id,
            Conditions=[["content-length-range", 1, self.max_bytes]],
            ExpiresIn=self.expires_in,
        )
        return UploadForm(upload_id, post["url"], dict(post["fields"]), self.expires_in)

    def receive(self, upload_id: str, parts: Sequence[FormPart]) -> None:
        raise UploadsUnavailable(
            "Uploads go straight to S3 here: POST the form to the url that "
            "POST /api/uploads returned."
        )

    def fetch(self, upload_id: str) -> bytes:
        from botocore.exceptions import ClientError

        key = KEY_PREFIX + check_upload_id(upload_id)
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            # Without s3:ListBucket (deliberately not granted) S3 answers a missing key with
            # AccessDenied rather than NoSuchKey; both mean no such upload.
            if _error_code(error) in {"NoSuchKey", "404", "AccessDenied", "403"}:
                raise UploadNotFound(_NOT_FOUND) from None
            raise
        body = response["Body"]
        with contextlib.closing(body):
            # The lifecycle rule deletes within a day or two of expiry; the contract is a day.
            age = datetime.now(UTC) - response["LastModified"]
            if age.total_seconds() > RETENTION_S:
                raise UploadExpired("This upload is over a day old; upload again.")
            size = int(response.get("ContentLength", 0))
            if size > self.max_bytes:
                raise _too_large(size, self.max_bytes)
            return bytes(body.read())

    def delete(self, upload_id: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=KEY_PREFIX + check_upload_id(upload_id))


class UnavailableUploadStore:
    """No bucket configured on Lambda: a local folder there would serve one environment only."""

    max_bytes = 0

    @staticmethod
    def _refuse() -> NoReturn:
        raise UploadsUnavailable("Uploads are not configured on this deployment.")

    def create(self, base_url: str) -> UploadForm:
        self._refuse()

    def receive(self, upload_id: str, parts: Sequence[FormPart]) -> None:
        self._refuse()

    def fetch(self, upload_id: str) -> bytes:
        self._refuse()

    def delete(self, upload_id: str) -> None:
        return None


def upload_store(settings: Settings, client: S3Client | None = None) -> UploadStore:
    """The store the settings choose: S3 when a bucket is set, else a local folder."""
    if settings.upload_bucket:
        return S3UploadStore(
            client or s3_client(settings),
            settings.upload_bucket,
            max_bytes=settings.max_upload_bytes,
            expires_in=settings.upload_expires_s,
        )
    if settings.on_lambda:
        return UnavailableUploadStore()
    return LocalUploadStore(
        settings.upload_dir,
        max_bytes=settings.max_upload_bytes,
        expires_in=settings.upload_expires_s,
    )


# ---- S3 references -------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Reference:
    bucket: str
    key: str
    version: str | None = None

    @classmethod
    def parse(cls, value: object) -> S3Reference:
        if not isinstance(value, dict):
            raise InvalidS3Reference(
                'Expected "s3" to be an object like {"bucket": "...", "key": "..."}.'
            )
        bucket, key, version = value.get("bucket"), value.get("key"), value.get("version")
        if not isinstance(bucket, str) or not bucket:
            raise InvalidS3Reference(f"Expected s3.bucket to be a name, received: {bucket!r}")
        if not isinstance(key, str) or not key or len(key.encode()) > _S3_KEY_MAX:
            raise InvalidS3Reference(f"Expected s3.key to be an object key, received: {key!r}")
        if version is not None and (not isinstance(version, str) or not version):
            raise InvalidS3Reference(f"Expected s3.version to be a string, received: {version!r}")
        return cls(bucket, key, version)


class S3Objects:
    """Reads images from the buckets the operator allowed (``ReadableBuckets``), and no other."""

    def __init__(
        self, allowed: Sequence[str], max_bytes: int, client_factory: Callable[[], S3Client]
    ) -> None:
        self.allowed = frozenset(allowed)
        self.max_bytes = max_bytes
        self._client_factory = client_factory
        self._client: S3Client | None = None

    def read(self, reference: S3Reference) -> bytes:
        # Checked before any S3 call: the function's role could not read it anyway, but the
        # client deserves a clear answer and S3 no request.
        if reference.bucket not in self.allowed:
            raise BucketNotAllowed(
                f"Reading from bucket {reference.bucket!r} is not allowed here; the operator "
                "lists the readable buckets (the ReadableBuckets parameter)."
            )
        from botocore.exceptions import ClientError

        if self._client is None:
            self._client = self._client_factory()
        request: dict[str, str] = {"Bucket": reference.bucket, "Key": reference.key}
        if reference.version:
            request["VersionId"] = reference.version
        try:
            response = self._client.get_object(**request)
        except ClientError as error:
            code = _error_code(error)
            where = f"s3://{reference.bucket}/{reference.key}"
            if code in {"NoSuchKey", "NoSuchVersion", "NoSuchBucket", "404"}:
                raise S3ObjectNotFound(f"There is no object {where}.") from None
            if code in {"AccessDenied", "403", "AllAccessDisabled", "InvalidObjectState"}:
                # Also what S3 says for a missing key when the role may not list the bucket.
                raise S3AccessDenied(
                    f"{where} does not exist, or this function may not read it."
                ) from None
            if code in {"InvalidArgument", "400"}:
                raise InvalidS3Reference(f"S3 refused the reference to {where}.") from None
            raise
        body = response["Body"]
        with contextlib.closing(body):
            size = int(response.get("ContentLength", 0))
            if size > self.max_bytes:
                raise _too_large(size, self.max_bytes)
            return bytes(body.read())


def s3_objects(settings: Settings) -> S3Objects:
    return S3Objects(
        settings.readable_buckets,
        settings.max_upload_bytes,
        client_factory=lambda: s3_client(settings),
    )
