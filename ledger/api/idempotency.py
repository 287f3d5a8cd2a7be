"""Every POST that writes carries an ``Idempotency-Key`` header; a retry gets the first answer.

The first response to a key is stored with a digest of the request (method, path, body) in
the same database transaction as the write itself, so a write and its stored answer commit
or roll back together. A retry with the same key and the same request returns that response
again, marked ``Idempotent-Replayed: true``, and writes nothing; the same key with another
request is refused (422); a write without a key is refused (400), before its body is read, so
a client fixing its request hears of the key first. Keys are scoped to the user, and are
handed down to the service as its own idempotency key.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Callable

from flask import Response, request
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ledger.api.auth import current_principal
from ledger.api.policy import Principal
from ledger.db import db, write_transaction
from ledger.errors import IdempotencyConflict, LedgerError
from ledger.models import IdempotencyRecord
from ledger.transactions import IDEMPOTENCY_KEY_PATTERN

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"


class IdempotencyKeyMissing(LedgerError):
    """Raised when a write arrives without a usable Idempotency-Key header."""

    code = "idempotency_key_missing"
    http_status = 400


def takes_no_idempotency_key(view: Callable) -> Callable:
    """Mark a POST view that writes nothing (it checks, validates or simulates): it takes no Idempotency-Key."""
    view.takes_no_idempotency_key = True
    return view


def idempotency_key() -> str:
    """Return this request's Idempotency-Key, or refuse the request (400)."""
    key = request.headers.get(HEADER, "")
    if not IDEMPOTENCY_KEY_PATTERN.fullmatch(key):
        raise IdempotencyKeyMissing(
            "send an Idempotency-Key header of 1 to 128 letters, digits and . _ : / @ + = -, new for each write",
            field=HEADER,
        )
    return key


def idempotent_write(work: Callable[[Principal, str], Any], dump: Callable[[Any], dict], *, status: int = 201) -> Response:
    """Run ``work(principal, key)`` once per Idempotency-Key and answer with ``dump`` of its result."""
    principal = current_principal()
    key = idempotency_key()
    digest = _request_digest()

    def once() -> tuple[IdempotencyRecord, bool]:
        earlier = _stored(principal, key, digest)
        if earlier is not None:
            return earlier, True
        body = json.dumps(dump(work(principal, key)), ensure_ascii=False, default=str)
        record = IdempotencyRecord(
            user_id=principal.user.id, key=key, request_digest=digest, status_code=status, response_body=body
        )
        db.session.add(record)
        db.session.flush()
        return record, False

    try:
        record, replayed = write_transaction(once)
    except IntegrityError:
        # The same key raced in from another request and committed first: answer as it did.
        record, replayed = _stored(principal, key, digest), True
        if record is None:
            raise
    response = Response(record.response_body, status=record.status_code, mimetype="application/json")
    if replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return response


def _stored(principal: Principal, key: str, digest: str) -> IdempotencyRecord | None:
    record = db.session.execute(
        select(IdempotencyRecord).where(IdempotencyRecord.user_id == principal.user.id, IdempotencyRecord.key == key)
    ).scalar_one_or_none()
    if record is not None and record.request_digest != digest:
        raise IdempotencyConflict(
            "this Idempotency-Key was already used for a different request", field=HEADER
        )
    return record


def _request_digest() -> str:
    body = request.get_json(silent=True)
    if request.files:
        # An upload: its form fields and each file's content, not the multipart framing (whose
        # boundary a client draws anew for every request, a retry's included) nor the file's name.
        body = {"form": sorted(request.form.items(multi=True)), "files": sorted(_file_digests())}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{request.method}\n{request.path}\n{canonical}".encode()).hexdigest()


def _file_digests():
    for name, upload in request.files.items(multi=True):
        upload.stream.seek(0)
        yield name, hashlib.sha256(upload.stream.read()).hexdigest()
        upload.stream.seek(0)
