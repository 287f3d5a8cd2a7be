"""One error format for everything: RFC 9457 problem details, in the request's language.

Every error leaves as ``application/problem+json`` with the HTTP ``status``, a stable
machine-readable ``code``, a localised ``title`` and ``detail`` (zh-CN unless the request
prefers English), and for bad input the ``errors`` of each field. Ledger refusals map by
their class, HTTP errors by their status; anything unexpected is a bare 500 whose details go
to the log, never to the client.
"""

from __future__ import annotations

from http import HTTPStatus

from flask import current_app, jsonify, request
from marshmallow import Schema, fields
from werkzeug.exceptions import HTTPException, InternalServerError

from ledger.errors import LedgerError

LANGUAGES = ("zh", "en")

#: Titles by code, in Chinese and English. Codes not listed fall back to the HTTP status phrase.
TITLES = {
    "invalid_input": ("输入有误", "Invalid input"),
    "rule_set_invalid": ("积分规则有误", "Invalid rule set"),
    "not_found": ("未找到", "Not found"),
    "conflict": ("操作冲突", "Conflict"),
    "already_exists": ("已经存在", "Already exists"),
    "idempotency_conflict": ("幂等键已用于其他请求", "Idempotency key reused"),
    "idempotency_key_missing": ("缺少幂等键", "Idempotency-Key header missing"),
    "insufficient_balance": ("积分不足", "Not enough points"),
    "already_reversed": ("已经冲正", "Already reversed"),
    "not_reversible": ("不能冲正", "Cannot be reversed"),
    "append_only": ("台账只增不改", "The ledger is append-only"),
    "busy": ("系统繁忙，请稍后重试", "Busy, try again"),
    "not_allowed": ("无权进行此操作", "Not allowed"),
    "out_of_stock": ("库存不足", "Out of stock"),
    "limit_reached": ("已达兑换上限", "Limit reached"),
    "star_level_too_low": ("星级不够", "Star level too low"),
    "reward_not_active": ("该奖励不在兑换期内", "Reward not active"),
    "transition_refused": ("当前状态不允许此操作", "Not allowed in this state"),
    "unauthenticated": ("请先登录", "Sign-in required"),
    "forbidden": ("没有权限", "Forbidden"),
    "too_many_requests": ("请求过于频繁", "Too many requests"),
    "payload_too_large": ("请求内容过大", "Request too large"),
    "method_not_allowed": ("不支持此方法", "Method not allowed"),
    "bad_request": ("请求有误", "Bad request"),
    "unprocessable_entity": ("输入有误", "Invalid input"),
    "duplicate_parameter": ("查询参数重复", "Duplicate query parameter"),
    "internal_error": ("服务器内部错误，已记录", "Internal error, logged"),
}


class ProblemSchema(Schema):
    """An RFC 9457 problem document, as every error of the API is."""

    type = fields.String()
    status = fields.Integer()
    code = fields.String(metadata={"description": "Stable and machine-readable, such as insufficient_balance."})
    title = fields.String()
    detail = fields.String()
    instance = fields.String()
    errors = fields.Dict(
        keys=fields.String(), values=fields.List(fields.String()), metadata={"description": "Messages by field path."}
    )


def language() -> str:
    """Return the language of this request's messages: zh-CN unless English is preferred."""
    best = request.accept_languages.best_match(["zh-CN", "zh", "en"], default="zh-CN")
    return "en" if best == "en" else "zh"


def title_of(code: str, status: int) -> str:
    titles = TITLES.get(code)
    if titles is None:
        try:
            return HTTPStatus(status).phrase
        except ValueError:
            return "Error"
    return titles[LANGUAGES.index(language())]


def problem(status: int, code: str, detail: str | None = None, *, errors: dict | None = None, **extra):
    """Return an RFC 9457 problem response."""
    body = {
        "type": "about:blank",
        "status": status,
        "code": code,
        "title": title_of(code, status),
        "detail": detail or title_of(code, status),
        "instance": request.path,
    }
    if errors:
        body["errors"] = errors
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


def _ledger_error(error: LedgerError):
    errors = getattr(error, "errors", None) or ({error.field: [error.message]} if error.field else None)
    return problem(error.http_status, error.code, str(error), errors=errors)


def _flatten(messages, prefix: str = "") -> dict[str, list[str]]:
    """Turn webargs' nested ``{"json": {"field": [...]}}`` into ``{"field": [...]}`` by dotted path."""
    if isinstance(messages, list):
        return {prefix or "body": [str(message) for message in messages]}
    flat: dict[str, list[str]] = {}
    for key, value in messages.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if not prefix and key in ("json", "query", "headers", "form", "files"):
            path = "" if key == "json" else key
        flat.update(_flatten(value, path))
    return flat


def _http_error(error: HTTPException):
    if not wants_json():
        return error
    payload = getattr(error, "data", None) or {}
    messages = payload.get("messages") if isinstance(payload, dict) else None
    code = (error.name or "error").lower().replace(" ", "_").replace("'", "")
    status = error.code or 500
    errors = _flatten(messages) if messages else None
    if status == 422 and errors:
        code = "invalid_input"
    # Werkzeug's own descriptions are English sentences; the localised title says the same.
    described = error.description if error.description != type(error).description else None
    return problem(status, code, described if not errors else None, errors=errors)


def _unexpected_error(error: Exception):
    if isinstance(error, HTTPException):
        return _http_error(error)
    current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
    if not wants_json():
        return InternalServerError()
    return problem(500, "internal_error")


def wants_json() -> bool:
    """Tell whether the client of this request should get JSON errors rather than pages."""
    return request.path.startswith(("/api/", "/healthz", "/readyz")) or (
        request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"
    )


def init_app(app) -> None:
    app.register_error_handler(LedgerError, _ledger_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
