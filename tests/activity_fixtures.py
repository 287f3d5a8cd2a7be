"""Shared set-up of the recording and rule-set tests: local times, rule documents, and a desk.

The desk is what community staff sit at: it records service in one committed write
transaction each (as the API will), publishes rule sets and reads period totals back.
Times are wall-clock times in Shanghai, written ``"2026-03-04 09:00"``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
from dataclasses import dataclass, field
from typing import Callable, Iterator
from zoneinfo import ZoneInfo

import pytest

from ledger.activities import RecordedActivity, Service, record_activity
from ledger.errors import InvalidInput, LedgerError
from ledger.models import Account, AppUser, OrgNode, PeriodTotal, RuleSetVersion
from ledger.rules import create_draft, publish_document
from ledger.ruleset_schema import default_rules_text, read_yaml
from tests.refusals import refused

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(local: str) -> dt.datetime:
    """Return the aware moment of a Shanghai wall-clock time such as ``"2026-03-04 09:00"``."""
    return dt.datetime.fromisoformat(local).replace(tzinfo=SHANGHAI)


def service(participant_id: int, start: str, end: str, activity_type: str = "patrol", **fields) -> Service:
    """Return service between two Shanghai times; an ``end`` of only ``"HH:MM"`` is on the start's day."""
    if len(end) == 5:
        end = f"{start[:10]} {end}"
    return Service(participant_id, activity_type, started_at=at(start), ended_at=at(end), **fields)


def rules_text(changes: dict[str, object] | None = None) -> str:
    """Return the default rule document (as JSON) with values replaced by dotted path.

    ``rules_text({"activity_types.patrol.points": 20, "effective_from": "2026-07-01"})``
    """
    document = read_yaml(default_rules_text())
    for path, value in (changes or {}).items():
        *parents, last = path.split(".")
        node = document
        for key in parents:
            node = node[key]
        node[last] = value
    return json.dumps(document, ensure_ascii=False)


@dataclass(frozen=True)
class Resident:
    """A registered volunteer: the participant and their points account."""

    participant_id: int
    account_id: int


@dataclass(frozen=True)
class Totals:
    points_earned: int = 0
    service_minutes: int = 0
    activity_count: int = 0


@dataclass
class Desk:
    session: object
    write: Callable
    street: object
    staff_id: int
    #: The id of the default rules' version published at the district (``None``: no rules published).
    default_rules: int | None
    keys: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def org(self, org_id: int | None = None) -> OrgNode:
        """Return an org node; the first grid unless told otherwise."""
        return self.session.get(OrgNode, org_id or self.street.grid)

    def user(self, user_id: int | None = None) -> AppUser:
        """Return a user; the staff member unless told otherwise."""
        return self.session.get(AppUser, user_id or self.staff_id)

    def key(self) -> str:
        return f"k-{next(self.keys)}"

    def record(
        self,
        what: Service,
        *,
        org_id: int | None = None,
        key: str | None = None,
        actor_id: int | None = None,
        now: dt.datetime | None = None,
    ) -> RecordedActivity:
        """Record one activity as staff, in a committed write transaction of its own."""
        key = key or self.key()
        actor, org = self.user(actor_id), self.org(org_id)
        return self.write(
            lambda: record_activity(self.session, actor=actor, org=org, service=what, idempotency_key=key, now=now)
        )

    def refuse(self, attempt: Callable[[], object], error: type[LedgerError] = InvalidInput) -> LedgerError:
        """Run ``attempt`` (which writes through the desk), expect ``error``, check nothing was written; return it."""
        return refused(self.session, lambda work: work(), attempt, error)

    def draft(self, org_id: int, changes: dict | None = None, *, yaml: str | None = None) -> RuleSetVersion:
        """Store the default rules with ``changes`` (or the ``yaml`` text) as a draft of an org's next version."""
        text, kind = (rules_text(changes), "json") if yaml is None else (yaml, "yaml")
        return self.write(
            lambda: create_draft(self.session, actor=self.user(), org=self.org(org_id), text=text, format=kind)
        )

    def publish(self, org_id: int, changes: dict[str, object] | None = None) -> RuleSetVersion:
        """Publish the default rules with ``changes`` (see :func:`rules_text`) at an org."""
        text = rules_text(changes)
        return self.write(
            lambda: publish_document(self.session, actor=self.user(), org=self.org(org_id), text=text, format="json")
        )

    def add_user(self, username: str, participant_id: int | None = None) -> int:
        """Add a user, signed in as ``participant_id`` when given; return its id."""

        def add():
            user = AppUser(username=username, display_name=username, participant_id=participant_id)
            self.session.add(user)
            self.session.flush()
            return user.id

        return self.write(add)

    def totals(self, account_id: int, period: str, starts_on: dt.date) -> Totals:
        """Return an account's totals for one day or month (zeros when it has no row)."""
        row = self.session.get(PeriodTotal, (account_id, period, starts_on), populate_existing=True)
        if row is None:
            return Totals()
        return Totals(row.points_earned, row.service_minutes, row.activity_count)


@pytest.fixture
def desk(session, write, street, actor_id, default_rules) -> Desk:
    """A staff member's desk in a street whose district publishes the default rules."""
    return Desk(session, write, street, actor_id, default_rules)


@pytest.fixture
def bare_desk(session, write, street, actor_id) -> Desk:
    """A staff member's desk in a street where no rule set is published yet."""
    return Desk(session, write, street, actor_id, None)


@pytest.fixture
def make_resident(session, make_volunteer) -> Callable[..., Resident]:
    """Return a callable registering a volunteer (in the first grid unless told otherwise)."""

    def make(org_id: int | None = None, name: str = "李明") -> Resident:
        account_id = make_volunteer(org_id, name)
        return Resident(session.get(Account, account_id).participant_id, account_id)

    return make


@pytest.fixture
def resident(make_resident) -> Resident:
    return make_resident()
