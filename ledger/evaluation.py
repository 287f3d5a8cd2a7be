"""The annual evaluation (年度考评) and the employers' feedback, as pure functions.

For an org and a year the evaluation has three sheets, each one row per participant:

* **participants**: service hours, activities, points earned, spent and expired, the balance
  at the year's end, the rank in the grid, the community and the evaluated org (among the
  same category, ties sharing a rank), the star level at the year's end, and for each title
  of the rules whether the participant is eligible and why, criterion by criterion;
* **party_members**: the employer, the home community, the service there that the yearly
  requirement counts, whether it was met, and the orders claimed and completed;
* **units** (co-building units): the report-in day, the year's points by kind of
  contribution, and the projects claimed and completed.

A row is built from plain values (a :class:`ParticipantYear`, :class:`PartyMemberYear` or
:class:`UnitYear`) that the service reads set-based from the database. Cells are stored
language-neutral (minutes, codes, criteria) so that a frozen evaluation can be shown in
Chinese or English, and :meth:`SheetSpec.display` renders them for a spreadsheet. A frozen
evaluation is compared with a fresh one by :func:`compare`, which walks both in participant
order and never holds either.

The feedback to an employer (双报到 feedback) lists its party members who reported in to
communities of the region, with their year, and ends with the unit's counts and rates.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Iterable, Iterator, Mapping, Sequence

from ledger.errors import InvalidInput
from ledger.exports import Cell, Table
from ledger.rewards import CriterionResult, YearRecord, party_requirement_met, star_standing, title_eligibility
from ledger.rulesets import Category, Label, RuleSet, Title

LANGUAGES = ("zh", "en")


class Kind(StrEnum):
    """What a column's stored cells are, and so how they are shown."""

    TEXT = "text"
    NUMBER = "number"
    #: Minutes, shown as hours with two decimals.
    HOURS = "hours"
    YES_NO = "yes_no"
    #: A code (category, unit kind), shown by its label.
    CODE = "code"
    #: A title's criteria ``[criterion, required, achieved, met]``, shown as the reason.
    CRITERIA = "criteria"
    #: ``[numerator, denominator]``, shown as a percentage.
    RATIO = "ratio"


@dataclass(frozen=True)
class Column:
    code: str
    label: Label
    kind: Kind = Kind.NUMBER


@dataclass(frozen=True)
class SheetSpec:
    """A sheet's code, its title in both languages, and its columns in order."""

    code: str
    title: Label
    columns: tuple[Column, ...]

    def to_json(self) -> dict:
        return {
            "code": self.code,
            "title": {"zh": self.title.zh, "en": self.title.en},
            "columns": [{"code": c.code, "zh": c.label.zh, "en": c.label.en, "kind": c.kind.value} for c in self.columns],
        }

    @classmethod
    def from_json(cls, data: Mapping) -> SheetSpec:
        return cls(
            data["code"],
            Label(data["title"]["zh"], data["title"]["en"]),
            tuple(Column(c["code"], Label(c["zh"], c["en"]), Kind(c["kind"])) for c in data["columns"]),
        )

    def headers(self, language: str) -> list[str]:
        return [getattr(column.label, check_language(language)) for column in self.columns]

    def display(self, cells: Sequence, language: str) -> list[Cell]:
        """Return a stored row as a spreadsheet shows it, in ``language``."""
        return [display(column.kind, value, language) for column, value in zip(self.columns, cells)]

    def table(self, rows: Iterable[Sequence], language: str) -> Table:
        """Return this sheet with ``rows`` of stored cells as a table to write."""
        check_language(language)
        return Table(getattr(self.title, language), self.headers(language), (self.display(row, language) for row in rows))


def check_language(language: object) -> str:
    if language not in LANGUAGES:
        raise InvalidInput(f"unknown language {language!r}; use zh or en", field="language")
    return language


# Showing cells ---------------------------------------------------------------------------------

#: Labels of the codes a CODE column holds.
CODE_LABELS = {
    Category.VOLUNTEER: Label("志愿者", "Volunteer"),
    Category.PARTY_MEMBER: Label("在职党员", "Party member"),
    Category.UNIT: Label("共建单位", "Co-building unit"),
    "government_agency": Label("机关", "Government agency"),
    "enterprise": Label("企业", "Enterprise"),
    "public_institution": Label("事业单位", "Public institution"),
    "property_company": Label("物业公司", "Property company"),
    "social_organisation": Label("社会组织", "Social organisation"),
    "two_new_organisation": Label("两新组织", "'Two new' organisation"),
}
YES_NO = {True: Label("是", "Yes"), False: Label("否", "No")}
HUNDREDTHS = Decimal("0.01")
TENTHS = Decimal("0.1")


def hours(minutes: int) -> Decimal:
    """Return minutes as hours, exactly to the hundredth (half up): 90 → 1.50, 20 → 0.33."""
    return (Decimal(minutes) / 60).quantize(HUNDREDTHS, rounding=ROUND_HALF_UP)


def percent(numerator: int, denominator: int | None) -> str | None:
    """Return a share as a percentage to a tenth, ``83.3%``; ``None`` when there is nothing to divide by."""
    if not denominator:
        return None
    return f"{(Decimal(100 * numerator) / denominator).quantize(TENTHS, rounding=ROUND_HALF_UP)}%"


def display(kind: Kind, value, language: str) -> Cell:
    """Return one stored cell as shown in ``language``: text, a number, or empty."""
    if value is None:
        return None
    if kind is Kind.HOURS:
        return hours(value)
    if kind is Kind.YES_NO:
        return getattr(YES_NO[bool(value)], language)
    if kind is Kind.CODE:
        label = CODE_LABELS.get(value)
        return getattr(label, language) if label else value
    if kind is Kind.CRITERIA:
        return reason(value, language)
    if kind is Kind.RATIO:
        return percent(*value)
    return value


def _criterion_text(criterion: str, required: int, achieved: int, met: bool) -> Label:
    shortfall = abs(required - achieved)
    if criterion == "min_hours":
        text = Label(f"服务时长 {hours(achieved)} 小时（需 {hours(required)} 小时）", f"hours {hours(achieved)} (needs {hours(required)})")
        short = Label(f"差 {hours(shortfall)} 小时", f"short by {hours(shortfall)}")
    elif criterion == "min_points":
        text = Label(f"积分 {achieved}（需 {required}）", f"points {achieved} (needs {required})")
        short = Label(f"差 {shortfall} 分", f"short by {shortfall}")
    elif criterion == "min_activities":
        text = Label(f"服务 {achieved} 次（需 {required} 次）", f"activities {achieved} (needs {required})")
        short = Label(f"差 {shortfall} 次", f"short by {shortfall}")
    elif criterion in ("max_rank", "top_percent"):
        text = Label(f"排名第 {achieved}（需前 {required} 名）", f"rank {achieved} (needs {required} or better)")
        short = Label(f"差 {shortfall} 名", f"{shortfall} places short")
    elif criterion == "party_requirement":
        return Label("已完成年度报到服务要求", "yearly requirement met") if met else Label(
            "未完成年度报到服务要求", "yearly requirement not met"
        )
    elif criterion == "no_record":
        return Label("本年度无积分记录", "no record this year")
    else:
        return Label("不属于该称号的类别", "not in this title's category")
    if met:
        return text
    return Label(f"{text.zh}，{short.zh}", f"{text.en}, {short.en}")


def reason(criteria: Sequence[Sequence], language: str) -> str:
    """Say criterion by criterion why a participant is or is not eligible for a title."""
    separator = "；" if language == "zh" else "; "
    return separator.join(getattr(_criterion_text(*criterion), language) for criterion in criteria)


# The participants sheet ------------------------------------------------------------------------


@dataclass(frozen=True)
class TitleStanding:
    """A participant's rank by points among the title's category within the title's scope."""

    #: ``None`` when the participant has no record in the year, and so is not ranked.
    rank: int | None
    ranked: int


@dataclass(frozen=True)
class ParticipantYear:
    """What the database knows of one participant's year, as the evaluation reads it."""

    participant_id: int
    name: str
    category: Category
    community: str
    #: The grid the participant belongs to; ``None`` for someone registered at the community.
    grid: str | None
    points_earned: int
    points_spent: int
    points_expired: int
    service_minutes: int
    activities: int
    #: Points held at the year's end: everything earned less spent and expired, up to then.
    balance: int
    #: Verified service up to the year's end, for the star level.
    lifetime_minutes: int
    #: Ranks among the same category; ``None`` for someone with no record in the year.
    rank_grid: int | None
    rank_community: int | None
    rank_org: int | None
    #: Activities and minutes in the home community, for a party member's yearly requirement.
    home_activities: int = 0
    home_minutes: int = 0
    #: Per title code: the standing among the title's category, or ``None`` outside it.
    titles: Mapping[str, TitleStanding | None] = field(default_factory=dict)


def participant_sheet(rules: RuleSet) -> SheetSpec:
    """Return the participants sheet's columns: the year, the ranks, the star level, then each title."""
    title_columns = []
    for code, title in rules.titles.items():
        title_columns += [
            Column(f"title:{code}", Label(f"{title.label.zh}资格", f"{title.label.en}: eligible"), Kind.YES_NO),
            Column(f"title:{code}:reason", Label(f"{title.label.zh}说明", f"{title.label.en}: why"), Kind.CRITERIA),
        ]
    return SheetSpec(
        "participants",
        Label("参与者", "Participants"),
        (
            Column("participant_id", Label("编号", "ID")),
            Column("name", Label("姓名/名称", "Name"), Kind.TEXT),
            Column("category", Label("类别", "Category"), Kind.CODE),
            Column("community", Label("社区", "Community"), Kind.TEXT),
            Column("grid", Label("网格", "Grid"), Kind.TEXT),
            Column("service_minutes", Label("服务时长（小时）", "Service hours"), Kind.HOURS),
            Column("activities", Label("服务次数", "Activities")),
            Column("points_earned", Label("获得积分", "Points earned")),
            Column("points_spent", Label("兑换积分", "Points spent")),
            Column("points_expired", Label("过期积分", "Points expired")),
            Column("balance", Label("年末余额", "Balance at year end")),
            Column("rank_grid", Label("网格排名", "Rank in grid")),
            Column("rank_community", Label("社区排名", "Rank in community")),
            Column("rank_org", Label("本级排名", "Rank in the org")),
            Column("star_level", Label("星级", "Star level")),
            *title_columns,
        ),
    )


def participant_cells(record: ParticipantYear, rules: RuleSet) -> list:
    """Return a participant's row of the participants sheet, as stored."""
    title_cells = []
    for code, title in rules.titles.items():
        standing = record.titles.get(code)
        if standing is None:
            title_cells += [None, None]
            continue
        eligible, criteria = title_verdict(title, record, standing, rules)
        title_cells += [eligible, criteria]
    star = star_standing(max(record.lifetime_minutes, 0), rules.star_levels.hours)
    return [
        record.participant_id,
        record.name,
        record.category.value,
        record.community,
        record.grid,
        record.service_minutes,
        record.activities,
        record.points_earned,
        record.points_spent,
        record.points_expired,
        record.balance,
        record.rank_grid,
        record.rank_community,
        record.rank_org,
        star.level,
        *title_cells,
    ]


def title_verdict(title: Title, record: ParticipantYear, standing: TitleStanding, rules: RuleSet) -> tuple[bool, list]:
    """Return whether the participant is eligible for ``title``, and the criteria that say why."""
    if standing.rank is None:
        return False, [["no_record", 1, 0, False]]
    year = YearRecord(
        participant_id=record.participant_id,
        categories=frozenset({title.category}),
        points=record.points_earned,
        service_minutes=record.service_minutes,
        activities=record.activities,
        rank=standing.rank,
        ranked=standing.ranked,
        party_requirement_met=party_requirement_met(rules.party_members, record.home_activities, record.home_minutes),
    )
    eligibility = title_eligibility(title, year)
    return eligibility.eligible, [_criterion_cell(result) for result in eligibility.criteria]


def _criterion_cell(result: CriterionResult) -> list:
    return [result.criterion, result.required, result.achieved, result.met]


# The party members sheet -----------------------------------------------------------------------


@dataclass(frozen=True)
class PartyMemberYear:
    participant_id: int
    name: str
    employer: str
    #: The community the party member reported in to (where they live).
    community: str
    reported_on: dt.date
    #: Service in the home community: what the yearly requirement counts.
    home_activities: int
    home_minutes: int
    points_earned: int
    #: Orders claimed in the year (not withdrawn), and those confirmed completed.
    orders_claimed: int
    orders_completed: int


PARTY_MEMBER_SHEET = SheetSpec(
    "party_members",
    Label("在职党员", "Party members"),
    (
        Column("participant_id", Label("编号", "ID")),
        Column("name", Label("姓名", "Name"), Kind.TEXT),
        Column("employer", Label("工作单位", "Employer"), Kind.TEXT),
        Column("community", Label("报到社区", "Home community"), Kind.TEXT),
        Column("reported_on", Label("报到日期", "Reported in on"), Kind.TEXT),
        Column("home_activities", Label("社区服务次数", "Activities in the community")),
        Column("home_minutes", Label("社区服务时长（小时）", "Hours in the community"), Kind.HOURS),
        Column("requirement_met", Label("完成年度要求", "Yearly requirement met"), Kind.YES_NO),
        Column("orders_claimed", Label("认领需求", "Orders claimed")),
        Column("orders_completed", Label("完成需求", "Orders completed")),
        Column("points_earned", Label("获得积分", "Points earned")),
    ),
)


def party_member_cells(record: PartyMemberYear, rules: RuleSet) -> list:
    """Return a party member's row of the party members sheet, as stored."""
    return [
        record.participant_id,
        record.name,
        record.employer,
        record.community,
        record.reported_on.isoformat(),
        record.home_activities,
        record.home_minutes,
        party_requirement_met(rules.party_members, record.home_activities, record.home_minutes),
        record.orders_claimed,
        record.orders_completed,
        record.points_earned,
    ]


# The co-building units sheet -------------------------------------------------------------------

#: The column of unit points earned by activity types the rules in force no longer name.
OTHER_KIND = "other"


@dataclass(frozen=True)
class UnitYear:
    participant_id: int
    name: str
    unit_kind: str
    community: str
    reported_on: dt.date
    #: Points of the year by activity type (reversed entries left out).
    points_by_kind: Mapping[str, int]
    projects_claimed: int
    projects_completed: int


def unit_kinds(rules: RuleSet) -> list[str]:
    """Return the activity types a unit earns with under ``rules``, in the rules' order."""
    return [code for code, kind in rules.activity_types.items() if Category.UNIT in kind.categories]


def unit_sheet(rules: RuleSet) -> SheetSpec:
    """Return the units sheet's columns: the unit, its points by kind of contribution, its projects."""
    kinds = [
        Column(f"points:{code}", rules.activity_types[code].label) for code in unit_kinds(rules)
    ] + [Column(f"points:{OTHER_KIND}", Label("其他积分", "Other points"))]
    return SheetSpec(
        "units",
        Label("共建单位", "Co-building units"),
        (
            Column("participant_id", Label("编号", "ID")),
            Column("name", Label("单位名称", "Unit"), Kind.TEXT),
            Column("unit_kind", Label("单位类型", "Kind"), Kind.CODE),
            Column("community", Label("报到社区", "Community"), Kind.TEXT),
            Column("reported_on", Label("报到日期", "Reported in on"), Kind.TEXT),
            *kinds,
            Column("points_total", Label("积分合计", "Points in all")),
            Column("projects_claimed", Label("认领项目", "Projects claimed")),
            Column("projects_completed", Label("完成项目", "Projects completed")),
        ),
    )


def unit_cells(record: UnitYear, rules: RuleSet) -> list:
    """Return a unit's row of the units sheet, as stored."""
    named = unit_kinds(rules)
    other = sum(points for kind, points in record.points_by_kind.items() if kind not in named)
    return [
        record.participant_id,
        record.name,
        record.unit_kind,
        record.community,
        record.reported_on.isoformat(),
        *(record.points_by_kind.get(kind, 0) for kind in named),
        other,
        sum(record.points_by_kind.values()),
        record.projects_claimed,
        record.projects_completed,
    ]


# Changes since a freeze ------------------------------------------------------------------------

#: The field of a change that is a whole row: a participant added to or gone from a sheet.
ROW = "row"


@dataclass(frozen=True)
class Change:
    """One cell that differs between the frozen evaluation and a fresh one."""

    sheet: str
    participant_id: int
    #: A column code, or ``row`` when the participant is in only one of the two.
    field: str
    frozen: object
    current: object


def compare(
    sheet: str,
    frozen_spec: SheetSpec,
    frozen: Iterable[tuple[int, Sequence]],
    current_spec: SheetSpec,
    current: Iterable[tuple[int, Sequence]],
) -> Iterator[Change]:
    """Yield what differs between two versions of one sheet, both given as ``(participant_id, cells)``.

    Both must come in ascending participant order; they are walked side by side, never held.
    Columns are matched by code, so a column that only one version has shows as a change of
    every row that has a value in it.
    """
    frozen_codes = [column.code for column in frozen_spec.columns]
    current_codes = [column.code for column in current_spec.columns]
    codes = frozen_codes + [code for code in current_codes if code not in frozen_codes]
    frozen_rows, current_rows = iter(frozen), iter(current)
    old, new = next(frozen_rows, None), next(current_rows, None)
    while old is not None or new is not None:
        if new is None or (old is not None and old[0] < new[0]):
            yield Change(sheet, old[0], ROW, "present", "absent")
            old = next(frozen_rows, None)
        elif old is None or new[0] < old[0]:
            yield Change(sheet, new[0], ROW, "absent", "present")
            new = next(current_rows, None)
        else:
            before, after = dict(zip(frozen_codes, old[1])), dict(zip(current_codes, new[1]))
            for code in codes:
                if before.get(code) != after.get(code):
                    yield Change(sheet, old[0], code, before.get(code), after.get(code))
            old, new = next(frozen_rows, None), next(current_rows, None)


# Feedback to employers -------------------------------------------------------------------------

FEEDBACK_SHEET = SheetSpec(
    "employer_feedback",
    Label("双报到反馈", "Double-reporting feedback"),
    (
        Column("name", Label("姓名", "Name"), Kind.TEXT),
        Column("community", Label("报到社区", "Community reported to"), Kind.TEXT),
        Column("reported_on", Label("报到日期", "Reported in on"), Kind.TEXT),
        Column("activities", Label("参加活动次数", "Activities")),
        Column("service_minutes", Label("服务时长（小时）", "Hours"), Kind.HOURS),
        Column("orders_claimed", Label("认领需求", "Orders claimed")),
        Column("orders_completed", Label("完成需求", "Orders completed")),
        Column("requirement_met", Label("完成年度要求", "Yearly requirement met"), Kind.YES_NO),
        Column("remark", Label("社区评价", "Community's remarks"), Kind.TEXT),
    ),
)


@dataclass(frozen=True)
class FeedbackMember:
    """A party member's year as their employer hears of it."""

    name: str
    community: str
    reported_on: dt.date
    #: Activities and minutes in the community they reported to.
    activities: int
    service_minutes: int
    orders_claimed: int
    orders_completed: int
    remark: str | None


@dataclass
class FeedbackTally:
    """What a unit's rows add up to, counted while they are written."""

    reported: int = 0
    met: int = 0
    orders_claimed: int = 0
    orders_completed: int = 0


def feedback_table(name: str, members: Iterable[FeedbackMember], employed: int | None, rules: RuleSet, language: str) -> Table:
    """Return one employer's feedback as a table: a row per member, then the unit's counts and rates."""
    check_language(language)
    tally = FeedbackTally()

    def rows() -> Iterator[list[Cell]]:
        for row in feedback_rows(members, rules, tally):
            yield FEEDBACK_SHEET.display(row, language)
        yield from feedback_summary(tally, employed, language)

    return Table(name, FEEDBACK_SHEET.headers(language), rows())


def feedback_rows(members: Iterable[FeedbackMember], rules: RuleSet, tally: FeedbackTally) -> Iterator[list]:
    """Yield each member's row of the feedback, adding them up in ``tally`` as they pass."""
    for member in members:
        met = party_requirement_met(rules.party_members, member.activities, member.service_minutes)
        tally.reported += 1
        tally.met += met
        tally.orders_claimed += member.orders_claimed
        tally.orders_completed += member.orders_completed
        yield [
            member.name,
            member.community,
            member.reported_on.isoformat(),
            member.activities,
            member.service_minutes,
            member.orders_claimed,
            member.orders_completed,
            met,
            member.remark,
        ]


def feedback_summary(tally: FeedbackTally, employed: int | None, language: str) -> list[list[Cell]]:
    """Return the rows that close a unit's feedback: its counts, its report-in and completion rates.

    The report-in rate counts the members who reported in against the party members the
    employer says it has (unknown until it says); the completion rate counts those who met
    the yearly requirement against those who reported in.
    """
    lines = (
        (Label("报到人数", "Reported in"), tally.reported),
        (Label("在职党员总数", "Party members employed"), employed),
        (Label("报到率", "Report-in rate"), percent(tally.reported, employed)),
        (Label("完成年度要求人数", "Met the yearly requirement"), tally.met),
        (Label("完成率", "Completion rate"), percent(tally.met, tally.reported)),
        (Label("认领需求", "Orders claimed"), tally.orders_claimed),
        (Label("完成需求", "Orders completed"), tally.orders_completed),
        (Label("需求完成率", "Order completion rate"), percent(tally.orders_completed, tally.orders_claimed)),
    )
    return [[], *([getattr(label, language), value] for label, value in lines)]
