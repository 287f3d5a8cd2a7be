"""Rankings, star levels and annual titles, read from period totals (never from the ledger).

A ranking orders the participants of one category in an org's subtree by the points they
earned in a period (spending never lowers a rank), with the ties and tie-break of
:func:`ledger.rewards.standings`. A year reads one total per person, a month one, a quarter
three; only a range of days that is not whole months reads day totals.

Public rankings leave out everyone who opted out (minors are out unless they opt in) and
rank the rest among themselves; staff see everyone.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import threading
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, aliased

from ledger.activities import category_of
from ledger.db import integer_sum
from ledger.errors import InvalidInput, NotFound
from ledger.models import (
    Account,
    Activity,
    AppUser,
    CoBuildingUnit,
    OrgKind,
    OrgNode,
    Participant,
    ParticipantKind,
    PartyMember,
    PeriodKind,
    PeriodTotal,
    Posting,
    StandingsVersion,
    TitleAward,
    Transaction,
    TransactionKindCode,
    Volunteer,
)
from ledger.orgs import path_ids, subtree_ids
from ledger.rewards import (
    Eligibility,
    StarStanding,
    YearRecord,
    party_requirement_met,
    standings,
    star_standing,
    title_eligibility,
)
from ledger.rules import rules_of, version_in_force
from ledger.rulesets import Category, RankScope

MAX_PAGE = 200


@dataclass(frozen=True)
class Period:
    """Days from ``start`` to ``end``, both included."""

    start: dt.date
    end: dt.date

    @property
    def label(self) -> str:
        return self.start.isoformat() if self.start == self.end else f"{self.start.isoformat()}..{self.end.isoformat()}"

    def grain(self) -> PeriodKind:
        """Return the coarsest totals that add up to exactly this period."""
        if self.start.month == 1 and self.start.day == 1 and (self.end.month, self.end.day) == (12, 31):
            return PeriodKind.YEAR
        last_day = calendar.monthrange(self.end.year, self.end.month)[1]
        if self.start.day == 1 and self.end.day == last_day:
            return PeriodKind.MONTH
        return PeriodKind.DAY


_YEAR = re.compile(r"(\d{4})")
_MONTH = re.compile(r"(\d{4})-(\d{2})")
_QUARTER = re.compile(r"(\d{4})[Qq]([1-4])")
_RANGE = re.compile(r"(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})")


def parse_period(text: str, *, field: str = "period") -> Period:
    """Read ``2026``, ``2026-03``, ``2026Q1`` or ``2026-03-01..2026-03-15``."""
    text = text.strip() if isinstance(text, str) else ""
    try:
        if match := _YEAR.fullmatch(text):
            year = int(match[1])
            return Period(dt.date(year, 1, 1), dt.date(year, 12, 31))
        if match := _MONTH.fullmatch(text):
            year, month = int(match[1]), int(match[2])
            return Period(dt.date(year, month, 1), dt.date(year, month, calendar.monthrange(year, month)[1]))
        if match := _QUARTER.fullmatch(text):
            year, first = int(match[1]), 3 * int(match[2]) - 2
            return Period(dt.date(year, first, 1), dt.date(year, first + 2, calendar.monthrange(year, first + 2)[1]))
        if match := _RANGE.fullmatch(text):
            period = Period(dt.date.fromisoformat(match[1]), dt.date.fromisoformat(match[2]))
            if period.end < period.start:
                raise InvalidInput("the range ends before it starts", field=field)
            if period.end - period.start > dt.timedelta(days=366):
                raise InvalidInput("a range covers at most a year", field=field)
            return period
    except ValueError:
        pass
    raise InvalidInput("must be a year (2026), a month (2026-03), a quarter (2026Q1) or days (2026-03-01..2026-03-15)", field=field)


class RankedParticipant(NamedTuple):
    """One row of a ranking (a tuple: a street's ranking makes tens of thousands at a time)."""

    rank: int
    participant_id: int
    name: str
    points: int
    service_minutes: int


@dataclass(frozen=True)
class RankingPage:
    org: OrgNode
    category: Category
    period: Period
    public: bool
    #: How many participants are ranked in all.
    ranked: int
    rows: tuple[RankedParticipant, ...]


@dataclass(frozen=True)
class OwnStanding:
    """One participant's place, with the people just above and just below."""

    me: RankedParticipant | None
    above: tuple[RankedParticipant, ...]
    below: tuple[RankedParticipant, ...]
    ranked: int


def category_filter(category: Category):
    """Return the condition that a participant belongs to ``category``."""
    if category is Category.UNIT:
        return exists().where(CoBuildingUnit.participant_id == Participant.id)
    model = Volunteer if category is Category.VOLUNTEER else PartyMember
    return exists().where(model.participant_id == Participant.id)


def _check_category(category: object) -> Category:
    try:
        return Category(category)
    except ValueError:
        raise InvalidInput(f"must be one of {', '.join(Category)}", field="category") from None


def _totals_query(*, org_ids, category: Category, period: Period):
    """Return the query of ``(org_id, id, display_name, ranking_opt_out, points, minutes)`` of everyone ranked in ``org_ids``.

    ``org_ids`` is a list of ids or a query of them; a person's totals all carry their account's org.
    """
    grain = period.grain()
    return (
        select(
            PeriodTotal.org_id,
            Participant.id,
            Participant.display_name,
            Participant.ranking_opt_out,
            integer_sum(PeriodTotal.points_earned).label("points"),
            integer_sum(PeriodTotal.service_minutes).label("minutes"),
        )
        .join(Account, Account.id == PeriodTotal.account_id)
        .join(Participant, Participant.id == Account.participant_id)
        .where(
            PeriodTotal.period == grain,
            PeriodTotal.starts_on.between(period.start, period.end),
            PeriodTotal.org_id.in_(org_ids),
            category_filter(category),
        )
        .group_by(PeriodTotal.org_id, Participant.id, Participant.display_name, Participant.ranking_opt_out)
    )


def _ranked(rows) -> list[RankedParticipant]:
    names = {participant_id: name for participant_id, name, _, _ in rows}
    return [
        RankedParticipant(s.rank, s.participant_id, names[s.participant_id], s.points, s.service_minutes)
        for s in standings((pid, points or 0, minutes or 0) for pid, _, points, minutes in rows)
    ]


@dataclass(frozen=True)
class _View:
    """A ranking's public or staff view: everyone in order (most points first) and each one's place."""

    rows: tuple[RankedParticipant, ...]
    place: dict[int, int]

    @classmethod
    def of(cls, rows) -> _View:
        ranked = tuple(_ranked(rows))
        return cls(ranked, {row.participant_id: index for index, row in enumerate(ranked)})

    def ahead_of(self, points: int) -> int:
        """Return how many have more than ``points``."""
        return bisect_left(self.rows, -points, key=lambda row: -row.points)


@dataclass
class _Standings:
    """Everyone in one ranking with their totals, as ``(id, name, opted_out, points, minutes)``; views made when first asked."""

    people: list[tuple[int, str, bool, int, int]]
    views: dict[bool, _View] = field(default_factory=dict)

    def totals(self, *, public: bool) -> list[tuple[int, str, int, int]]:
        return [(pid, name, points, minutes) for pid, name, opted_out, points, minutes in self.people if not (public and opted_out)]

    def view(self, *, public: bool) -> _View:
        if public not in self.views:
            self.views[public] = _View.of(self.totals(public=public))
        return self.views[public]

    def row_of(self, participant_id: int) -> tuple[int, str, int, int] | None:
        staff = self.view(public=False)
        place = staff.place.get(participant_id)
        if place is None:
            return None
        row = staff.rows[place]
        return row.participant_id, row.name, row.points, row.service_minutes


class StandingsCache:
    """Rankings computed from period totals, kept in this process while their subtree's standings tokens stand still.

    A kept ranking is used only when every org of the subtree carries the token it had when
    the ranking was read (``StandingsVersion``: triggers change it on every write a ranking
    reads, whatever process makes it). Each org's own people are kept too, under its token
    alone, so that after a write a subtree's ranking reads again only the orgs it moved.
    Bounded by the number of people held; the entries used longest ago go first.
    """

    def __init__(self, max_people: int):
        self.max_people = max_people
        self._entries: OrderedDict[tuple, tuple[tuple, _Standings]] = OrderedDict()
        self._people = 0
        self._lock = threading.Lock()

    def get(self, key: tuple, tokens: tuple, compute: Callable[[], _Standings]) -> _Standings:
        """Return what is kept under ``key`` with ``tokens``, or compute it and keep it."""
        kept = self.kept(key, tokens)
        if kept is None:
            kept = compute()
            self.keep(key, tokens, kept)
        return kept

    def kept(self, key: tuple, tokens: tuple) -> _Standings | None:
        with self._lock:
            kept = self._entries.get(key)
            if kept is None or kept[0] != tokens:
                return None
            self._entries.move_to_end(key)
            return kept[1]

    def keep(self, key: tuple, tokens: tuple, standings: _Standings) -> None:
        with self._lock:
            self._forget(key)
            if len(standings.people) <= self.max_people:
                self._entries[key] = (tokens, standings)
                self._people += len(standings.people)
                while self._people > self.max_people:
                    self._forget(next(iter(self._entries)))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._people = 0

    def _forget(self, key: tuple) -> None:
        kept = self._entries.pop(key, None)
        if kept is not None:
            self._people -= len(kept[1].people)


#: A district's ranking holds 200,000 people at about 600 bytes each with both views, and its orgs' entries
#: the same people again at about 150 bytes.
STANDINGS_CACHE = StandingsCache(max_people=500_000)


def _standings(session: Session, *, org: OrgNode, category: Category, period: Period) -> _Standings:
    """Return everyone in the ranking of ``category`` in ``org``'s subtree for ``period``, kept or read afresh."""
    # The tokens are read before the totals, so nothing is kept under a token older than what it holds.
    tokens = tuple(
        (org_id, token)
        for org_id, token in session.execute(
            select(OrgNode.id, StandingsVersion.token)
            .outerjoin(StandingsVersion, StandingsVersion.org_id == OrgNode.id)
            .where(OrgNode.path.startswith(org.path))
            .order_by(OrgNode.id)
        )
    )
    ranked = (session.get_bind().url.render_as_string(), category, period.start, period.end)

    def read() -> _Standings:
        # A person's totals all carry one org, their account's: a subtree's people are its orgs' people.
        people_of = {org_id: STANDINGS_CACHE.kept(("org", org_id, *ranked), (token,)) for org_id, token in tokens}
        moved = [org_id for org_id, people in people_of.items() if people is None]
        if moved:
            # A subquery when every org moved: with a long list of ids PostgreSQL hashes every account instead.
            org_ids = subtree_ids(org) if len(moved) == len(tokens) else moved
            read_now: dict[int, list] = {org_id: [] for org_id in moved}
            for org_id, pid, name, opted_out, points, minutes in session.execute(
                _totals_query(org_ids=org_ids, category=category, period=period)
            ):
                read_now[org_id].append((pid, name, opted_out, points or 0, minutes or 0))
            token_of = dict(tokens)
            for org_id, people in read_now.items():
                people_of[org_id] = _Standings(people)
                STANDINGS_CACHE.keep(("org", org_id, *ranked), (token_of[org_id],), people_of[org_id])
        return _Standings([person for org_id, _ in tokens for person in people_of[org_id].people])

    return STANDINGS_CACHE.get(("subtree", org.id, *ranked), tokens, read)


def totals_in(session: Session, *, org: OrgNode, category: Category, period: Period, public: bool):
    """Return ``(participant_id, name, points, minutes)`` for everyone ranked, without ranking them."""
    return _standings(session, org=org, category=category, period=period).totals(public=public)


def ranking(
    session: Session,
    *,
    org: OrgNode,
    category: str,
    period: Period,
    public: bool,
    limit: int = 50,
    offset: int = 0,
) -> RankingPage:
    """Return one page of a ranking of ``category`` in ``org``'s subtree for ``period``."""
    category = _check_category(category)
    if type(limit) is not int or not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"must be between 1 and {MAX_PAGE}", field="limit")
    if type(offset) is not int or offset < 0:
        raise InvalidInput("must not be negative", field="offset")
    view = _standings(session, org=org, category=category, period=period).view(public=public)
    return RankingPage(org, category, period, public, len(view.rows), view.rows[offset : offset + limit])


def own_rank(
    session: Session, *, org: OrgNode, category: str, period: Period, participant_id: int, public: bool
) -> tuple[int | None, int]:
    """Return a participant's rank (``None`` when not ranked) and how many are ranked.

    The rank :func:`own_standing` gives, without naming neighbours: one plus the number of
    people with more points. Someone who opted out is placed in the public ranking, as there.
    """
    category = _check_category(category)
    everyone = _standings(session, org=org, category=category, period=period)
    view = everyone.view(public=public)
    place = view.place.get(participant_id)
    if place is not None:
        return view.rows[place].rank, len(view.rows)
    mine = everyone.row_of(participant_id)
    if mine is None:
        return None, len(view.rows)
    # Opted out: placed among the public for their own view.
    return 1 + view.ahead_of(mine[2]), len(view.rows) + 1


def own_standing(
    session: Session,
    *,
    org: OrgNode,
    category: str,
    period: Period,
    participant_id: int,
    public: bool,
    neighbours: int = 2,
) -> OwnStanding:
    """Return a participant's own rank and the ``neighbours`` just above and below, in one call.

    Someone who opted out sees their own standing among those ranked publicly, marked with
    the rank they would have; the others never see them.
    """
    category = _check_category(category)
    if type(neighbours) is not int or not 0 <= neighbours <= 10:
        raise InvalidInput("must be between 0 and 10", field="neighbours")
    everyone = _standings(session, org=org, category=category, period=period)
    view = everyone.view(public=public)
    if public and participant_id not in view.place and (mine := everyone.row_of(participant_id)):
        view = _View.of([*everyone.totals(public=True), mine])
    ranked, position = view.rows, view.place.get(participant_id)
    if position is None:
        return OwnStanding(None, tuple(ranked[-neighbours:]) if neighbours else (), (), len(ranked))
    return OwnStanding(
        ranked[position],
        tuple(ranked[max(position - neighbours, 0) : position]),
        tuple(ranked[position + 1 : position + 1 + neighbours]),
        len(ranked),
    )


def set_ranking_opt_out(session: Session, *, participant_id: int, opt_out: bool) -> Participant:
    """Leave a participant out of public rankings, or let them back in."""
    if type(opt_out) is not bool:
        raise InvalidInput("must be true or false", field="opt_out")
    participant = session.get(Participant, participant_id)
    if participant is None:
        raise NotFound(f"participant {participant_id} does not exist", field="participant_id")
    participant.ranking_opt_out = opt_out
    session.flush()
    return participant


# Star levels -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StarRecord:
    level: int
    service_minutes: int
    next_level: int | None
    minutes_to_next: int | None
    #: The day each level was reached, lowest first.
    reached: tuple[tuple[int, dt.date], ...]
    #: The per-year variant, when the rules have one: this year's level and minutes.
    year_level: int | None
    year_minutes: int


def star_record(session: Session, *, participant_id: int, today: dt.date) -> StarRecord:
    """Return a participant's star level under the rules in force, and when each level was reached."""
    participant = session.get(Participant, participant_id)
    if participant is None:
        raise NotFound(f"participant {participant_id} does not exist", field="participant_id")
    stars = rules_of(version_in_force(session, participant.org, today)).star_levels
    days = session.execute(
        select(PeriodTotal.starts_on, PeriodTotal.service_minutes)
        .where(PeriodTotal.account_id == participant.account.id, PeriodTotal.period == PeriodKind.DAY, PeriodTotal.starts_on <= today)
        .order_by(PeriodTotal.starts_on)
    ).all()
    reached, cumulative, year_minutes = [], 0, 0
    for day, minutes in days:
        cumulative += minutes
        if day.year == today.year:
            year_minutes += minutes
        while len(reached) < len(stars.hours) and cumulative >= stars.hours[len(reached)] * 60:
            reached.append((len(reached) + 1, day))
    standing = star_standing(max(cumulative, 0), stars.hours)
    year_level = None if stars.per_year_hours is None else star_standing(max(year_minutes, 0), stars.per_year_hours).level
    return StarRecord(
        level=standing.level,
        service_minutes=standing.service_minutes,
        next_level=standing.next_level,
        minutes_to_next=standing.minutes_to_next,
        reached=tuple(reached[: standing.level]),
        year_level=year_level,
        year_minutes=year_minutes,
    )


@dataclass(frozen=True)
class BalanceSummary:
    """What a volunteer's phone shows first: points, star level, and rank in their community this year."""

    balance: int
    stars: StarStanding
    community: OrgNode
    category: Category
    year: Period
    public: bool
    rank: int | None
    ranked: int


def home_community(session: Session, participant: Participant) -> OrgNode:
    """Return the community a participant belongs to (their own org, when that is not in a community)."""
    return session.get(OrgNode, participant.org.community_id or participant.org.id)


def balance_summary(
    session: Session, *, participant: Participant, community: OrgNode, today: dt.date, public: bool
) -> BalanceSummary:
    """Return a participant's balance, star level and rank among their ``community``'s own category this year.

    One statement reads the account row, whether the person reported in as a party member and
    their service from their year totals; the rank comes from the community's kept ranking
    (:func:`own_rank`). Never the ledger.
    """
    balance, reported_in, minutes = session.execute(
        select(
            Account.balance,
            exists().where(PartyMember.participant_id == participant.id),
            select(integer_sum(PeriodTotal.service_minutes))
            .where(PeriodTotal.account_id == Account.id, PeriodTotal.period == PeriodKind.YEAR, PeriodTotal.starts_on <= today)
            .scalar_subquery(),
        ).where(Account.participant_id == participant.id)
    ).one()
    category = category_of(participant.kind, reported_in_as_party_member=reported_in)
    year = parse_period(str(today.year))
    rank, ranked = own_rank(session, org=community, category=category, period=year, participant_id=participant.id, public=public)
    stars = star_standing(max(minutes, 0), rules_of(version_in_force(session, participant.org, today)).star_levels.hours)
    return BalanceSummary(balance, stars, community, category, year, public, rank, ranked)


# Annual titles ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TitleCandidate:
    participant_id: int
    name: str
    eligibility: Eligibility


@dataclass(frozen=True)
class TitleReport:
    title_code: str
    title_name: str
    year: int
    rule_set_version_id: int
    candidates: tuple[TitleCandidate, ...]

    @property
    def eligible(self) -> tuple[TitleCandidate, ...]:
        return tuple(c for c in self.candidates if c.eligibility.eligible)


def title_reports(
    session: Session, *, org: OrgNode, year: int, today: dt.date, title_code: str | None = None
) -> list[TitleReport]:
    """Say, for each annual title of the rules, who in ``org`` qualifies for ``year`` and why or why not.

    Ranks are counted within the title's scope (the person's grid, community or street)
    among the same category, staff view (opted-out people included). Party members' yearly
    requirement counts only service in the community they reported to.
    """
    if type(year) is not int or not 2000 <= year <= 2100:
        raise InvalidInput("must be a year such as 2026", field="year")
    period = Period(dt.date(year, 1, 1), dt.date(year, 12, 31))
    version = version_in_force(session, org, min(period.end, today))
    rules = rules_of(version)
    titles = [title for code, title in rules.titles.items() if title_code in (None, code)]
    if title_code is not None and not titles:
        raise NotFound(f"the rules in force have no title {title_code!r}", field="title")
    reports = []
    for title in titles:
        scope_org = _scope_root(session, org, title.scope)
        rows = totals_in(session, org=scope_org, category=title.category, period=period, public=False)
        activities = _activity_counts(session, [row[0] for row in rows], period)
        home = _home_community_service(session, [row[0] for row in rows], period) if title.category is Category.PARTY_MEMBER else {}
        scopes, inside = _scope_of(session, [row[0] for row in rows], title.scope, org)
        candidates = []
        for participant_id, name, points, minutes, rank, ranked in _ranks_within_scopes(rows, scopes):
            if participant_id not in inside:
                continue
            home_activities, home_minutes = home.get(participant_id, (0, 0))
            record = YearRecord(
                participant_id=participant_id,
                categories=frozenset({title.category}),
                points=points,
                service_minutes=minutes,
                activities=activities.get(participant_id, 0),
                rank=rank,
                ranked=ranked,
                party_requirement_met=party_requirement_met(rules.party_members, home_activities, home_minutes),
            )
            candidates.append(TitleCandidate(participant_id, name, title_eligibility(title, record)))
        reports.append(TitleReport(title.code, title.label.zh, year, version.id, tuple(candidates)))
    return reports


def award_titles(
    session: Session, *, actor: AppUser, org: OrgNode, year: int, title_code: str, now: dt.datetime
) -> list[TitleAward]:
    """Grant a title to everyone eligible in ``org`` for ``year``; those already holding it keep theirs."""
    [report] = title_reports(session, org=org, year=year, today=now.date(), title_code=title_code)
    held = set(
        session.execute(
            select(TitleAward.participant_id).where(TitleAward.title_code == title_code, TitleAward.year == year)
        ).scalars()
    )
    awards = [
        TitleAward(
            org_id=org.id,
            participant_id=candidate.participant_id,
            title_code=title_code,
            year=year,
            rule_set_version_id=report.rule_set_version_id,
            granted_by_id=actor.id,
            granted_at=now,
        )
        for candidate in report.eligible
        if candidate.participant_id not in held
    ]
    session.add_all(awards)
    session.flush()
    return awards


def _scope_root(session: Session, org: OrgNode, scope: RankScope) -> OrgNode:
    """Return the node whose subtree holds everyone a rank in ``scope`` may be counted against."""
    if org.kind in (OrgKind.DISTRICT, OrgKind.STREET) or scope is RankScope.GRID:
        return org
    if scope is RankScope.STREET:
        return session.get(OrgNode, path_ids(org.path)[1])
    return session.get(OrgNode, org.community_id)


def _scope_of(
    session: Session, participant_ids: list[int], scope: RankScope, org: OrgNode
) -> tuple[dict[int, int], set[int]]:
    """Return the node each participant is ranked in (grid, community or street), and who lies in ``org``."""
    rows = session.execute(
        select(Participant.id, OrgNode.id, OrgNode.path, OrgNode.community_id)
        .join(OrgNode, OrgNode.id == Participant.org_id)
        .where(Participant.id.in_(participant_ids))
    ).all()
    inside = {pid for pid, _, path, _ in rows if path.startswith(org.path)}
    if scope is RankScope.GRID:
        return {pid: org_id for pid, org_id, _, _ in rows}, inside
    if scope is RankScope.COMMUNITY:
        return {pid: community_id or org_id for pid, org_id, _, community_id in rows}, inside
    return {pid: path_ids(path)[min(1, len(path_ids(path)) - 1)] for pid, _, path, _ in rows}, inside


def _ranks_within_scopes(rows, scopes: dict[int, int]):
    """Yield ``(id, name, points, minutes, rank, ranked)``, ranked among those of the same scope node."""
    by_scope: dict[int, list] = {}
    for row in rows:
        by_scope.setdefault(scopes[row[0]], []).append(row)
    for members in by_scope.values():
        names = {pid: name for pid, name, _, _ in members}
        ranked = standings((pid, points or 0, minutes or 0) for pid, _, points, minutes in members)
        for standing in ranked:
            yield standing.participant_id, names[standing.participant_id], standing.points, standing.service_minutes, standing.rank, len(ranked)


def _activity_counts(session: Session, participant_ids: list[int], period: Period) -> dict[int, int]:
    rows = session.execute(
        select(Account.participant_id, integer_sum(PeriodTotal.activity_count))
        .join(Account, Account.id == PeriodTotal.account_id)
        .where(
            Account.participant_id.in_(participant_ids),
            PeriodTotal.period == PeriodKind.YEAR,
            PeriodTotal.starts_on == period.start,
        )
        .group_by(Account.participant_id)
    ).all()
    return {pid: count or 0 for pid, count in rows}


def home_community_service(period: Period, *, within: OrgNode | None = None):
    """Return the query of each participant's activities and service minutes in the community they live in.

    Its columns are ``participant_id``, ``activities`` and ``service_minutes``; ``within``
    keeps the participants of one org's subtree.
    """
    where_served = aliased(OrgNode)
    home = aliased(OrgNode)
    reversal = aliased(Transaction)
    query = (
        select(
            Account.participant_id.label("participant_id"),
            func.count(Transaction.id).label("activities"),
            integer_sum(Transaction.service_minutes).label("service_minutes"),
        )
        .join(Account, Account.id == Transaction.subject_account_id)
        .join(Participant, Participant.id == Account.participant_id)
        .join(home, home.id == Participant.org_id)
        .join(where_served, where_served.id == Transaction.org_id)
        .where(
            Transaction.kind == TransactionKindCode.EARN,
            Transaction.activity_id.is_not(None),
            Transaction.service_minutes > 0,
            Transaction.business_date.between(period.start, period.end),
            where_served.community_id == home.community_id,
            ~exists().where(reversal.reverses_id == Transaction.id),
        )
        .group_by(Account.participant_id)
    )
    return query if within is None else query.where(home.path.startswith(within.path))


def _home_community_service(session: Session, participant_ids: list[int], period: Period) -> dict[int, tuple[int, int]]:
    """Return each party member's activities and service minutes in the community they live in."""
    rows = session.execute(home_community_service(period).where(Account.participant_id.in_(participant_ids))).all()
    return {pid: (count, minutes) for pid, count, minutes in rows}


# Co-building units -------------------------------------------------------------------------


def unit_points_query(org: OrgNode, year: int):
    """Return the query of each unit's points of ``year`` in ``org``'s subtree by activity type.

    Its columns are ``participant_id``, ``name``, ``activity_type`` and ``points``. Reversed
    entries are left out with their reversals, so a corrected entry counts once.
    """
    place = aliased(OrgNode)
    reversal = aliased(Transaction)
    credited = (
        select(integer_sum(Posting.amount))
        .where(Posting.transaction_id == Transaction.id, Posting.account_id == Transaction.subject_account_id)
        .scalar_subquery()
    )
    return (
        select(
            Participant.id.label("participant_id"),
            Participant.display_name.label("name"),
            Activity.activity_type,
            integer_sum(credited).label("points"),
        )
        .select_from(Transaction)
        .join(Activity, Activity.id == Transaction.activity_id)
        .join(Account, Account.id == Transaction.subject_account_id)
        .join(Participant, Participant.id == Account.participant_id)
        .join(place, place.id == Participant.org_id)
        .where(
            Participant.kind == ParticipantKind.UNIT,
            place.path.startswith(org.path),
            Transaction.kind == TransactionKindCode.EARN,
            Transaction.business_date.between(dt.date(year, 1, 1), dt.date(year, 12, 31)),
            ~exists().where(reversal.reverses_id == Transaction.id),
        )
        .group_by(Participant.id, Participant.display_name, Activity.activity_type)
    )


@dataclass(frozen=True)
class UnitPoints:
    """A co-building unit's points for a year, by the kind of contribution that earned them."""

    participant_id: int
    name: str
    by_kind: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_kind.values())


def unit_points_by_kind(session: Session, *, org: OrgNode, year: int) -> list[UnitPoints]:
    """Return each unit in ``org``'s subtree with its points of ``year`` by activity type, most first.

    Reversed entries are left out with their reversals, so a corrected entry counts once.
    """
    if type(year) is not int or not 2000 <= year <= 2100:
        raise InvalidInput("must be a year such as 2026", field="year")
    rows = session.execute(unit_points_query(org, year)).all()
    units: dict[int, UnitPoints] = {}
    for participant_id, name, activity_type, points in rows:
        units.setdefault(participant_id, UnitPoints(participant_id, name, {})).by_kind[activity_type] = points
    return sorted(units.values(), key=lambda unit: (-unit.total, unit.participant_id))
