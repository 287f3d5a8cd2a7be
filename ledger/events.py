"""Recording an event's sign-in sheet: every attendee's service at once, or, on any refusal, none.

A sheet goes through the bulk path (:func:`ledger.bulk.score_and_post_batch`): one set of
set-based statements for the whole sheet instead of a dozen round trips per attendee, with
the same checks, scores, postings, chain links and period totals as recording each line alone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import chain
from ledger.activities import (
    MAX_EVENT_ATTENDEES,
    RecordedActivity,
    Service,
    check_key,
    check_service,
    check_times,
    earlier_request,
    on_line,
)
from ledger.bulk import PendingActivity, score_and_post_batch
from ledger.errors import InvalidInput
from ledger.models import Activity, ActivitySource, AppUser, OrgKind, OrgNode, ServiceEvent, Transaction, TransactionKindCode, utc_now
from ledger.orgs import check_name
from ledger.transactions import lock_chain


@dataclass(frozen=True)
class Attendee:
    """One line of a sign-in sheet; times default to the event's (people arrive late, leave early)."""

    participant_id: int
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    travel_minutes: int = 0
    quantity: int | None = None


@dataclass(frozen=True)
class RecordedEvent:
    event: ServiceEvent
    #: One per attendee, in participant order.
    activities: tuple[RecordedActivity, ...]
    replayed: bool


def record_event(
    session: Session,
    *,
    actor: AppUser,
    org: OrgNode,
    title: str,
    activity_type: str,
    started_at: dt.datetime,
    ended_at: dt.datetime,
    attendees: Sequence[Attendee],
    idempotency_key: str,
    tags: Iterable[str] = (),
    description: str | None = None,
    now: dt.datetime | None = None,
) -> RecordedEvent:
    """Record an event's whole sign-in sheet at once: every line or, on any refusal, none.

    A refusal names the line (``attendees[3].started_at``); the caller's write transaction
    rolls back everything already added for the event.
    """
    now = now or utc_now()
    title = check_name(title, field="title")
    check_key(idempotency_key)
    if org.kind == OrgKind.DISTRICT:
        raise InvalidInput("service is recorded in a street, community or grid", field="org")
    services = _services(attendees, activity_type, started_at, ended_at, tags, description)
    check_times(started_at, ended_at, now)
    for index, service in enumerate(services):
        with on_line("attendees", index):
            check_service(service, now)
            if service.started_at < started_at or service.ended_at > ended_at:
                raise InvalidInput("an attendee's time lies within the event's", field="started_at")
    digest = chain.digest({"org": org.id, "title": title, "event": [service.document() for service in services]})
    lock_chain(session, org)  # a retry racing its first request waits here, then finds its answer
    earlier = earlier_request(session, ServiceEvent, org, actor, idempotency_key, digest)
    if earlier is not None:
        return RecordedEvent(earlier, _recorded_activities(session, earlier, replayed=True), replayed=True)

    event = ServiceEvent(
        org_id=org.id,
        title=title,
        activity_type=activity_type,
        started_at=started_at,
        ended_at=ended_at,
        recorded_by_id=actor.id,
        recorded_at=now,
        idempotency_key=idempotency_key,
        request_digest=digest,
    )
    session.add(event)
    session.flush()
    pending = [
        PendingActivity(
            line=index,
            org_id=org.id,
            service=service,
            idempotency_key=f"event-{event.id}/{service.participant_id}",
            request_digest=chain.digest({"event": event.id, **service.document()}),
            source=ActivitySource.EVENT,
            event_id=event.id,
        )
        for index, service in enumerate(services)
    ]
    score_and_post_batch(session, actor=actor, orgs={org.id: org}, pending=pending, lines="attendees", now=now)
    return RecordedEvent(event, _recorded_activities(session, event, replayed=False), replayed=False)


def _services(
    attendees: Sequence[Attendee],
    activity_type: str,
    started_at: dt.datetime,
    ended_at: dt.datetime,
    tags: Iterable[str],
    description: str | None,
) -> list[Service]:
    if not attendees:
        raise InvalidInput("an event needs at least one attendee", field="attendees")
    if len(attendees) > MAX_EVENT_ATTENDEES:
        raise InvalidInput(f"at most {MAX_EVENT_ATTENDEES} attendees per event", field="attendees")
    seen = set()
    for index, attendee in enumerate(attendees):
        if attendee.participant_id in seen:
            raise InvalidInput("appears twice on the sheet", field=f"attendees[{index}].participant_id")
        seen.add(attendee.participant_id)
    return [
        Service(
            participant_id=attendee.participant_id,
            activity_type=activity_type,
            started_at=attendee.started_at or started_at,
            ended_at=attendee.ended_at or ended_at,
            travel_minutes=attendee.travel_minutes,
            quantity=attendee.quantity,
            tags=frozenset(tags),
            description=description,
        )
        for attendee in attendees
    ]


def _recorded_activities(session: Session, event: ServiceEvent, *, replayed: bool) -> tuple[RecordedActivity, ...]:
    rows = session.execute(
        select(Activity, Transaction)
        .outerjoin(Transaction, (Transaction.activity_id == Activity.id) & (Transaction.kind == TransactionKindCode.EARN))
        .where(Activity.event_id == event.id)
        .order_by(Activity.participant_id)
    ).all()
    return tuple(RecordedActivity(activity, transaction, replayed=replayed) for activity, transaction in rows)
