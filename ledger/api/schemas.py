"""What every API schema shares: strict input, and fields that refuse what looks almost right.

Every request schema refuses unknown fields, so ``balance``, ``org_id``, ``status`` or
``hash`` smuggled into a body is an error naming it, never silently ignored. Integers refuse
``true``, ``"10"``, ``1.5`` and ``1e309`` and have bounds; text has a length; times carry a
zone; dates are ISO dates.
"""

from __future__ import annotations

import zoneinfo

from marshmallow import RAISE, Schema, ValidationError, fields, validate

#: The most rows one page of a list returns.
MAX_PAGE_SIZE = 200


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE
        ordered = True


class NoFields(StrictSchema):
    """A write that needs nothing but its path; any field sent is refused by name."""


class Whole(fields.Integer):
    """A true JSON integer within bounds: not a boolean, not a string, not a float."""

    default_error_messages = {"invalid": "must be a whole number, written without quotes or a decimal point"}

    def __init__(self, *, minimum: int = 0, maximum: int = 10**12, **kwargs):
        super().__init__(strict=True, validate=validate.Range(minimum, maximum), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class QueryWhole(fields.Integer):
    """A whole number in a query string, where everything arrives as text."""

    def __init__(self, *, minimum: int = 0, maximum: int = 10**12, **kwargs):
        super().__init__(strict=False, validate=validate.Range(minimum, maximum), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, str) or not value.isdigit() or len(value) > 13:
            raise ValidationError("must be a whole number")
        return super()._deserialize(value, attr, data, **kwargs)


def text(*, maximum: int = 200, minimum: int = 1, **kwargs) -> fields.String:
    """Text of bounded length."""
    return fields.String(validate=validate.Length(minimum, maximum), **kwargs)


class AwareDateTime(fields.AwareDateTime):
    """An ISO 8601 date and time with its offset, such as ``2026-03-07T09:00:00+08:00``."""

    default_error_messages = {"invalid": "must be an ISO 8601 date and time with its offset, e.g. 2026-03-07T09:00:00+08:00"}


class TimeZoneName(fields.String):
    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        if value not in zoneinfo.available_timezones() or value == "localtime":
            raise ValidationError("must be an IANA time zone such as Asia/Shanghai")
        return value


class PageQuery(StrictSchema):
    """Which page of a list: pages are numbered from 1; a page holds at most MAX_PAGE_SIZE rows."""

    page = QueryWhole(minimum=1, maximum=10**6, load_default=1)
    page_size = QueryWhole(minimum=1, maximum=MAX_PAGE_SIZE, load_default=50)


class PageInfo(Schema):
    page = fields.Integer()
    page_size = fields.Integer()
    total = fields.Integer()
