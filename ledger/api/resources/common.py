"""What resource views share: finding an object the caller may act on, and paging a list."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy import func, select

from ledger.api.auth import current_principal
from ledger.api.policy import Action
from ledger.db import db
from ledger.errors import NotFound
from ledger.models import OrgNode

T = TypeVar("T")


def object_in_scope(model: type[T], object_id: int, action: Action, *, field: str = "id", org_of=None) -> T:
    """Return the object with ``object_id`` if the caller may do ``action`` on it; else not found / forbidden.

    ``org_of`` finds the object's org (default: its ``org`` attribute, or the object itself for an org).
    """
    instance = db.session.get(model, object_id)
    if instance is None:
        raise NotFound(f"{model.__name__} {object_id} does not exist", field=field)
    org = org_of(instance) if org_of else (instance if isinstance(instance, OrgNode) else instance.org)
    current_principal().authorize(action, org, participant_id=getattr(instance, "participant_id", None))
    return instance


def page_of(statement, query: dict) -> dict:
    """Return one page of ``statement``'s rows with the total, as ``{"items": …, "page": …}``."""
    total = db.session.scalar(select(func.count()).select_from(statement.order_by(None).subquery()))
    page, size = query["page"], query["page_size"]
    items = list(db.session.execute(statement.limit(size).offset((page - 1) * size)).scalars())
    return {"items": items, "page": {"page": page, "page_size": size, "total": total}}
