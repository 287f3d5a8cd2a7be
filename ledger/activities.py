"""Recording service: one activity, an event's sign-in sheet, self-reports and corrections.

Staff record what happened; the rule set in force on the activity's day in its org decides
what it is worth (:func:`ledger.points.score_activity`); the points and the verified service
time go through the one ledger write path with the breakdown that explains them.

Before anything is written an activity is checked: it is over (not in the future), lasts
more than nothing and at most a day, does not overlap the person's other service, does not
take the person past 24 hours of service on one day, names an activity type the rules know
and the person may earn with, and the person belongs where the service was recorded.

Caps depend on what the person already earned that day, month and year, so scoring reads
their period totals after taking the locks the write will take (the community's chain,
then the person's account): two entries for one person can never both slip under a cap.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session, aliased

from ledger import chain
from ledger.errors import AlreadyExists, Conflict, IdempotencyConflict, InvalidInput, LedgerError, NotFound
from ledger.models import (
    Account,
    AccountKind,
    Activity,
    ActivityReview,
    ActivitySource,
    AppUser,
    OrgKind,
    OrgNode,
    Participant,
    ParticipantKind,
    PeriodKind,
    PeriodTotal,
    RuleSetVersion,
    Transaction,
    TransactionKindCode,
    utc_now,
)
from ledger.orgs import local_date
from ledger.points import EarnedSoFar, ServiceFacts, score_activity, transfer
from ledger.rules import rules_of, version_in_force
from ledger.rulesets import Category
from ledger.transactions import (
    IDEMPOTENCY_KEY_PATTERN,
    lock_accounts,
    lock_chain,
    participant_account,
    record_transaction,
    reverse_transaction,
    system_account,
)

MAX_DESCRIPTION_LENGTH = 500
MAX_TAGS = 10
MAX_EVENT_ATTENDEES = 2000
DAY_MINUTES = 24 * 60


class NotAllowed(LedgerError):
    """Raised when the actor may not do this at all, for example approve their own report."""

    code = "not_allowed"
    http_status = 403


@dataclass(frozen=True)
class Service:
    """What someone reports or staff record about one piece of service, before checks."""

    participant_id: int
    activity_type: str
    started_at: dt.datetime
    ended_at: dt.datetime
    travel_minutes: int = 0
    quantity: int | None = None
    tags: frozenset[str] = frozenset()
    description: str | None = None

    @classmethod
    def of(cls, activity: Activity) -> Service:
        """Return what a stored activity recorded."""
        return cls(
            participant_id=activity.participant_id,
            activity_type=activity.activity_type,
            started_at=activity.started_at,
            ended_at=activity.ended_at,
            travel_minutes=activity.travel_minutes,
            quantity=activity.quantity,
            tags=frozenset(activity.tags),
            description=activity.description,
        )

    def activity_columns(self) -> dict:
        """Return the service as the columns of the activity row that records it."""
        return dict(
            participant_id=self.participant_id,
            activity_type=self.activity_type,
            started_at=self.started_at,
            ended_at=self.ended_at,
            travel_minutes=self.travel_minutes,
            quantity=self.quantity,
            tags=sorted(self.tags),
            description=self.description,
        )

    def facts(self, category: Category, time_zone: str) -> ServiceFacts:
        """Return the service as the scoring engine reads it, for a category and local time zone."""
        return ServiceFacts(
            activity_type=self.activity_type,
            category=category,
            started_at=self.started_at,
            ended_at=self.ended_at,
            time_zone=time_zone,
            travel_minutes=self.travel_minutes,
            quantity=self.quantity,
            tags=self.tags,
        )

    def document(self) -> dict:
        """Return the service as canonical JSON values, for idempotency digests."""
        return {
            "participant": self.participant_id,
            "activity_type": self.activity_type,
            "started_at": chain.format_utc(self.started_at),
            "ended_at": chain.format_utc(self.ended_at),
            "travel_minutes": self.travel_minutes,
            "quantity": self.quantity,
            "tags": sorted(self.tags),
            "description": self.description,
        }


@dataclass(frozen=True)
class RecordedActivity:
    activity: Activity
    #: The transaction that scored it; ``None`` while a self-report waits for review.
    transaction: Transaction | None
    replayed: bool


def record_activity(
    session: Session,
    *,
    actor: AppUser,
    org: OrgNode,
    service: Service,
    idempotency_key: str,
    now: dt.datetime | None = None,
) -> RecordedActivity:
    """Record service done in ``org`` by one participant, and post what it earns."""
    now = now or utc_now()
    check_service(service, now)
    digest = chain.digest({"org": org.id, **service.document()})
    lock_chain(session, org)  # a retry racing its first request waits here, then finds its answer
    earlier = earlier_request(session, Activity, org, actor, idempotency_key, digest)
    if earlier is not None:
        return RecordedActivity(earlier, scoring_transaction(session, earlier), replayed=True)
    activity, scoring = _add_activity(
        session, actor=actor, org=org, service=service, source=ActivitySource.STAFF, key=idempotency_key, digest=digest, now=now
    )
    transaction = score_and_post(session, actor=actor, activity=activity, now=now, scoring=scoring)
    return RecordedActivity(activity, transaction, replayed=False)


@contextmanager
def on_line(lines: str, index: int):
    """Name the line of a list in any refusal raised for it: ``attendees[3].started_at``."""
    try:
        yield
    except LedgerError as refusal:
        refusal.field = f"{lines}[{index}].{refusal.field}" if refusal.field else f"{lines}[{index}]"
        raise


def report_own_service(
    session: Session,
    *,
    actor: AppUser,
    org: OrgNode,
    service: Service,
    idempotency_key: str,
    now: dt.datetime | None = None,
) -> RecordedActivity:
    """Let a participant report their own service; it counts once staff approve it."""
    if actor.participant_id != service.participant_id:
        raise NotAllowed("a self-report is made by the participant who served", field="participant_id")
    now = now or utc_now()
    check_service(service, now)
    digest = chain.digest({"org": org.id, "self_report": True, **service.document()})
    lock_chain(session, org)
    earlier = earlier_request(session, Activity, org, actor, idempotency_key, digest)
    if earlier is not None:
        return RecordedActivity(earlier, scoring_transaction(session, earlier), replayed=True)
    activity, _ = _add_activity(
        session,
        actor=actor,
        org=org,
        service=service,
        source=ActivitySource.SELF_REPORT,
        key=idempotency_key,
        digest=digest,
        now=now,
    )
    return RecordedActivity(activity, None, replayed=False)


def review_report(
    session: Session,
    *,
    actor: AppUser,
    activity_id: int,
    approve: bool,
    reason: str | None = None,
    now: dt.datetime | None = None,
) -> RecordedActivity:
    """Approve a self-report (which posts its points) or reject it with a reason.

    Four eyes: nobody reviews a report they made or one about their own service. A report is
    reviewed once; asking again with the same decision returns the first review.
    """
    now = now or utc_now()
    activity = _activity(session, activity_id)
    if activity.source != ActivitySource.SELF_REPORT:
        raise InvalidInput("only self-reports wait for review", field="activity_id")
    if actor.id == activity.recorded_by_id or actor.participant_id == activity.participant_id:
        raise NotAllowed("nobody reviews their own report; ask another staff member", field="activity_id")
    if type(approve) is not bool:
        raise InvalidInput("must be true or false", field="approve")
    if not approve and not (isinstance(reason, str) and reason.strip()):
        raise InvalidInput("a rejection needs a reason the reporter can read", field="reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_DESCRIPTION_LENGTH):
        raise InvalidInput(f"must be text of at most {MAX_DESCRIPTION_LENGTH} characters", field="reason")
    lock_chain(session, activity.org)
    existing = session.get(ActivityReview, activity.id, populate_existing=True)
    if existing is not None:
        if existing.approved == approve and existing.reviewed_by_id == actor.id:
            return RecordedActivity(activity, scoring_transaction(session, activity), replayed=True)
        verdict = "approved" if existing.approved else "rejected"
        raise AlreadyExists(f"this report was already {verdict}", field="activity_id")
    if _superseded(session, activity.id):
        raise Conflict("this report was corrected; review the correction instead", field="activity_id")
    session.add(
        ActivityReview(
            activity_id=activity.id,
            approved=approve,
            reason=reason.strip() if reason else None,
            reviewed_by_id=actor.id,
            reviewed_at=now,
        )
    )
    session.flush()
    transaction = score_and_post(session, actor=actor, activity=activity, now=now) if approve else None
    return RecordedActivity(activity, transaction, replayed=False)


def correct_activity(
    session: Session,
    *,
    actor: AppUser,
    activity_id: int,
    service: Service,
    reason: str,
    idempotency_key: str,
    now: dt.datetime | None = None,
) -> RecordedActivity:
    """Replace an activity with a corrected one: reverse what it earned, then score the new one."""
    now = now or utc_now()
    original = _activity(session, activity_id)
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_DESCRIPTION_LENGTH:
        raise InvalidInput(f"a correction needs a reason of at most {MAX_DESCRIPTION_LENGTH} characters", field="reason")
    if service.participant_id != original.participant_id:
        raise InvalidInput("a correction is about the same participant; record the other one anew", field="participant_id")
    check_service(service, now)
    org = original.org
    digest = chain.digest({"org": org.id, "corrects": original.id, "reason": reason.strip(), **service.document()})
    lock_chain(session, org)
    earlier = earlier_request(session, Activity, org, actor, idempotency_key, digest)
    if earlier is not None:
        return RecordedActivity(earlier, scoring_transaction(session, earlier), replayed=True)
    correction = session.scalar(select(Activity.id).where(Activity.corrects_id == original.id))
    if correction is not None:
        raise AlreadyExists(f"activity {original.id} was already corrected by activity {correction}", field="activity_id")
    if original.source == ActivitySource.SELF_REPORT and original.review is None:
        raise Conflict("this report is still waiting for review; review it first", field="activity_id")
    if original.review is not None and not original.review.approved:
        raise Conflict("this report was rejected; there is nothing to correct", field="activity_id")
    scored = scoring_transaction(session, original)
    if scored is not None:
        reverse_transaction(
            session, actor=actor, transaction_id=scored.id, idempotency_key=f"correction-of-{original.id}", reason=reason.strip(), now=now
        )
    activity, scoring = _add_activity(
        session,
        actor=actor,
        org=org,
        service=service,
        # The correction is staff's record, scored at once: never a self-report waiting for review.
        source=ActivitySource.STAFF,
        key=idempotency_key,
        digest=digest,
        now=now,
        corrects=original,
        correction_reason=reason.strip(),
    )
    transaction = score_and_post(session, actor=actor, activity=activity, now=now, scoring=scoring)
    return RecordedActivity(activity, transaction, replayed=False)


@dataclass(frozen=True)
class _Scoring:
    """What scoring one person's activity needs, found once and held under its locks."""

    account: Account
    version: RuleSetVersion
    day: dt.date
    category: Category


def _prepare_scoring(session: Session, org: OrgNode, participant: Participant, started_at: dt.datetime) -> _Scoring:
    """Take the write's locks (the community's chain, then the person's account) and find the rules.

    Reading the cap windows after these locks means no other entry for the person can slip in
    between the read and the write.
    """
    account = participant_account(session, participant.id)
    lock_chain(session, org)
    lock_accounts(session, [account.id])
    day = local_date(started_at, org)
    return _Scoring(account, version_in_force(session, org, day), day, participant_category(participant))


def score_and_post(
    session: Session, *, actor: AppUser, activity: Activity, now: dt.datetime, scoring: _Scoring | None = None
) -> Transaction:
    """Score an activity under the rules in force on its day and post the result to the ledger."""
    org = activity.org
    scoring = scoring or _prepare_scoring(session, org, activity.participant, activity.started_at)
    account, version = scoring.account, scoring.version
    facts = Service.of(activity).facts(scoring.category, org.time_zone)
    score = score_activity(facts, rules_of(version), earned_so_far(session, account.id, scoring.day))
    issuance = system_account(session, org, AccountKind.ISSUANCE)
    return record_transaction(
        session,
        actor=actor,
        org=org,
        kind=TransactionKindCode.EARN,
        legs=transfer(issuance.id, account.id, score.points) if score.points else (),
        business_date=score.business_date,
        idempotency_key=f"activity-{activity.id}",
        breakdown=score.breakdown,
        activity_id=activity.id,
        rule_set_version_id=version.id,
        service_minutes=score.service_minutes,
        subject_account_id=account.id,
        now=now,
    ).transaction


def earned_so_far(session: Session, account_id: int, day: dt.date) -> EarnedSoFar:
    """Return what an account already has in the cap windows of ``day``: its day, month and year.

    Whole windows count, later days included: service recorded late, for an earlier month,
    still sees what the rest of the year has earned, so the year cap holds in any order.
    """
    month_start = day.replace(day=1)
    rows = session.execute(
        select(PeriodTotal.period, PeriodTotal.starts_on, PeriodTotal.service_minutes, PeriodTotal.points_earned).where(
            PeriodTotal.account_id == account_id,
            (
                (PeriodTotal.period == PeriodKind.DAY) & (PeriodTotal.starts_on == day)
                | (PeriodTotal.period == PeriodKind.MONTH)
                & (PeriodTotal.starts_on >= day.replace(month=1, day=1))
                & (PeriodTotal.starts_on <= day.replace(month=12, day=1))
            ),
        )
    ).all()
    day_minutes = sum(minutes for period, _, minutes, _ in rows if period == PeriodKind.DAY)
    months = [(starts_on, points) for period, starts_on, _, points in rows if period == PeriodKind.MONTH]
    return EarnedSoFar(
        day_minutes=max(day_minutes, 0),
        month_points=max(sum(points for starts_on, points in months if starts_on == month_start), 0),
        year_points=max(sum(points for _, points in months), 0),
    )


def participant_category(participant: Participant) -> Category:
    """Return the category a participant earns in: unit, party member (who reported in), or volunteer."""
    reported_in = participant.person is not None and participant.person.party_member is not None
    return category_of(participant.kind, reported_in_as_party_member=reported_in)


def category_of(kind: str, *, reported_in_as_party_member: bool) -> Category:
    """Return the category of a participant of ``kind`` who did or did not report in as a party member."""
    if kind == ParticipantKind.UNIT:
        return Category.UNIT
    return Category.PARTY_MEMBER if reported_in_as_party_member else Category.VOLUNTEER


def _add_activity(
    session: Session,
    *,
    actor: AppUser,
    org: OrgNode,
    service: Service,
    source: ActivitySource,
    key: str,
    digest: str,
    now: dt.datetime,
    corrects: Activity | None = None,
    correction_reason: str | None = None,
) -> tuple[Activity, _Scoring]:
    """Check a piece of service against everything known so far and add it as an activity.

    Returns the activity and what scoring it needs, already found and locked.
    """
    check_key(key)
    if org.kind == OrgKind.DISTRICT:
        raise InvalidInput("service is recorded in a street, community or grid", field="org")
    if source != ActivitySource.SELF_REPORT and actor.participant_id == service.participant_id:
        raise NotAllowed("nobody records points for themselves; report your own service for review", field="participant_id")
    participant = session.get(Participant, service.participant_id)
    if participant is None:
        raise NotFound(f"participant {service.participant_id} does not exist", field="participant_id")
    scope = session.get(OrgNode, org.chain_id)
    if not participant.org.path.startswith(scope.path):
        raise InvalidInput(
            f"{participant.display_name} does not belong to {scope.name}; service is recorded where the person belongs",
            field="participant_id",
        )
    scoring = _prepare_scoring(session, org, participant, service.started_at)
    # Checks the activity type, category, quantity and duration before anything is stored.
    score_activity(service.facts(scoring.category, org.time_zone), rules_of(scoring.version), EarnedSoFar())
    _check_no_overlap(session, service, org, replacing=corrects)
    activity = Activity(
        org_id=org.id,
        **service.activity_columns(),
        source=source,
        recorded_by_id=actor.id,
        recorded_at=now,
        idempotency_key=key,
        request_digest=digest,
        corrects_id=corrects.id if corrects else None,
        correction_reason=correction_reason,
    )
    session.add(activity)
    session.flush()
    return activity, scoring


def check_service(service: Service, now: dt.datetime) -> None:
    """Refuse a piece of service whose fields or times are wrong, before anything is looked up."""
    _check_service_fields(service)
    check_times(service.started_at, service.ended_at, now)


def _check_service_fields(service: Service) -> None:
    if type(service.participant_id) is not int or service.participant_id <= 0:
        raise InvalidInput("must be a participant's id", field="participant_id")
    if not isinstance(service.activity_type, str) or not service.activity_type:
        raise InvalidInput("must name an activity type of the rule set", field="activity_type")
    if type(service.travel_minutes) is not int or not 0 <= service.travel_minutes <= DAY_MINUTES:
        raise InvalidInput(f"must be whole minutes from 0 to {DAY_MINUTES}", field="travel_minutes")
    if len(service.tags) > MAX_TAGS or not all(isinstance(tag, str) and 0 < len(tag) <= 40 for tag in service.tags):
        raise InvalidInput(f"at most {MAX_TAGS} tags of 1 to 40 characters", field="tags")
    if service.description is not None and (
        not isinstance(service.description, str) or len(service.description) > MAX_DESCRIPTION_LENGTH
    ):
        raise InvalidInput(f"must be text of at most {MAX_DESCRIPTION_LENGTH} characters", field="description")


def check_times(started_at: dt.datetime, ended_at: dt.datetime, now: dt.datetime) -> None:
    for field, moment in (("started_at", started_at), ("ended_at", ended_at)):
        if not isinstance(moment, dt.datetime) or moment.tzinfo is None:
            raise InvalidInput("must be a date and time with its time zone", field=field)
    if ended_at <= started_at:
        raise InvalidInput("must be after started_at", field="ended_at")
    if ended_at > now:
        raise InvalidInput("is in the future; record service once it is done", field="ended_at")
    if ended_at - started_at > dt.timedelta(minutes=DAY_MINUTES):
        raise InvalidInput("one activity lasts at most 24 hours", field="ended_at")


def active_activities(participant_ids: Iterable[int], *, replacing: Activity | None = None):
    """Query these people's activities that still stand: not corrected, not rejected."""
    corrected = aliased(Activity)
    query = select(Activity).where(
        Activity.participant_id.in_(list(participant_ids)),
        ~exists().where(corrected.corrects_id == Activity.id),
        ~exists().where(and_(ActivityReview.activity_id == Activity.id, ActivityReview.approved.is_(False))),
    )
    if replacing is not None:
        query = query.where(Activity.id != replacing.id)
    return query


def _check_no_overlap(session: Session, service: Service, org: OrgNode, *, replacing: Activity | None) -> None:
    active = active_activities([service.participant_id], replacing=replacing)
    # No activity lasts over a day, so one that overlaps started at most a day before: the bound keeps
    # this one short index range however long the person's history.
    overlapping = session.execute(
        active.where(
            Activity.started_at < service.ended_at,
            Activity.started_at > service.started_at - dt.timedelta(minutes=DAY_MINUTES),
            Activity.ended_at > service.started_at,
        ).limit(1)
    ).scalar_one_or_none()
    if overlapping is not None:
        raise InvalidInput(
            f"overlaps activity {overlapping.id} of the same person "
            f"({chain.format_utc(overlapping.started_at)} to {chain.format_utc(overlapping.ended_at)})",
            field="started_at",
        )
    zone = zoneinfo.ZoneInfo(org.time_zone)
    day = local_date(service.started_at, org)
    day_start = dt.datetime.combine(day, dt.time(), zone)
    day_end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone)
    same_day = session.execute(
        active.where(Activity.started_at >= day_start, Activity.started_at < day_end)
    ).scalars()
    minutes = sum((a.ended_at - a.started_at) // dt.timedelta(minutes=1) for a in same_day)
    minutes += (service.ended_at - service.started_at) // dt.timedelta(minutes=1)
    if minutes > DAY_MINUTES:
        raise InvalidInput(
            f"would make {minutes // 60} hours {minutes % 60} minutes of service on {day.isoformat()}; a day has 24",
            field="ended_at",
        )


def _superseded(session: Session, activity_id: int) -> bool:
    return session.scalar(select(func.count()).select_from(Activity).where(Activity.corrects_id == activity_id)) > 0


def scoring_transaction(session: Session, activity: Activity) -> Transaction | None:
    """Return the transaction that scored an activity (not its reversal), if it was scored."""
    return session.execute(
        select(Transaction).where(Transaction.activity_id == activity.id, Transaction.kind == TransactionKindCode.EARN)
    ).scalar_one_or_none()


def earlier_request(session: Session, model, org: OrgNode, actor: AppUser, key: str, digest: str):
    """Return what an earlier call with this key recorded, refusing the key for other content."""
    check_key(key)
    earlier = session.execute(
        select(model).where(model.org_id == org.id, model.recorded_by_id == actor.id, model.idempotency_key == key)
    ).scalar_one_or_none()
    if earlier is not None and earlier.request_digest != digest:
        raise IdempotencyConflict("this idempotency key was already used for a different request", field="idempotency_key")
    return earlier


def _activity(session: Session, activity_id: int) -> Activity:
    activity = session.get(Activity, activity_id)
    if activity is None:
        raise NotFound(f"activity {activity_id} does not exist", field="activity_id")
    return activity


def check_key(key: object) -> None:
    if not isinstance(key, str) or not IDEMPOTENCY_KEY_PATTERN.fullmatch(key):
        raise InvalidInput("must be 1 to 128 characters of letters, digits and . _ : / @ + = -", field="idempotency_key")
