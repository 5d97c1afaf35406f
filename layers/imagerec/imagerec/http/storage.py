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
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
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
    TooManyUploads,
    UploadAlreadyUsed,
    UploadExpired,
    UploadFormRejected,
    UploadNotFound,
    UploadStoreFull,
    UploadsUnavailable,
    shown,
)
from imagerec.core.settings import Settings
from imagerec.http.uploads import FormPart

# boto3 ships no type information; its client is typed as Any here.
S3Client = Any

# Object keys are uploads/[<caller>/]<32 hex digits>; S3's lifecycle rule expires the prefix.
KEY_PREFIX = "uploads/"
# S3 only: forms/<caller>/<id>, an empty marker per live form (expired by the same rule).
FORM_PREFIX = "forms/"
# How long an upload may wait to be classified: the S3 lifecycle rule's one day.
RETENTION_S = 24 * 3600
_ID = re.compile(r"[0-9a-f]{32}")
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
    """Hands out upload forms and gives back what was uploaded through them.

    ``caller`` is who asks: an authorized principal, or None for anonymous callers, who share
    one quota. A form is single-use, and its upload is read back by the same caller only.
    """

    max_bytes: int

    def create(self, base_url: str, caller: str | None = None) -> UploadForm:
        """A new form; ``base_url`` is this API's origin (the local store posts back to it)."""
        ...

    def receive(self, upload_id: str, parts: Sequence[FormPart]) -> None:
        """Accept a form POSTed to this API (the local store only)."""
        ...

    def fetch(self, upload_id: str, caller: str | None = None) -> bytes: ...

    def delete(self, upload_id: str, caller: str | None = None) -> None: ...


@dataclass(frozen=True)
class UploadQuota:
    """Open forms and unclassified uploads a caller may hold at once (anonymous: all of them
    together), and, for the local store, the bytes its folder may hold."""

    per_caller: int = 20
    anonymous: int = 100
    store_bytes: int = 2_000_000_000

    def limit(self, caller: str | None) -> int:
        return self.anonymous if caller is None else self.per_caller

    @classmethod
    def of(cls, settings: Settings) -> UploadQuota:
        return cls(
            settings.max_open_uploads, settings.max_anonymous_uploads, settings.max_store_bytes
        )


def check_upload_id(upload_id: object) -> str:
    # fullmatch: with match and "$", "…\n" would pass.
    if not isinstance(upload_id, str) or not _ID.fullmatch(upload_id):
        raise InvalidUploadId(
            "Expected an upload id from POST /api/uploads (32 hex digits), "
            f"received: {shown(upload_id)}"
        )
    return upload_id


def _new_id(expires: float) -> str:
    """32 hex digits: the form's expiry (8, seconds since 1970) then 96 random bits.

    Ids sort by expiry, so a listing can start after the expired ones (S3's StartAfter).
    """
    return f"{max(0, int(expires)):08x}{secrets.token_hex(12)}"


def _id_expires(upload_id: str) -> int:
    return int(upload_id[:8], 16)


def caller_tag(caller: str | None) -> str:
    """A caller as a key segment: a digest, so no principal's text reaches a key or a path."""
    if caller is None:
        return "anonymous"
    return hashlib.sha256(caller.encode()).hexdigest()[:32]


def _too_large(size: int, limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The file is {size / 1e6:.1f} MB; the limit is {limit / 1e6:.1f} MB.")


def _too_many(caller: str | None, limit: int, retry_after: float) -> TooManyUploads:
    who = "Anonymous callers together hold" if caller is None else "You hold"
    return TooManyUploads(
        f"{who} {limit} open upload forms or unclassified uploads, the most allowed; "
        "classify an upload, or wait for a form to expire.",
        retry_after=retry_after,
    )


def read_capped(body: Any, limit: int) -> bytes:
    """At most ``limit`` bytes of a streaming body: one more is read to tell it is over."""
    data = bytes(body.read(limit + 1))
    if len(data) > limit:
        raise _too_large(len(data), limit)  # at least; the rest is never read
    return data


# ---- local: a folder, and forms signed with HMAC -------------------------------------------

# One row per form, shared by every process on the folder. ``deadline`` is when a row and its
# file may be swept: an open or used form at its expiry, a stored upload a day after it came.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS forms (
    id TEXT PRIMARY KEY,
    caller TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open', 'stored', 'used')),
    size INTEGER NOT NULL DEFAULT 0,
    expires REAL NOT NULL,
    deadline REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS forms_by_deadline ON forms (deadline);
CREATE INDEX IF NOT EXISTS forms_by_caller ON forms (caller, state);
"""
# Rows (and files) each request sweeps at most: a bounded cost, however big the store grows.
SWEEP_BATCH = 16


class LocalUploadStore:
    """Uploads in a folder; the form's policy is signed with a key kept beside them.

    The policy is S3's (base64 JSON with ``expiration`` and ``conditions``) and the form
    carries ``key``, ``policy`` and an HMAC-SHA256 signature of the policy. The key file and
    an SQLite index of the forms are created once and shared by every process using the
    folder (``serve --workers``, ``invoke``), so a form signed by one is accepted by another.
    The index makes forms single-use, counts each caller's open ones, bounds the folder's
    bytes, and lets each request sweep a few expired entries through an index, never a walk.
    """

    def __init__(
        self,
        root: Path,
        *,
        max_bytes: int,
        expires_in: int,
        quota: UploadQuota | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.expires_in = expires_in
        self.quota = quota or UploadQuota()
        self._clock = clock
        self._objects = root / "objects"
        self._index = root / "index.sqlite3"
        self._key: bytes | None = None

    def _secret(self) -> bytes:
        # Made on first use, so building a handler touches no disk.
        if self._key is None:
            self._objects.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._key = self._load_secret(self.root / "signing-key")
            with self._transaction() as db:
                for statement in _SCHEMA.split(";"):
                    db.execute(statement)
        return self._key

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; other processes wait for it (up to 10 s)."""
        db = sqlite3.connect(self._index, timeout=10, isolation_level=None)
        try:
            # WAL: readers never wait for a writer, and a commit is one append. A power cut may
            # lose the last entries (those forms are then refused), never corrupt the index.
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.close()

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

    def create(self, base_url: str, caller: str | None = None) -> UploadForm:
        self._secret()  # the folder, the key and the index exist from here on
        now = self._clock()
        tag = caller_tag(caller)
        limit = self.quota.limit(caller)
        with self._transaction() as db:
            self._sweep(db, now)
            held, soonest = db.execute(
                "SELECT COUNT(*), MIN(deadline) FROM forms "
                "WHERE caller = ? AND state IN ('open', 'stored')",
                (tag,),
            ).fetchone()
            if held >= limit:
                raise _too_many(caller, limit, soonest - now)
            self._check_room(db, now, self.max_bytes)
            expires = now + self.expires_in
            upload_id = _new_id(expires)
            db.execute(
                "INSERT INTO forms (id, caller, state, expires, deadline) "
                "VALUES (?, ?, 'open', ?, ?)",
                (upload_id, tag, expires, expires),
            )
        key = KEY_PREFIX + upload_id
        expiration = datetime.fromtimestamp(expires, UTC)
        document = {
            "expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "conditions": [{"key": key}, ["content-length-range", 1, self.max_bytes]],
        }
        policy = base64.b64encode(json.dumps(document).encode()).decode("ascii")
        fields = {"key": key, "policy": policy, _SIGNATURE_FIELD: self._sign(policy)}
        url = f"{base_url.rstrip('/')}/api/uploads/{upload_id}"
        return UploadForm(upload_id, url, fields, self.expires_in)

    def _check_room(self, db: sqlite3.Connection, now: float, size: int) -> None:
        (stored,) = db.execute("SELECT COALESCE(SUM(size), 0) FROM forms").fetchone()
        if stored + size > self.quota.store_bytes:
            (soonest,) = db.execute(
                "SELECT MIN(deadline) FROM forms WHERE state = 'stored'"
            ).fetchone()
            raise UploadStoreFull(
                f"The upload store holds {stored / 1e6:.0f} MB of its "
                f"{self.quota.store_bytes / 1e6:.0f} MB; try again later.",
                retry_after=(soonest - now) if soonest else 60,
            )

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
        now = self._clock()
        if now > expiration.replace(tzinfo=UTC).timestamp():
            raise UploadFormRejected("The upload form has expired; ask POST /api/uploads again.")
        key_condition, (_, low, high) = document["conditions"]
        if fields["key"] != key_condition["key"] or fields["key"] != KEY_PREFIX + upload_id:
            raise UploadFormRejected("The form's key is not the one its policy was signed for.")
        if len(data) < low:
            raise EmptyInput("The uploaded file is empty.")
        if len(data) > high:
            raise _too_large(len(data), high)
        with self._transaction() as db:
            self._sweep(db, now)
            row = db.execute("SELECT state FROM forms WHERE id = ?", (upload_id,)).fetchone()
            if row is None:  # signed, unexpired, yet unknown: its index was deleted
                raise UploadFormRejected("This store has no record of the form; ask again.")
            if row[0] != "open":
                raise UploadAlreadyUsed(
                    "This form was used already: a form takes one upload. Ask POST "
                    "/api/uploads for another."
                )
            self._check_room(db, now, len(data))
            temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
            temporary.write_bytes(data)
            temporary.replace(path)
            db.execute(
                "UPDATE forms SET state = 'stored', size = ?, deadline = ? WHERE id = ?",
                (len(data), now + RETENTION_S, upload_id),
            )

    def fetch(self, upload_id: str, caller: str | None = None) -> bytes:
        path = self._path(upload_id)
        self._secret()
        now = self._clock()
        with self._transaction() as db:
            row = db.execute(
                "SELECT state, deadline FROM forms WHERE id = ? AND caller = ?",
                (upload_id, caller_tag(caller)),
            ).fetchone()
            if row is None or row[0] != "stored":
                raise UploadNotFound(_NOT_FOUND)
            if row[1] < now:
                self._forget(db, upload_id)
                raise UploadExpired("This upload is over a day old and was deleted; upload again.")
        try:
            data = read_capped(path.open("rb"), self.max_bytes)  # the cap may have been lowered
        except FileNotFoundError:
            raise UploadNotFound(_NOT_FOUND) from None
        return data

    def delete(self, upload_id: str, caller: str | None = None) -> None:
        """Forget the upload; its form stays marked used until it expires, so it takes no other."""
        path = self._path(upload_id)
        self._secret()
        now = self._clock()
        with self._transaction() as db:
            db.execute(
                "UPDATE forms SET state = 'used', size = 0, deadline = MAX(expires, ?) "
                "WHERE id = ? AND caller = ?",
                (now, upload_id, caller_tag(caller)),
            )
            path.unlink(missing_ok=True)

    def _forget(self, db: sqlite3.Connection, upload_id: str) -> None:
        db.execute("DELETE FROM forms WHERE id = ?", (upload_id,))
        (self._objects / upload_id).unlink(missing_ok=True)

    def _sweep(self, db: sqlite3.Connection, now: float) -> None:
        """Forget a few entries past their deadline (S3's lifecycle rule, locally): the oldest
        ``SWEEP_BATCH``, found through the deadline index, whatever the store holds."""
        rows = db.execute(
            "SELECT id FROM forms WHERE deadline < ? ORDER BY deadline LIMIT ?",
            (now, SWEEP_BATCH),
        ).fetchall()
        for (upload_id,) in rows:
            self._forget(db, upload_id)


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
    """Uploads in an S3 bucket, through presigned POST forms, counted and single-use.

    Each form writes an empty marker ``forms/<caller>/<id>``, and its upload goes to
    ``uploads/<caller>/<id>`` (``<caller>`` a digest of the principal, or ``anonymous``).
    Ids start with their form's expiry, so listings sort by it:

    - the quota is two bounded listings: the markers after now (open forms) and the uploads
      after a day ago (not yet classified nor expired), each at most the limit's keys;
    - a form is single-use: classifying deletes its marker, then its upload, and an upload
      without a marker (sent again through the same form) is refused and deleted.

    S3 cannot revoke a presigned POST before it expires, so a second upload does reach the
    bucket; it can never be classified, counts against its caller, and the lifecycle rule
    removes it.
    """

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        *,
        max_bytes: int,
        expires_in: int,
        quota: UploadQuota | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.max_bytes = max_bytes
        self.expires_in = expires_in
        self.quota = quota or UploadQuota()
        self._clock = clock

    def _count(self, prefix: str, after: float, limit: int) -> tuple[int, int | None]:
        """Keys under ``prefix`` whose id's time is after ``after`` (at most ``limit``), and
        the first one's time."""
        listing = self.client.list_objects_v2(
            Bucket=self.bucket,
            Prefix=prefix,
            StartAfter=f"{prefix}{max(0, int(after)):08x}",
            MaxKeys=limit,
        )
        keys = [item["Key"] for item in listing.get("Contents", [])]
        first = _id_expires(keys[0].removeprefix(prefix)) if keys else None
        return len(keys), first

    def create(self, base_url: str, caller: str | None = None) -> UploadForm:
        now = self._clock()
        tag = caller_tag(caller)
        limit = self.quota.limit(caller)
        forms, next_form = self._count(f"{FORM_PREFIX}{tag}/", now, limit)
        # An upload's id says its form's expiry; it is kept a day after it came, so at most
        # a day after that expiry.
        uploads, next_upload = self._count(f"{KEY_PREFIX}{tag}/", now - RETENTION_S, limit)
        if forms + uploads >= limit:
            # A slot frees when a form expires, or an upload is classified or a day old.
            frees = [next_form] if next_form is not None else []
            if next_upload is not None:
                frees.append(next_upload + RETENTION_S)
            raise _too_many(caller, limit, min(frees, default=now + 60) - now)
        expires = now + self.expires_in
        upload_id = _new_id(expires)
        # Written before the form is handed out: counted from now, and the proof of a live form.
        self.client.put_object(Bucket=self.bucket, Key=f"{FORM_PREFIX}{tag}/{upload_id}", Body=b"")
        post = self.client.generate_presigned_post(
            Bucket=self.bucket,
            Key=f"{KEY_PREFIX}{tag}/{upload_id}",
            Conditions=[["content-length-range", 1, self.max_bytes]],
            ExpiresIn=self.expires_in,
        )
        return UploadForm(upload_id, post["url"], dict(post["fields"]), self.expires_in)

    def receive(self, upload_id: str, parts: Sequence[FormPart]) -> None:
        raise UploadsUnavailable(
            "Uploads go straight to S3 here: POST the form to the url that "
            "POST /api/uploads returned."
        )

    def fetch(self, upload_id: str, caller: str | None = None) -> bytes:
        from botocore.exceptions import ClientError

        tag = caller_tag(caller)
        key = f"{KEY_PREFIX}{tag}/{check_upload_id(upload_id)}"
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            # Without s3:ListBucket on uploads/ S3 would answer a missing key with AccessDenied
            # rather than NoSuchKey; both mean no such upload.
            if _error_code(error) in {"NoSuchKey", "404", "AccessDenied", "403"}:
                raise UploadNotFound(_NOT_FOUND) from None
            raise
        body = response["Body"]
        with contextlib.closing(body):
            # The lifecycle rule deletes within a day or two of expiry; the contract is a day.
            # (Checked first: the rule may take the marker a little before the upload.)
            age = datetime.now(UTC) - response["LastModified"]
            if age.total_seconds() > RETENTION_S:
                raise UploadExpired("This upload is over a day old; upload again.")
            if not self._marked(f"{FORM_PREFIX}{tag}/{upload_id}"):
                # Its form was used already: this is a second upload through it.
                self.client.delete_object(Bucket=self.bucket, Key=key)
                raise UploadAlreadyUsed(
                    "This upload came through a form that was used already: a form takes one "
                    "upload. Ask POST /api/uploads for another."
                )
            size = int(response.get("ContentLength", 0))
            if size > self.max_bytes:
                raise _too_large(size, self.max_bytes)
            return read_capped(body, self.max_bytes)  # ContentLength is S3's word, not a bound

    def _marked(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if _error_code(error) in {"NoSuchKey", "404", "NotFound", "AccessDenied", "403"}:
                return False
            raise
        return True

    def delete(self, upload_id: str, caller: str | None = None) -> None:
        """The form's marker first (the form is used from then on), then the upload."""
        tag = caller_tag(caller)
        check_upload_id(upload_id)
        self.client.delete_object(Bucket=self.bucket, Key=f"{FORM_PREFIX}{tag}/{upload_id}")
        self.client.delete_object(Bucket=self.bucket, Key=f"{KEY_PREFIX}{tag}/{upload_id}")


class UnavailableUploadStore:
    """No bucket configured on Lambda: a local folder there would serve one environment only."""

    max_bytes = 0

    @staticmethod
    def _refuse() -> NoReturn:
        raise UploadsUnavailable("Uploads are not configured on this deployment.")

    def create(self, base_url: str, caller: str | None = None) -> UploadForm:
        self._refuse()

    def receive(self, upload_id: str, parts: Sequence[FormPart]) -> None:
        self._refuse()

    def fetch(self, upload_id: str, caller: str | None = None) -> bytes:
        self._refuse()

    def delete(self, upload_id: str, caller: str | None = None) -> None:
        return None


def upload_store(settings: Settings, client: S3Client | None = None) -> UploadStore:
    """The store the settings choose: S3 when a bucket is set, else a local folder."""
    quota = UploadQuota.of(settings)
    if settings.upload_bucket:
        return S3UploadStore(
            client or s3_client(settings),
            settings.upload_bucket,
            max_bytes=settings.max_upload_bytes,
            expires_in=settings.upload_expires_s,
            quota=quota,
        )
    if settings.on_lambda:
        return UnavailableUploadStore()
    return LocalUploadStore(
        settings.upload_dir,
        max_bytes=settings.max_upload_bytes,
        expires_in=settings.upload_expires_s,
        quota=quota,
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
            raise InvalidS3Reference(f"Expected s3.bucket to be a name, received: {shown(bucket)}")
        if not isinstance(key, str) or not key or len(key.encode()) > _S3_KEY_MAX:
            raise InvalidS3Reference(f"Expected s3.key to be an object key, received: {shown(key)}")
        # "." and ".." mean nothing to S3, but a path-style endpoint or a proxy may resolve
        # them into another bucket or key.
        if any(segment in {".", ".."} for segment in key.split("/")):
            raise InvalidS3Reference(
                f'Expected s3.key without "." or ".." segments, received: {shown(key)}'
            )
        if version is not None and (not isinstance(version, str) or not version):
            raise InvalidS3Reference(
                f"Expected s3.version to be a string, received: {shown(version)}"
            )
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
                f"Reading from bucket {shown(reference.bucket)} is not allowed here; the operator "
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
            where = shown(f"s3://{reference.bucket}/{reference.key}")
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
            return read_capped(body, self.max_bytes)  # ContentLength is S3's word, not a bound


def s3_objects(settings: Settings) -> S3Objects:
    return S3Objects(
        settings.readable_buckets,
        settings.max_upload_bytes,
        client_factory=lambda: s3_client(settings),
    )
