"""The demo street: a realistic data set to try the ledger on, loaded by ``ledger demo``.

One district, one street, three communities with grids two and three levels deep, a few
hundred volunteers, in-service party members from half a dozen employers, co-building units
of every kind, volunteer service teams, and the balances carried over from paper passbooks.
Then a season of service, 2026-01-01 to mid-November, scored by the default rules: community
events with sign-in sheets (on weekends and public holidays too, and a night of flood watch
tagged ``emergency``), a handful of regulars who run into the monthly and yearly caps, many
occasional volunteers, party members who meet or miss their yearly requirement, the
co-building units' report-ins, agreements, claims, staff and donations, one correction, and
three self-reports: one approved, one rejected, one still waiting for review. From September
each community's reward shelf (爱心超市) offers goods and services, the street's a priority for
the elderly-care services; a co-building unit donates stock, and volunteers redeem their
points: most redemptions handed over, the latest still waiting, one cancelled and refunded.
Nothing expires in the demo: ``ledger expire --as-of 2027-01-01`` is left to try.

The residents are drawn from ``random.Random(seed)`` before anything touches the database
(:func:`plan_residents`), and so is the season (:func:`plan_season`), so the same seed always
yields the same people doing the same things; who redeems what (:func:`plan_redemptions`)
follows from the seed and the points the season had earned by the end of August. Loading goes
only through the service functions, the way staff would enter the same data, and looks each
record up by its natural key first: loading again adds nothing, and the opening balances, the
season's service, the donation and the redemptions replay through their idempotency keys.
"""

from __future__ import annotations

import datetime as dt
import random
import zoneinfo
from collections import Counter
from dataclasses import Field, dataclass, field, fields, replace
from typing import Callable, Iterator, TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger import identity
from ledger.activities import (
    RecordedActivity,
    Service,
    correct_activity,
    record_activity,
    report_own_service,
    review_report,
)
from ledger.annual import set_party_members_employed
from ledger.db import integer_sum
from ledger.errors import Conflict
from ledger.events import Attendee, record_event
from ledger.models import (
    Account,
    AccountKind,
    Activity,
    AppUser,
    Role,
    CoBuildingUnit,
    EmployerUnit,
    LimitPeriod,
    OrgKind,
    OrderClaim,
    OrderEvent,
    OrgNode,
    Participant,
    PeriodKind,
    PeriodTotal,
    RedemptionStatus,
    Reward,
    RewardKind,
    RuleSetStatus,
    ServiceOrder,
    Team,
    TeamMember,
    TransactionKindCode,
    UnitKind,
    Volunteer,
)
from ledger.order_flow import Happening, OrderKind
from ledger.orders import (
    ACTIVITY_KEY_PREFIX,
    cancel_order,
    claim_order,
    close_overdue,
    confirm,
    deliver,
    post_order,
    publish_order,
    reject,
    withdraw,
)
from ledger.orgs import create_org_node
from ledger.participants import (
    create_team,
    join_team,
    person_by_id_number,
    register_co_building_unit,
    register_employer_unit,
    register_party_member,
    register_volunteer,
)
from ledger.points import transfer
from ledger.rewards import star_standing
from ledger.rules import publish_default, rules_of, version_in_force, versions
from ledger.shelf import add_reward, cancel, donate_stock, fulfil, redeem
from ledger.transactions import participant_account, record_transaction, system_account
from ledger.users import SYSTEM_USERNAME, ensure_user, grant_role, set_password

T = TypeVar("T")

LOADER_USERNAME = "demo-loader"
LOADER_DISPLAY_NAME = "演示数据导入"

DISTRICT_CODE, DISTRICT_NAME = "DEMO-D", "示范区"
STREET_CODE, STREET_NAME = "DEMO-S1", "城东街道"
CHINESE_NUMERALS = "〇一二三四五六七八九十"


@dataclass(frozen=True)
class DemoCommunity:
    """A community of the demo street, its grid tree and its teams."""

    code: str
    name: str
    #: Grid paths: "2" is level-1 grid 2, "2-1" its first micro-grid, "2-1-3" a building grid in that.
    grids: tuple[str, ...]
    #: Volunteer service teams (志愿服务队) and the day each was founded.
    teams: tuple[tuple[str, dt.date], ...]


COMMUNITIES = (
    DemoCommunity(
        "DEMO-C1",
        "幸福里社区",
        grids=("1", "1-1", "1-2", "2", "2-1", "2-2", "3", "3-1", "3-2"),
        teams=(
            ("红马甲巡逻队", dt.date(2019, 6, 1)),
            ("邻里互助队", dt.date(2020, 3, 5)),
            ("政策宣讲队", dt.date(2021, 7, 1)),
        ),
    ),
    DemoCommunity(
        "DEMO-C2",
        "和平社区",
        grids=("1", "1-1", "1-1-1", "1-1-2", "1-2", "2", "2-1", "2-2", "2-2-1", "2-2-2", "2-2-3"),
        teams=(
            ("红马甲巡逻队", dt.date(2019, 9, 1)),
            ("环境卫生志愿队", dt.date(2020, 5, 20)),
            ("关爱老人服务队", dt.date(2022, 1, 10)),
        ),
    ),
    DemoCommunity(
        "DEMO-C3",
        "桂花园社区",
        grids=("1", "2", "3", "4"),
        teams=(("邻里互助队", dt.date(2020, 8, 1)), ("环境卫生志愿队", dt.date(2021, 4, 12))),
    ),
)


def grid_code(community_code: str, path: str) -> str:
    """Return the org code of a grid: ``DEMO-C1`` and ``2-1`` give ``DEMO-C1-G2-1``."""
    return f"{community_code}-G{path}"


def _leaf_grids() -> dict[str, DemoCommunity]:
    """Return the code of every grid without grids under it (where people live) and its community."""
    return {
        grid_code(community.code, path): community
        for community in COMMUNITIES
        for path in community.grids
        if not any(other.startswith(f"{path}-") for other in community.grids)
    }


LEAF_GRIDS = _leaf_grids()

#: Employers of in-service party members: name, unified social credit code (check characters
#: per GB 32100-2015) or None where the employer has not given one, and how many in-service
#: party members it says it has (its report-in rate is counted against that), or None where it
#: has not said. Each has four of the demo's party members; most employ a few more.
EMPLOYERS = (
    ("示范区税务局", "11320102945807305F", 6),
    ("示范区人民医院", "12320102215736816L", 9),
    ("示范区第一中学", None, None),
    ("中国工商银行示范区支行", "91320102MAJ70P6D0C", 4),
    ("示范区城市建设投资集团有限公司", "91320102MA85XUQC1Y", 7),
    ("示范区市场监督管理局", "113201022129972285", 5),
)

#: Co-building units: (community code, name, kind, credit code or None, reported on).
CO_BUILDING_UNITS = (
    ("DEMO-C1", "城东派出所", UnitKind.GOVERNMENT_AGENCY, "11320102003322451H", dt.date(2021, 3, 12)),
    ("DEMO-C1", "锦绣物业服务有限公司", UnitKind.PROPERTY_COMPANY, "91320102MAY6HWML6T", dt.date(2021, 5, 8)),
    ("DEMO-C1", "示范区图书馆", UnitKind.PUBLIC_INSTITUTION, "12320102323640563A", dt.date(2022, 4, 23)),
    ("DEMO-C1", "明德律师事务所党支部", UnitKind.TWO_NEW_ORGANISATION, None, dt.date(2023, 6, 30)),
    ("DEMO-C2", "城东消防救援站", UnitKind.GOVERNMENT_AGENCY, "1132010222415499XA", dt.date(2021, 11, 9)),
    ("DEMO-C2", "和平社区卫生服务中心", UnitKind.PUBLIC_INSTITUTION, "12320102095145471F", dt.date(2021, 2, 26)),
    ("DEMO-C2", "安居物业管理有限公司", UnitKind.PROPERTY_COMPANY, "91320102MANA5FFNX0", dt.date(2022, 7, 15)),
    ("DEMO-C2", "城东社会工作服务中心", UnitKind.SOCIAL_ORGANISATION, "523201022040560810", dt.date(2022, 9, 1)),
    ("DEMO-C3", "城东供电所", UnitKind.ENTERPRISE, "91320102MARDBCJT9A", dt.date(2021, 8, 18)),
    ("DEMO-C3", "益家超市有限公司", UnitKind.ENTERPRISE, "91320102MA0E1N5K39", dt.date(2023, 3, 3)),
    ("DEMO-C3", "示范区志愿者协会", UnitKind.SOCIAL_ORGANISATION, "51320102313758584G", dt.date(2020, 12, 5)),
    ("DEMO-C3", "顺达快递城东网点党支部", UnitKind.TWO_NEW_ORGANISATION, None, dt.date(2024, 5, 20)),
)

#: Common surnames, most frequent first; drawn with weights falling off by rank.
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
SURNAME_WEIGHTS = tuple(1 / (rank + 8) for rank in range(len(SURNAMES)))
#: Characters of given names; the ID number's sequence digit is odd for men, even for women.
MALE_GIVEN = "伟强磊军勇杰涛斌超明刚平辉鹏华飞建国志文博宇浩然俊峰林成海东亮晨德福"
FEMALE_GIVEN = "芳娜敏静丽艳娟霞秀英玲婷雪琳颖洁慧倩兰凤梅莉红燕萍佳欣怡彤淑桂珍"
#: Regions of birth written into ID numbers: mostly this district, some from elsewhere.
REGION_CODES = ("320102", "320102", "320102", "320104", "320106", "320111", "320321", "341122", "370102")

#: Birth-date ranges of volunteers, with weights: retirees first, and a few teenagers
#: (born after November 2008, so still minors in 2026).
VOLUNTEER_COHORTS = (
    ((dt.date(1950, 1, 1), dt.date(1964, 12, 31)), 40),
    ((dt.date(1965, 1, 1), dt.date(1984, 12, 31)), 30),
    ((dt.date(1985, 1, 1), dt.date(2008, 10, 31)), 25),
    ((dt.date(2008, 12, 1), dt.date(2011, 6, 30)), 5),
)
#: In-service party members are of working age.
WORKING_AGE = (dt.date(1966, 1, 1), dt.date(1998, 12, 31))
#: Youngest age, in days, at which a resident registers as a volunteer.
MIN_REGISTRATION_AGE_DAYS = 14 * 365 + 4

VOLUNTEERS = 240
PARTY_MEMBERS = 24
#: Of the party members, how many are volunteers already.
PARTY_MEMBERS_WHO_VOLUNTEER = 8
REGISTRATION_PERIOD = (dt.date(2019, 3, 5), dt.date(2025, 12, 20))
REPORT_IN_PERIOD = (dt.date(2021, 1, 1), dt.date(2025, 12, 20))
#: The day paper passbooks were closed and their points carried into the ledger.
CARRY_OVER_DATE = dt.date(2025, 12, 31)
#: Share of volunteers who had a paper passbook with points on it.
PASSBOOK_SHARE = 0.65
#: Passbook balances run from a few points to several hundred; most are small.
PASSBOOK_POINTS = (5, 800)
#: Chance of a volunteer being in no, one or two of their community's teams.
TEAM_COUNT_WEIGHTS = (45, 40, 15)


@dataclass(frozen=True)
class Resident:
    """One person of the demo street, with the roles and records the demo gives them."""

    real_name: str
    id_number: str
    #: Code of the (smallest) grid the person lives in.
    grid_code: str
    volunteer_number: str | None = None
    registered_on: dt.date | None = None
    #: Points on the paper passbook carried over, or 0 without one.
    opening_balance: int = 0
    #: Teams of the person's community they belong to, with the day they joined.
    teams: tuple[tuple[str, dt.date], ...] = ()
    employer: str | None = None
    reported_on: dt.date | None = None


@dataclass(frozen=True)
class Tally:
    """How many of one kind of record the demo street holds, and how many this run added."""

    total: int
    new: int


def _tally(label: str):
    """Declare a line of the summary with the label it is printed under."""
    return field(metadata={"label": label})


@dataclass(frozen=True)
class DemoSummary:
    """What the demo street holds after a load, kind by kind."""

    org_nodes: Tally = _tally("组织节点 org nodes")
    volunteers: Tally = _tally("志愿者 volunteers")
    party_members: Tally = _tally("报到党员 party members")
    employer_units: Tally = _tally("党员工作单位 employer units")
    co_building_units: Tally = _tally("共建单位 co-building units")
    teams: Tally = _tally("志愿服务队 teams")
    team_members: Tally = _tally("队员 team members")
    opening_balances: Tally = _tally("存折结转 opening balances")
    rule_set_versions: Tally = _tally("积分规则版本 rule set versions")
    events: Tally = _tally("活动签到表 events")
    activities: Tally = _tally("服务记录 activities")
    rewards: Tally = _tally("爱心超市兑换品 rewards")
    redemptions: Tally = _tally("积分兑换 redemptions")
    orders: Tally = _tally("需求、微心愿与共建项目 orders")
    #: Ids of the self-reports still waiting for review.
    pending_reports: tuple[int, ...] = ()
    #: Ids of the redemptions still waiting to be handed over, and of those cancelled (refunded).
    requested_redemptions: tuple[int, ...] = ()
    cancelled_redemptions: tuple[int, ...] = ()
    #: Id of the street's priority reward, whose holders staff export.
    priority_reward: int | None = None
    #: Ids of the order claims delivered and waiting for confirmation, and of those past their deadline.
    delivered_claims: tuple[int, ...] = ()
    claims_past_deadline: tuple[int, ...] = ()

    @staticmethod
    def tallies() -> list[Field]:
        """Return the fields that count records, in the order they are printed."""
        return [item for item in fields(DemoSummary) if "label" in item.metadata]

    @property
    def new(self) -> int:
        """Records of every kind this run added."""
        return sum(getattr(self, item.name).new for item in self.tallies())

    def describe(self) -> str:
        lines = [f"演示街道 demo street {STREET_NAME} ({STREET_CODE}):"]
        for item in self.tallies():
            tally = getattr(self, item.name)
            lines.append(f"  {item.metadata['label']}: {tally.total} ({tally.new} new)")
        if self.pending_reports:
            ids = ", ".join(map(str, self.pending_reports))
            lines.append(
                f"  待审核自报 self-reports waiting for review: activity {ids}, "
                f"reported as {REPORTER_USERNAME}; review it as {STAFF_USERNAME}"
            )
        if self.requested_redemptions:
            ids = ", ".join(map(str, self.requested_redemptions))
            lines.append(
                f"  待领取兑换 redemptions waiting to be handed over: {ids}; "
                f"try: ledger redemptions fulfil {self.requested_redemptions[0]} --as {STAFF_USERNAME}"
            )
        if self.cancelled_redemptions:
            ids = ", ".join(map(str, self.cancelled_redemptions))
            lines.append(f"  已取消兑换 cancelled redemptions (points refunded, stock returned): {ids}")
        if self.priority_reward is not None:
            lines.append(f"  养老服务优先权 priority holders: try: ledger shelf holders {self.priority_reward}")
        if self.delivered_claims:
            ids = ", ".join(map(str, self.delivered_claims))
            lines.append(
                f"  待确认交付 order deliveries waiting for confirmation: claim {ids}; "
                f"try: ledger orders confirm {self.delivered_claims[0]} --as {STAFF_USERNAME}"
            )
        if self.claims_past_deadline:
            ids = ", ".join(map(str, self.claims_past_deadline))
            lines.append(
                f"  逾期未交付 claims past their deadline, not delivered: claim {ids}; "
                f"try: ledger orders close-overdue --as-of {ENTERED_AT.date().isoformat()}"
            )
        lines.append("  积分到期 expiry of the 2025 passbook points: try: ledger expire --as-of 2027-01-01")
        return "\n".join(lines)


def _grid_name(parent: OrgNode, number: str) -> str:
    """Name a grid after its parent: 第二网格, then 第二网格1号微网格, then 第二网格1号微网格3号楼栋."""
    if parent.kind == OrgKind.COMMUNITY:
        return f"第{CHINESE_NUMERALS[int(number)]}网格"
    return f"{parent.name}{number}{'号微网格' if parent.grid_level == 1 else '号楼栋'}"


def plan_residents(seed: int) -> tuple[Resident, ...]:
    """Return the demo street's residents: volunteers first, then party members who are not.

    Every draw comes from one ``random.Random(seed)`` in a fixed order, and nothing here
    reads the database, so the same seed gives the same people on every run and machine.
    """
    rng = random.Random(seed)
    taken: set[str] = set()
    volunteers = [_draw_volunteer(rng, taken, number) for number in range(1, VOLUNTEERS + 1)]
    in_work = [index for index, person in enumerate(volunteers) if _is_working_age(person)]
    chosen = rng.sample(in_work, PARTY_MEMBERS_WHO_VOLUNTEER)
    for order, index in enumerate(chosen):
        volunteers[index] = _reporting_in(rng, volunteers[index], order)
    others = [
        _reporting_in(rng, _draw_resident(rng, taken, WORKING_AGE), order)
        for order in range(PARTY_MEMBERS_WHO_VOLUNTEER, PARTY_MEMBERS)
    ]
    return tuple(volunteers + others)


def _draw_date(rng: random.Random, first: dt.date, last: dt.date) -> dt.date:
    return dt.date.fromordinal(rng.randint(first.toordinal(), last.toordinal()))


def _draw_resident(rng: random.Random, taken: set[str], born: tuple[dt.date, dt.date]) -> Resident:
    """Draw a person born in ``born``: a name and a valid ID number no one else has."""
    male = rng.random() < 0.5
    given = MALE_GIVEN if male else FEMALE_GIVEN
    name = rng.choices(SURNAMES, weights=SURNAME_WEIGHTS)[0] + "".join(rng.choices(given, k=rng.choice((1, 2, 2))))
    while True:
        birth = _draw_date(rng, *born)
        sequence = f"{rng.randrange(100):02d}{rng.randrange(1 if male else 0, 10, 2)}"
        first = f"{rng.choice(REGION_CODES)}{birth:%Y%m%d}{sequence}"
        id_number = first + identity.check_character(first)
        if id_number not in taken:
            taken.add(id_number)
            return Resident(real_name=name, id_number=id_number, grid_code=rng.choice(tuple(LEAF_GRIDS)))


def _draw_volunteer(rng: random.Random, taken: set[str], number: int) -> Resident:
    """Draw volunteer ``number`` with registration date, passbook balance and teams."""
    cohorts, weights = zip(*VOLUNTEER_COHORTS)
    person = _draw_resident(rng, taken, rng.choices(cohorts, weights=weights)[0])
    old_enough = identity.birth_date(person.id_number) + dt.timedelta(days=MIN_REGISTRATION_AGE_DAYS)
    registered_on = _draw_date(rng, max(REGISTRATION_PERIOD[0], old_enough), REGISTRATION_PERIOD[1])
    community = LEAF_GRIDS[person.grid_code]
    teams = rng.sample(community.teams, rng.choices((0, 1, 2), weights=TEAM_COUNT_WEIGHTS)[0])
    return replace(
        person,
        volunteer_number=f"DEMO-V{number:05d}",
        registered_on=registered_on,
        opening_balance=_draw_passbook_points(rng) if rng.random() < PASSBOOK_SHARE else 0,
        teams=tuple(
            (name, max(founded_on, registered_on) + dt.timedelta(days=rng.randint(0, 120)))
            for name, founded_on in teams
        ),
    )


def _draw_passbook_points(rng: random.Random) -> int:
    """Draw a passbook balance: skewed so that many are small and a few are large."""
    low, high = PASSBOOK_POINTS
    return round(low * (high / low) ** (rng.random() ** 1.5))


def _is_working_age(person: Resident) -> bool:
    return WORKING_AGE[0] <= identity.birth_date(person.id_number) <= WORKING_AGE[1]


def _reporting_in(rng: random.Random, person: Resident, order: int) -> Resident:
    """Return ``person`` as the ``order``-th party member; employers take turns, so all have some."""
    employer = EMPLOYERS[order % len(EMPLOYERS)][0]
    return replace(person, employer=employer, reported_on=_draw_date(rng, *REPORT_IN_PERIOD))


# The season: a year of service, planned from the seed before anything is recorded.

UTC = dt.timezone.utc
#: Time zone of the demo orgs (the default): the season is planned on its wall clock.
LOCAL_ZONE = zoneinfo.ZoneInfo("Asia/Shanghai")
#: The service the demo records runs from New Year's Day to mid-November 2026.
SEASON = (dt.date(2026, 1, 1), dt.date(2026, 11, 15))
#: When staff enter the season: one fixed moment after its end, so that every run writes the same.
ENTERED_AT = dt.datetime(2026, 11, 20, tzinfo=UTC)
#: The default rules are published as of this moment, so that they are in force all season.
RULES_PUBLISHED_AT = dt.datetime(2025, 1, 1, tzinfo=UTC)

#: Nobody's service overlaps because each kind keeps its own hours: community events in the
#: morning, at most one piece of own service a person and day in the afternoon (over by 19:00,
#: by 21:00 as first mis-entered), the flood watch from 22:00, and the units' own hours.
EVENT_HOURS = (dt.time(9, 0), dt.time(11, 30))
OWN_SERVICE_STARTS = (dt.time(13, 30), dt.time(14, 0), dt.time(15, 0))
UNIT_HOURS = (dt.time(10, 0), dt.time(11, 0))

SATURDAY, WEDNESDAY = 5, 2
#: Each community's monthly clean-up, on its own Saturday of the month (the first, second, third).
CLEAN_UP = ("environment_cleanup", "环境卫生大扫除")
#: Each community's themed event on the month's third Wednesday; the themes take turns.
THEMES = (("patrol", "平安巡逻"), ("policy_publicity", "政策宣传日"), ("elderly_care", "关爱老人走访"))
#: Events every community holds on public holidays, and on 重阳节 (a Sunday in 2026).
HOLIDAY_EVENTS = (
    (dt.date(2026, 2, 17), "patrol", "春节平安巡逻"),
    (dt.date(2026, 5, 1), "environment_cleanup", "劳动节环境整治"),
    (dt.date(2026, 10, 1), "patrol", "国庆节平安巡逻"),
    (dt.date(2026, 10, 18), "elderly_care", "重阳节敬老探访"),
)
#: The storm night every community watches its low-lying lanes: (local start, length, type, title).
#: Five night hours of emergency duty earn more than one activity may, so that cap binds too.
FLOOD_WATCH = (dt.datetime(2026, 7, 14, 22, 0), dt.timedelta(hours=5), "emergency_duty", "防汛应急值守")
#: Fewest and most people on a sign-in sheet; adults only keep the night watch.
EVENT_SIZE = (6, 12)
FLOOD_WATCH_SIZE = (5, 8)
ADULT_AGE = 18
#: Share of a sign-in sheet who come late, and by how much.
LATE_SHARE = 0.15
LATE_BY = (dt.timedelta(minutes=30), dt.timedelta(minutes=60))


@dataclass(frozen=True)
class Habit:
    """How someone serves on their own: how often, at what, and for how long."""

    #: Fewest and most pieces of service, in each month (``monthly``) or in the whole season.
    times: tuple[int, int]
    monthly: bool
    #: Activity types with their weights.
    kinds: tuple[tuple[str, int], ...]
    #: Lengths in minutes; odd ones (1 h 50 min) show the rounding down to the half hour.
    minutes: tuple[int, ...]
    #: Above 1, fewer times are likelier: most people serve now and then, few often.
    skew: float = 1.0

    def count(self, rng: random.Random) -> int:
        """Draw how many times someone serves in a month (or the season)."""
        low, high = self.times
        return low + int((high - low + 1) * rng.random() ** self.skew)


#: What in-service party members do at home, with weights.
PARTY_MEMBER_KINDS = (("volunteer_service", 3), ("policy_publicity", 3), ("micro_wish", 2), ("dispute_mediation", 1))
#: The handful who serve an afternoon or two most weeks: enough to reach the monthly cap in some
#: months and, for some of them, the yearly one by autumn.
REGULAR = Habit(
    times=(3, 8),
    monthly=True,
    kinds=(("volunteer_service", 4), ("patrol", 3), ("elderly_care", 3)),
    minutes=(180, 210, 240),
)
#: Most volunteers: now and then, at anything; many not at all beyond the sign-in sheets.
OCCASIONAL = Habit(
    times=(0, 5),
    monthly=False,
    kinds=(
        ("volunteer_service", 5),
        ("environment_cleanup", 3),
        ("patrol", 2),
        ("elderly_care", 2),
        ("policy_publicity", 2),
        ("micro_wish", 1),
        ("dispute_mediation", 1),
    ),
    minutes=(60, 90, 110, 120, 150, 180),
    skew=2.0,
)
#: Party members who meet the yearly requirement at home (4 activities, 12 hours) on their own...
DILIGENT_PARTY_MEMBER = Habit(times=(4, 7), monthly=False, kinds=PARTY_MEMBER_KINDS, minutes=(180, 210, 240))
#: ...and those who fall short of it; they are kept off the sign-in sheets so that they do.
BUSY_PARTY_MEMBER = Habit(times=(1, 2), monthly=False, kinds=PARTY_MEMBER_KINDS, minutes=(60, 90, 120))
REGULARS_PER_COMMUNITY = 2
PARTY_MEMBERS_FALLING_SHORT = 5
#: What staff write down for each kind of own service.
OWN_SERVICE_DESCRIPTIONS = {
    "volunteer_service": "社区志愿服务",
    "environment_cleanup": "楼道杂物清理",
    "patrol": "楼栋安全巡查",
    "elderly_care": "独居老人陪伴",
    "policy_publicity": "入户政策宣传",
    "micro_wish": "认领并完成居民微心愿",
    "dispute_mediation": "邻里纠纷调解",
}


@dataclass(frozen=True)
class UnitHabit:
    """What every co-building unit does in a season of one activity type: how often, in which months."""

    activity_type: str
    times: tuple[int, int]
    months: tuple[int, int]
    description: str
    #: Persons sent or yuan donated, for the types scored per quantity.
    quantities: tuple[int, ...] | None = None


UNIT_HABITS = (
    UnitHabit("unit_report_in", (1, 1), (1, 1), "年度共建报到"),
    UnitHabit("unit_agreement", (0, 1), (2, 4), "签订年度共建协议"),
    UnitHabit("unit_claim", (0, 2), (3, 10), "认领社区需求清单项目"),
    UnitHabit("unit_staff_sent", (1, 3), (3, 11), "派员参加社区志愿活动（人数）", quantities=(3, 5, 8, 12, 25)),
    UnitHabit("unit_donation", (0, 2), (1, 10), "捐赠物资（折合人民币元）", quantities=(800, 2000, 5000, 12000, 30000)),
)
#: Co-building projects completed in the season: (unit, day, project).
COMPLETED_PROJECTS = (
    ("城东供电所", dt.date(2026, 6, 12), "社区电动自行车充电棚改造"),
    ("锦绣物业服务有限公司", dt.date(2026, 9, 29), "老旧楼道加装扶手"),
)

REPORTER_USERNAME = "demo-volunteer"
STAFF_USERNAME, STAFF_DISPLAY_NAME = "demo-staff", "社区工作者"
#: What the volunteer who signs in as demo-volunteer (the first occasional volunteer of the first
#: community) reports of their own service: (day, type, minutes, approved, reason); ``None``
#: means still waiting for review.
SELF_REPORTS = (
    (dt.date(2026, 10, 20), "volunteer_service", 150, True, None),
    (dt.date(2026, 11, 3), "elderly_care", 120, False, "当天无服务对象签字确认，请补充证明后重新申报"),
    (dt.date(2026, 11, 14), "environment_cleanup", 90, None, None),
)

#: The correction: the first volunteer service from this day on is entered ending this much too
#: late, and put right this long after it started.
CORRECTED_FROM = dt.date(2026, 3, 1)
MIS_ENTERED_BY = dt.timedelta(hours=2)
CORRECTED_AFTER = dt.timedelta(days=7)
CORRECTION_REASON = "结束时间录入错误，按签到表更正 (end time mis-entered; corrected from the sign-in sheet)"


def resident_handle(index: int) -> str:
    """Return how the season names the ``index``-th planned resident: ``R017``."""
    return f"R{index:03d}"


def unit_handle(index: int) -> str:
    """Return how the season names the ``index``-th co-building unit: ``U03``."""
    return f"U{index:02d}"


@dataclass(frozen=True)
class PlannedService:
    """One piece of service as it is entered: by staff, or by the person in a self-report."""

    #: Idempotency key, from who and the day: nobody has two pieces of own service on one day.
    key: str
    #: Who served: a resident's or a unit's handle.
    who: str
    community: str
    activity_type: str
    started_at: dt.datetime
    ended_at: dt.datetime
    quantity: int | None = None
    description: str | None = None

    @property
    def when(self) -> dt.datetime:
        return self.started_at


@dataclass(frozen=True)
class PlannedEvent:
    """A community event and its sign-in sheet."""

    key: str
    community: str
    title: str
    activity_type: str
    started_at: dt.datetime
    ended_at: dt.datetime
    #: Who signed in, with their own start if they came late.
    attendees: tuple[tuple[str, dt.datetime | None], ...]
    tags: frozenset[str] = frozenset()

    @property
    def when(self) -> dt.datetime:
        return self.started_at


@dataclass(frozen=True)
class PlannedReport:
    """A self-report and its review: approved, rejected with a reason, or (``None``) still waiting."""

    service: PlannedService
    approved: bool | None
    reason: str | None = None

    @property
    def key(self) -> str:
        return self.service.key

    @property
    def when(self) -> dt.datetime:
        return self.service.started_at


@dataclass(frozen=True)
class PlannedCorrection:
    """Staff put right an activity entered with the wrong end, some days later."""

    original: PlannedService
    ended_at: dt.datetime
    when: dt.datetime
    reason: str = CORRECTION_REASON

    @property
    def key(self) -> str:
        return f"{self.original.key}-correction"


#: One thing entered in the season.
Step = PlannedService | PlannedEvent | PlannedReport | PlannedCorrection


@dataclass(frozen=True)
class _Cast:
    """Who plays which part in the season, by handle."""

    #: (handle, community code, habit) of every resident.
    habits: tuple[tuple[str, str, Habit], ...]
    #: Who may sign in at each community's events: its residents but the party members falling short.
    sheets: dict[str, tuple[tuple[str, Resident], ...]]
    #: Handle and community of the volunteer who reports their own service.
    reporter: tuple[str, str]


def plan_season(residents: tuple[Resident, ...], seed: int) -> tuple[Step, ...]:
    """Return the season's service in the order it is entered: by start, and corrections when made.

    Pure like :func:`plan_residents`, from its own ``random.Random``, so the same seed plans
    the same season. Every piece names its participant by handle (:func:`resident_handle`,
    :func:`unit_handle`) and carries a key made of who and the day, so a second load replays.
    """
    rng = random.Random(f"season-{seed}")
    cast = _cast(rng, residents)
    busy: dict[str, set[dt.date]] = {}
    reporter, reporter_community = cast.reporter
    reports = _self_reports(reporter, reporter_community, busy.setdefault(reporter, set()))
    services = [
        service
        for who, community, habit in cast.habits
        for service in _own_service(rng, who, community, habit, busy.setdefault(who, set()))
    ]
    services += [
        service
        for index, (community, name, *_) in enumerate(CO_BUILDING_UNITS)
        for service in _unit_service(rng, unit_handle(index), name, community)
    ]
    services, correction = _mis_entered(services)
    events = [
        event
        for order, community in enumerate(COMMUNITIES)
        for event in _events(rng, order, community, cast.sheets[community.code])
    ]
    return tuple(sorted([*services, correction, *reports, *events], key=lambda step: (step.when, step.key)))


def _cast(rng: random.Random, residents: tuple[Resident, ...]) -> _Cast:
    """Pick the regulars (adult volunteers, a few per community), the party members falling short, the reporter."""
    people = {community.code: [] for community in COMMUNITIES}
    for index, resident in enumerate(residents):
        people[LEAF_GRIDS[resident.grid_code].code].append((resident_handle(index), resident))
    party_members = [who for here in people.values() for who, person in here if person.employer]
    short = set(rng.sample(party_members, PARTY_MEMBERS_FALLING_SHORT))
    regulars = {
        who
        for here in people.values()
        for who in rng.sample(
            [who for who, person in here if not person.employer and _is_adult(person, SEASON[0])],
            REGULARS_PER_COMMUNITY,
        )
    }
    habits = tuple(
        (who, code, _habit(person, who in regulars, who in short))
        for code, here in people.items()
        for who, person in here
    )
    first = COMMUNITIES[0].code
    reporter = next(who for who, code, habit in habits if code == first and habit is OCCASIONAL)
    sheets = {code: tuple((who, person) for who, person in here if who not in short) for code, here in people.items()}
    return _Cast(habits, sheets, (reporter, first))


def _habit(person: Resident, regular: bool, short: bool) -> Habit:
    if person.employer:
        return BUSY_PARTY_MEMBER if short else DILIGENT_PARTY_MEMBER
    return REGULAR if regular else OCCASIONAL


def _is_adult(person: Resident, day: dt.date) -> bool:
    return _age(identity.birth_date(person.id_number), day) >= ADULT_AGE


def _at(day: dt.date, time: dt.time) -> dt.datetime:
    return dt.datetime.combine(day, time, LOCAL_ZONE)


def _span(first_month: int, last_month: int) -> tuple[dt.date, dt.date]:
    """Return the first day of ``first_month`` and the last of ``last_month`` in the season, within it."""
    year = SEASON[0].year
    after = dt.date(year + last_month // 12, last_month % 12 + 1, 1)
    return max(dt.date(year, first_month, 1), SEASON[0]), min(after - dt.timedelta(days=1), SEASON[1])


def _months() -> list[tuple[dt.date, dt.date]]:
    return [_span(month, month) for month in range(SEASON[0].month, SEASON[1].month + 1)]


def _free_day(rng: random.Random, busy: set[dt.date], first: dt.date, last: dt.date) -> dt.date:
    """Draw a day from ``first`` to ``last`` with no own service of the person's yet, and take it."""
    free = [day for day in map(dt.date.fromordinal, range(first.toordinal(), last.toordinal() + 1)) if day not in busy]
    day = rng.choice(free)
    busy.add(day)
    return day


def _own_key(who: str, day: dt.date) -> str:
    return f"demo-{who}-{day.isoformat()}"


def _own_service(
    rng: random.Random, who: str, community: str, habit: Habit, busy: set[dt.date]
) -> Iterator[PlannedService]:
    for first, last in _months() if habit.monthly else [SEASON]:
        for _ in range(habit.count(rng)):
            day = _free_day(rng, busy, first, last)
            kinds, weights = zip(*habit.kinds)
            kind = rng.choices(kinds, weights=weights)[0]
            start = _at(day, rng.choice(OWN_SERVICE_STARTS))
            end = start + dt.timedelta(minutes=rng.choice(habit.minutes))
            yield PlannedService(
                _own_key(who, day), who, community, kind, start, end, description=OWN_SERVICE_DESCRIPTIONS[kind]
            )


def _unit_service(rng: random.Random, who: str, name: str, community: str) -> Iterator[PlannedService]:
    """Yield a unit's season: its completed project, if any, and what its habits draw."""
    busy: set[dt.date] = set()
    done = [(day, project) for unit, day, project in COMPLETED_PROJECTS if unit == name]
    for day, project in done:
        busy.add(day)
        yield _unit_activity(who, community, day, "unit_project_completed", f"完成共建项目：{project}")
    for habit in UNIT_HABITS:
        for _ in range(rng.randint(*habit.times)):
            day = _free_day(rng, busy, *_span(*habit.months))
            quantity = rng.choice(habit.quantities) if habit.quantities else None
            yield _unit_activity(who, community, day, habit.activity_type, habit.description, quantity)


def _unit_activity(
    who: str, community: str, day: dt.date, activity_type: str, description: str, quantity: int | None = None
) -> PlannedService:
    start, end = (_at(day, time) for time in UNIT_HOURS)
    return PlannedService(_own_key(who, day), who, community, activity_type, start, end, quantity, description)


def _self_reports(who: str, community: str, busy: set[dt.date]) -> list[PlannedReport]:
    reports = []
    for day, kind, minutes, approved, reason in SELF_REPORTS:
        busy.add(day)
        start = _at(day, OWN_SERVICE_STARTS[0])
        service = PlannedService(
            _own_key(who, day),
            who,
            community,
            kind,
            start,
            start + dt.timedelta(minutes=minutes),
            description=f"本人申报：{OWN_SERVICE_DESCRIPTIONS[kind]}",
        )
        reports.append(PlannedReport(service, approved, reason))
    return reports


def _mis_entered(services: list[PlannedService]) -> tuple[list[PlannedService], PlannedCorrection]:
    """Return the services with one entered ending too late, and the correction that puts it right."""
    original = min(
        (s for s in services if s.activity_type == "volunteer_service" and s.started_at.date() >= CORRECTED_FROM),
        key=lambda service: (service.started_at, service.key),
    )
    wrong = replace(original, ended_at=original.ended_at + MIS_ENTERED_BY)
    correction = PlannedCorrection(wrong, original.ended_at, original.started_at + CORRECTED_AFTER)
    return [wrong if service is original else service for service in services], correction


def _nth_weekday(first_of_month: dt.date, weekday: int, n: int) -> dt.date:
    return first_of_month + dt.timedelta(days=(weekday - first_of_month.weekday()) % 7 + 7 * (n - 1))


def _events(
    rng: random.Random, order: int, community: DemoCommunity, sheet: tuple[tuple[str, Resident], ...]
) -> Iterator[PlannedEvent]:
    """Yield a community's events: monthly clean-up and themed event, the holiday events, the flood watch."""
    days = []
    for first, _ in _months():
        days.append((_nth_weekday(first, SATURDAY, order + 1), *CLEAN_UP))
        days.append((_nth_weekday(first, WEDNESDAY, 3), *THEMES[(first.month + order) % len(THEMES)]))
    for day, activity_type, title in sorted(days + list(HOLIDAY_EVENTS)):
        if day <= SEASON[1]:
            start, end = (_at(day, time) for time in EVENT_HOURS)
            yield _event(rng, community, activity_type, title, start, end, sheet, EVENT_SIZE)
    local_start, length, activity_type, title = FLOOD_WATCH
    start = local_start.replace(tzinfo=LOCAL_ZONE)
    adults = tuple(pair for pair in sheet if _is_adult(pair[1], start.date()))
    emergency = frozenset({"emergency"})
    yield _event(rng, community, activity_type, title, start, start + length, adults, FLOOD_WATCH_SIZE, emergency)


def _event(
    rng: random.Random,
    community: DemoCommunity,
    activity_type: str,
    title: str,
    start: dt.datetime,
    end: dt.datetime,
    sheet: tuple[tuple[str, Resident], ...],
    size: tuple[int, int],
    tags: frozenset[str] = frozenset(),
) -> PlannedEvent:
    """Plan one event: who of ``sheet`` signs in, and who of them comes late."""
    chosen = rng.sample(sheet, min(len(sheet), rng.randint(*size)))
    attendees = tuple((who, start + rng.choice(LATE_BY) if rng.random() < LATE_SHARE else None) for who, _ in chosen)
    return PlannedEvent(
        key=f"demo-event-{community.code}-{start.date().isoformat()}",
        community=community.code,
        title=f"{title} {start.date().isoformat()}",
        activity_type=activity_type,
        started_at=start,
        ended_at=end,
        attendees=attendees,
        tags=tags,
    )


# The reward shelves (爱心超市): what they offer from September, a donation, and what volunteers redeem.

#: The day the shelves open. Who redeems what is planned from the points and service hours each
#: volunteer had earned by the day before, which no later load (nor any redemption) changes.
SHELF_OPENS = dt.date(2026, 9, 1)
#: When a shelf's staff are at the counter: requests are entered at this local time.
COUNTER_OPENS = dt.time(9, 30)


@dataclass(frozen=True)
class PlannedReward:
    """A reward a shelf offers from :data:`SHELF_OPENS`; its name is unique on its shelf."""

    name: str
    kind: str
    price_points: int
    stock: int | None = None
    unit_value_yuan: int | None = None
    per_person_limit: int | None = None
    limit_period: str = LimitPeriod.EVER
    min_star_level: int = 0
    description: str | None = None


#: What every community's shelf offers: goods with stock, services without.
COMMUNITY_REWARDS = (
    PlannedReward(
        "大米 5kg",
        RewardKind.GOODS,
        80,
        stock=30,
        unit_value_yuan=35,
        per_person_limit=2,
        limit_period=LimitPeriod.MONTH,
        description="东北大米，每人每月限兑 2 袋",
    ),
    PlannedReward("食用油 1.8L", RewardKind.GOODS, 60, stock=20, unit_value_yuan=30, description="压榨花生油"),
    PlannedReward("洗衣液 2kg", RewardKind.GOODS, 40, stock=25, unit_value_yuan=20),
    PlannedReward("毛巾", RewardKind.GOODS, 15, stock=40, unit_value_yuan=10, description="纯棉毛巾"),
    PlannedReward(
        "保温杯",
        RewardKind.GOODS,
        120,
        stock=10,
        unit_value_yuan=60,
        min_star_level=1,
        description="一星及以上志愿者可兑 (for volunteers with at least one star)",
    ),
    PlannedReward(
        "理发服务",
        RewardKind.SERVICE,
        30,
        per_person_limit=1,
        limit_period=LimitPeriod.MONTH,
        description="社区爱心理发点理发一次，每人每月 1 次",
    ),
    PlannedReward("家电维修", RewardKind.SERVICE, 50, description="小家电上门维修一次（配件费另计）"),
    PlannedReward(
        "义诊预约",
        RewardKind.SERVICE,
        20,
        per_person_limit=1,
        limit_period=LimitPeriod.MONTH,
        description="社区卫生服务中心义诊预约一次，每人每月 1 次",
    ),
)
#: The street's shelf: the welfare linkage, priority for the communities' elderly-care services.
PRIORITY_REWARD = PlannedReward(
    "社区养老服务优先权",
    RewardKind.PRIORITY,
    200,
    per_person_limit=1,
    description="社区助餐、日间照料名额紧张时优先安排 (priority for community elderly-care services)",
)

#: The donation: (unit, reward on the unit's community shelf, units, value in yuan, day, local hours).
DONATION = ("益家超市有限公司", "毛巾", 50, 500, dt.date(2026, 9, 5), (dt.time(14, 0), dt.time(15, 0)))


@dataclass(frozen=True)
class ShelfVisit:
    """A line of the shelf's script: on ``day``, someone of the community redeems ``quantity`` of ``reward``."""

    day: dt.date
    reward: str
    quantity: int = 1
    #: Days after the request it is handed over (0: at once); ``None`` leaves it requested.
    handed_over_after: int | None = 0


#: What each community's volunteers redeem; each community's days are later by its order (0, 1, 2).
#: Services are done some days after the request; the last requests of the season still wait.
SHELF_SCRIPT = (
    ShelfVisit(dt.date(2026, 9, 5), "大米 5kg", 2),
    ShelfVisit(dt.date(2026, 9, 5), "食用油 1.8L"),
    ShelfVisit(dt.date(2026, 9, 12), "理发服务", handed_over_after=1),
    ShelfVisit(dt.date(2026, 9, 19), "毛巾", 2),
    ShelfVisit(dt.date(2026, 9, 26), "洗衣液 2kg"),
    ShelfVisit(dt.date(2026, 10, 10), "保温杯"),
    ShelfVisit(dt.date(2026, 10, 10), "大米 5kg"),
    ShelfVisit(dt.date(2026, 10, 17), "义诊预约", handed_over_after=3),
    ShelfVisit(dt.date(2026, 10, 24), "家电维修", handed_over_after=2),
    ShelfVisit(dt.date(2026, 10, 31), "食用油 1.8L", 2),
    ShelfVisit(dt.date(2026, 11, 7), "大米 5kg"),
    ShelfVisit(dt.date(2026, 11, 7), "毛巾"),
    ShelfVisit(dt.date(2026, 11, 11), "家电维修", handed_over_after=None),
    ShelfVisit(dt.date(2026, 11, 12), "大米 5kg", handed_over_after=None),
)
#: The redemption cancelled: (community, day, reward, days until cancelled, reason).
CANCELLED_VISIT = (
    "DEMO-C1",
    dt.date(2026, 10, 20),
    "食用油 1.8L",
    2,
    "居民申请撤回：家中已有，改兑其他物品 (withdrawn at the resident's request)",
)
#: The priority, redeemed on 重阳节 by a volunteer of this age or older (if anyone can afford it).
PRIORITY_VISIT = ShelfVisit(dt.date(2026, 10, 18), PRIORITY_REWARD.name, handed_over_after=2)
ELDERLY_AGE = 60


@dataclass(frozen=True)
class ShelfCandidate:
    """A volunteer who may redeem, with what they had earned by the day before the shelves open."""

    who: str
    volunteer_number: str
    community: str
    born: dt.date
    points: int
    star_level: int


@dataclass(frozen=True)
class PlannedRedemption:
    """One redemption at a shelf, and what becomes of it."""

    key: str
    who: str
    #: Code of the org whose shelf holds the reward.
    shelf: str
    reward: str
    quantity: int
    requested_at: dt.datetime
    #: When it is handed over (or granted); ``None`` while it waits, or when it is cancelled.
    fulfilled_at: dt.datetime | None = None
    cancelled_at: dt.datetime | None = None
    cancel_reason: str | None = None

    @property
    def when(self) -> dt.datetime:
        return self.requested_at


def plan_redemptions(candidates: tuple[ShelfCandidate, ...], seed: int) -> tuple[PlannedRedemption, ...]:
    """Return the shelves' redemptions in the order they are requested, each by someone who can make it.

    Pure, from its own ``random.Random``: a visit goes to a volunteer of the shelf's community
    (anyone's, at the street) with the points left after their earlier redemptions, the stars
    the reward asks for and room in its per-person limit; a visit nobody can make is left out.
    Cancelled redemptions are not counted back, so every plan is affordable whatever is refunded.
    """
    rng = random.Random(f"shelf-{seed}")
    rewards = {reward.name: reward for reward in (*COMMUNITY_REWARDS, PRIORITY_REWARD)}
    visits = [
        (replace(visit, day=visit.day + dt.timedelta(days=order)), community.code, None)
        for order, community in enumerate(COMMUNITIES)
        for visit in SHELF_SCRIPT
    ]
    community, day, name, cancelled_after, reason = CANCELLED_VISIT
    visits.append((ShelfVisit(day, name, handed_over_after=None), community, (cancelled_after, reason)))
    visits.append((PRIORITY_VISIT, STREET_CODE, None))
    points = {candidate.who: candidate.points for candidate in candidates}
    used: Counter[tuple[str, str, tuple[int, ...]]] = Counter()
    made: Counter[str] = Counter()
    planned = []
    for visit, shelf, cancelled in sorted(visits, key=lambda item: (item[0].day, item[1], item[0].reward)):
        reward = rewards[visit.reward]
        cost = reward.price_points * visit.quantity
        window = {LimitPeriod.MONTH: (visit.day.year, visit.day.month), LimitPeriod.YEAR: (visit.day.year,)}.get(
            reward.limit_period, ()
        )
        able = [
            candidate
            for candidate in candidates
            if shelf in (STREET_CODE, candidate.community)
            and points[candidate.who] >= cost
            and candidate.star_level >= reward.min_star_level
            and (
                reward.per_person_limit is None
                or used[candidate.who, reward.name, window] + visit.quantity <= reward.per_person_limit
            )
        ]
        if reward.kind == RewardKind.PRIORITY:
            elderly = [c for c in able if _age(c.born, visit.day) >= ELDERLY_AGE]
            able = elderly or able
        if not able:
            continue
        chosen = rng.choice(able)
        points[chosen.who] -= cost
        used[chosen.who, reward.name, window] += visit.quantity
        made[chosen.who] += 1
        requested_at = _at(visit.day, COUNTER_OPENS) + dt.timedelta(minutes=5 * (len(planned) % 24))
        after = dt.timedelta(minutes=20)
        planned.append(
            PlannedRedemption(
                key=f"demo-redeem-{chosen.volunteer_number}-{made[chosen.who]:02d}",
                who=chosen.who,
                shelf=shelf,
                reward=reward.name,
                quantity=visit.quantity,
                requested_at=requested_at,
                fulfilled_at=None
                if visit.handed_over_after is None
                else requested_at + dt.timedelta(days=visit.handed_over_after) + after,
                cancelled_at=None if cancelled is None else requested_at + dt.timedelta(days=cancelled[0]) + after,
                cancel_reason=None if cancelled is None else cancelled[1],
            )
        )
    return tuple(planned)


def _age(born: dt.date, day: dt.date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


# Orders: a season of residents' needs, micro-wishes and co-building projects ----------------

#: The demo's run of the deadline job: orders due by this day ended, overdue claims penalised.
DEADLINE_JOB_AS_OF = dt.date(2026, 10, 31)
DEADLINE_JOB_RAN_AT = dt.datetime(2026, 11, 1, 1, 0, tzinfo=UTC)
#: Deliveries are made in the evening, when nobody's season service is under way.
DELIVERY_HOURS = (dt.time(19, 0), dt.time(20, 30))
#: Each step of an order comes this many days after the one before it.
DAYS_BETWEEN_STEPS = 2


@dataclass(frozen=True)
class PlannedOrder:
    """An order every community posts, and how far it gets: together they reach every state.

    ``steps`` follow the posting, one every :data:`DAYS_BETWEEN_STEPS` days: ``publish``,
    ``claim``, ``withdraw``, ``deliver``, ``reject``, ``confirm`` or ``cancel``. Whoever
    ``claimant`` names (a party member, a volunteer, a co-building unit or a team of the
    community) does the claiming and delivering.
    """

    title: str
    kind: OrderKind
    activity_type: str
    beneficiary_group: str
    posted_on: dt.date
    deadline: dt.date
    steps: tuple[str, ...]
    claimant: str | None = None
    capacity: int = 1
    beneficiary_name: str | None = None

    def step_at(self, index: int) -> dt.datetime:
        """Return when the ``index``-th step is entered: after that evening's delivery."""
        return _at(self.posted_on + dt.timedelta(days=DAYS_BETWEEN_STEPS * index), dt.time(21, 0))

    def key(self, community_code: str) -> str:
        return f"demo-order-{community_code}-{ORDER_SCRIPT.index(self):02d}"


PUBLISHED_THEN_CLAIMED = ("publish", "claim")
ORDER_SCRIPT = (
    PlannedOrder(
        "为独居老人更换楼道灯泡", OrderKind.MICRO_WISH, "micro_wish", "elderly_living_alone",
        dt.date(2026, 9, 2), dt.date(2026, 9, 30), (*PUBLISHED_THEN_CLAIMED, "deliver", "confirm"),
        claimant="party_member", beneficiary_name="王秀英",
    ),
    PlannedOrder(
        "留守儿童的新书包", OrderKind.MICRO_WISH, "micro_wish", "left_behind_child",
        dt.date(2026, 9, 5), dt.date(2026, 10, 10), (*PUBLISHED_THEN_CLAIMED, "deliver", "reject", "deliver", "confirm"),
        claimant="volunteer", beneficiary_name="李小雨",
    ),
    PlannedOrder(
        "老旧小区楼道加装扶手", OrderKind.CO_BUILDING_PROJECT, "unit_project_completed", "community",
        dt.date(2026, 9, 8), dt.date(2026, 11, 30), (*PUBLISHED_THEN_CLAIMED, "deliver", "confirm"), claimant="unit",
    ),
    PlannedOrder(
        "困难家庭冬季被褥", OrderKind.MICRO_WISH, "micro_wish", "family_in_difficulty",
        dt.date(2026, 9, 10), dt.date(2026, 10, 20), ("publish",), beneficiary_name="张建国",
    ),
    PlannedOrder(
        "陪同独居老人就医", OrderKind.SERVICE_NEED, "elderly_care", "elderly_living_alone",
        dt.date(2026, 9, 15), dt.date(2026, 10, 25), PUBLISHED_THEN_CLAIMED,
        claimant="party_member", beneficiary_name="赵桂兰",
    ),
    PlannedOrder(
        "楼道堆物清理", OrderKind.SERVICE_NEED, "environment_cleanup", "community",
        dt.date(2026, 9, 20), dt.date(2026, 10, 30), (*PUBLISHED_THEN_CLAIMED, "deliver", "confirm"), claimant="team",
    ),
    PlannedOrder(
        "重阳节慰问品配送", OrderKind.MICRO_WISH, "micro_wish", "elderly_living_alone",
        dt.date(2026, 10, 1), dt.date(2026, 10, 28), ("publish", "cancel"),
    ),
    PlannedOrder(
        "助残出行陪护", OrderKind.SERVICE_NEED, "volunteer_service", "disabled",
        dt.date(2026, 10, 12), dt.date(2026, 11, 25), (*PUBLISHED_THEN_CLAIMED, "withdraw"),
        claimant="volunteer", capacity=2, beneficiary_name="孙志强",
    ),
    PlannedOrder(
        "社区微课堂志愿讲师", OrderKind.SERVICE_NEED, "policy_publicity", "community",
        dt.date(2026, 10, 20), dt.date(2026, 12, 20), PUBLISHED_THEN_CLAIMED, claimant="party_member", capacity=3,
    ),
    PlannedOrder(
        "独居老人冬季取暖器", OrderKind.MICRO_WISH, "micro_wish", "elderly_living_alone",
        dt.date(2026, 11, 2), dt.date(2026, 11, 18), PUBLISHED_THEN_CLAIMED,
        claimant="party_member", beneficiary_name="周淑珍",
    ),
    PlannedOrder(
        "帮困难家庭修理水管", OrderKind.MICRO_WISH, "micro_wish", "family_in_difficulty",
        dt.date(2026, 11, 3), dt.date(2026, 12, 5), (*PUBLISHED_THEN_CLAIMED, "deliver", "reject"),
        claimant="volunteer", beneficiary_name="吴海东",
    ),
    PlannedOrder(
        "为行动不便老人代购药品", OrderKind.MICRO_WISH, "micro_wish", "disabled",
        dt.date(2026, 11, 5), dt.date(2026, 11, 28), (*PUBLISHED_THEN_CLAIMED, "deliver"),
        claimant="volunteer", beneficiary_name="郑玉兰",
    ),
    PlannedOrder(
        "寒假托管志愿者招募", OrderKind.SERVICE_NEED, "volunteer_service", "left_behind_child",
        dt.date(2026, 11, 12), dt.date(2026, 12, 31), (), capacity=4,
    ),
)
#: Why the demo's staff send a delivery back, and why they cancel an order.
REJECTION_REASON = "缺少交付照片，请补充 (no photo of the hand-over; please add one)"
CANCELLATION_REASON = "慰问品已由街道统一发放 (the street handed them out itself)"


#: One user per role, each over the demo org whose code is given (the volunteer's own community).
DEMO_SIGN_INS = (
    ("demo-admin", "系统管理员", Role.SYSTEM_ADMIN, None),
    ("demo-street", "街道管理员", Role.STREET_ADMIN, "DEMO-S1"),
    (STAFF_USERNAME, STAFF_DISPLAY_NAME, Role.COMMUNITY_STAFF, "DEMO-C1"),
    ("demo-grid", "网格员", Role.GRID_WORKER, "DEMO-C1-G1"),
    ("demo-auditor", "审计员", Role.AUDITOR, "DEMO-S1"),
    (REPORTER_USERNAME, None, Role.VOLUNTEER, None),
)
#: The password of every demo user, set only outside production (``ledger demo`` decides).
DEMO_PASSWORD = "demo-password-2026"


def load_demo(
    session: Session,
    *,
    seed: int = 2026,
    id_number_key: str,
    through: dt.date = SEASON[1],
    sign_in_password: str | None = None,
) -> DemoSummary:
    """Load the demo street and its season through the services, adding only what is not there yet.

    ``through`` ends the season early: service planned after that day is left out, and a
    later load with a later day adds it. Tests load a month or two this way, where the whole
    season is not the point; ``CARRY_OVER_DATE`` loads the street (and its rules) alone. The
    reward shelves open in September (:data:`SHELF_OPENS`), after the season is entered: their
    donation, redemptions, hand-overs and cancellation are left out after ``through`` as well.
    """
    loader = _Loader(session, id_number_key)
    loader.load_orgs()
    loader.load_employers()
    loader.load_units()
    loader.load_teams()
    residents = plan_residents(seed)
    for index, resident in enumerate(residents):
        loader.load_resident(resident, resident_handle(index))
    loader.load_rules()
    for step in plan_season(residents, seed):
        if step.when.date() > through:
            break
        loader.enter(step)
    if through >= SHELF_OPENS:
        loader.load_shelves(residents, seed, through)
    loader.load_orders(residents, through)
    loader.load_sign_ins(sign_in_password)
    return loader.summary()


class _Loader:
    """One load of the demo: finds or creates each record, and counts which it did."""

    def __init__(self, session: Session, id_number_key: str):
        self.session = session
        self.id_number_key = id_number_key
        self.actor = ensure_user(session, LOADER_USERNAME, LOADER_DISPLAY_NAME)
        self.new: Counter[str] = Counter()
        self.present: Counter[str] = Counter()
        self.orgs: dict[str, OrgNode] = {}
        self.employers: dict[str, EmployerUnit] = {}
        self.teams: dict[tuple[int, str], Team] = {}
        #: Each community's opening-balance account, which passbook points are carried over from.
        self.opening_accounts: dict[int, Account] = {}
        #: Participant ids by the season's handles (:func:`resident_handle`, :func:`unit_handle`).
        self.participants: dict[str, int] = {}
        #: Ids of the activities entered, by key: what a correction corrects.
        self.activities: dict[str, int] = {}
        self.pending_reports: list[int] = []
        #: Rewards by (shelf org code, name).
        self.rewards: dict[tuple[str, str], Reward] = {}
        self.requested_redemptions: list[int] = []
        self.cancelled_redemptions: list[int] = []
        #: Claims delivered and waiting for confirmation, and claims not delivered though their deadline passed.
        self.delivered_claims: list[int] = []
        self.claims_past_deadline: list[int] = []

    def summary(self) -> DemoSummary:
        priority = self.rewards.get((STREET_CODE, PRIORITY_REWARD.name))
        return DemoSummary(
            **{
                item.name: Tally(total=self.new[item.name] + self.present[item.name], new=self.new[item.name])
                for item in DemoSummary.tallies()
            },
            pending_reports=tuple(self.pending_reports),
            requested_redemptions=tuple(self.requested_redemptions),
            cancelled_redemptions=tuple(self.cancelled_redemptions),
            priority_reward=priority.id if priority is not None else None,
            delivered_claims=tuple(self.delivered_claims),
            claims_past_deadline=tuple(self.claims_past_deadline),
        )

    def _count(self, what: str, *, new: bool, records: int = 1) -> None:
        (self.new if new else self.present)[what] += records

    def _ensure(self, what: str, existing: T | None, create: Callable[[], T]) -> T:
        """Return ``existing`` if the demo already holds it, else what ``create`` makes; count which."""
        self._count(what, new=existing is None)
        return create() if existing is None else existing

    def _find(self, statement):
        return self.session.execute(statement).scalar_one_or_none()

    def load_orgs(self) -> None:
        district = self._org(DISTRICT_CODE, DISTRICT_NAME, OrgKind.DISTRICT, None)
        street = self._org(STREET_CODE, STREET_NAME, OrgKind.STREET, district)
        for community in COMMUNITIES:
            node = self._org(community.code, community.name, OrgKind.COMMUNITY, street)
            self.opening_accounts[node.id] = system_account(self.session, node, AccountKind.OPENING_BALANCE)
            for path in community.grids:
                parent_path, _, number = path.rpartition("-")
                parent = self.orgs[grid_code(community.code, parent_path)] if parent_path else node
                self._org(grid_code(community.code, path), _grid_name(parent, number), OrgKind.GRID, parent)

    def _org(self, code: str, name: str, kind: OrgKind, parent: OrgNode | None) -> OrgNode:
        node = self._ensure(
            "org_nodes",
            self._find(select(OrgNode).where(OrgNode.code == code)),
            lambda: create_org_node(self.session, code=code, name=name, kind=kind, parent=parent),
        )
        self.orgs[code] = node
        return node

    def load_employers(self) -> None:
        district = self.orgs[DISTRICT_CODE]
        for name, credit_code, party_members_employed in EMPLOYERS:
            employer = self._ensure(
                "employer_units",
                self._find(select(EmployerUnit).where(EmployerUnit.name == name)),
                lambda: register_employer_unit(self.session, org=district, name=name, credit_code=credit_code),
            )
            if party_members_employed is not None:
                set_party_members_employed(self.session, employer_unit_id=employer.id, count=party_members_employed)
            self.employers[name] = employer

    def load_units(self) -> None:
        for index, (community_code, name, unit_kind, credit_code, reported_on) in enumerate(CO_BUILDING_UNITS):
            community = self.orgs[community_code]
            unit = self._ensure(
                "co_building_units",
                self._find(
                    select(Participant)
                    .join(CoBuildingUnit)
                    .where(Participant.org_id == community.id, Participant.display_name == name)
                ),
                lambda: register_co_building_unit(
                    self.session,
                    community=community,
                    name=name,
                    unit_kind=unit_kind,
                    reported_on=reported_on,
                    credit_code=credit_code,
                ),
            )
            self.participants[unit_handle(index)] = unit.id

    def load_teams(self) -> None:
        for community in COMMUNITIES:
            org = self.orgs[community.code]
            for name, founded_on in community.teams:
                self.teams[org.id, name] = self._ensure(
                    "teams",
                    self._find(select(Team).where(Team.org_id == org.id, Team.name == name)),
                    lambda: create_team(self.session, org=org, name=name, founded_on=founded_on),
                )

    def load_resident(self, resident: Resident, handle: str) -> None:
        """Register the resident's roles, then their team places and passbook balance."""
        grid = self.orgs[resident.grid_code]
        community = self.session.get(OrgNode, grid.community_id)
        participant = self._volunteer(resident, grid) if resident.volunteer_number else None
        if resident.employer:  # a volunteer who reports in stays the same participant
            participant = self._party_member(resident, grid)
        self.participants[handle] = participant.id
        for name, joined_on in resident.teams:
            team = self.teams[community.id, name]
            self._ensure(
                "team_members",
                self.session.get(TeamMember, (team.id, participant.id)),
                lambda: join_team(self.session, team=team, participant=participant, joined_on=joined_on),
            )
        if resident.opening_balance:
            self._opening_balance(resident, community, participant)

    def _volunteer(self, resident: Resident, grid: OrgNode) -> Participant:
        volunteer = self._find(select(Volunteer).where(Volunteer.volunteer_number == resident.volunteer_number))
        if volunteer is not None and volunteer.person.id_number_digest != identity.id_digest(
            resident.id_number, self.id_number_key
        ):
            raise Conflict(
                f"volunteer number {resident.volunteer_number} belongs to someone else here: this database "
                "holds a demo street loaded with another seed or ID-number key",
                field="seed",
            )
        return self._ensure(
            "volunteers",
            volunteer.person.participant if volunteer is not None else None,
            lambda: register_volunteer(
                self.session,
                org=grid,
                real_name=resident.real_name,
                id_number=resident.id_number,
                volunteer_number=resident.volunteer_number,
                registered_on=resident.registered_on,
                id_number_key=self.id_number_key,
            ),
        )

    def _party_member(self, resident: Resident, grid: OrgNode) -> Participant:
        person = person_by_id_number(self.session, resident.id_number, id_number_key=self.id_number_key)
        return self._ensure(
            "party_members",
            person.participant if person is not None and person.party_member is not None else None,
            lambda: register_party_member(
                self.session,
                org=grid,
                real_name=resident.real_name,
                id_number=resident.id_number,
                employer=self.employers[resident.employer],
                reported_on=resident.reported_on,
                id_number_key=self.id_number_key,
            ),
        )

    def _opening_balance(self, resident: Resident, community: OrgNode, participant: Participant) -> None:
        """Carry a paper passbook's points over, from the community's opening-balance account."""
        recorded = record_transaction(
            self.session,
            actor=self.actor,
            org=community,
            kind=TransactionKindCode.OPENING_BALANCE,
            legs=transfer(
                self.opening_accounts[community.id].id,
                participant_account(self.session, participant.id).id,
                resident.opening_balance,
            ),
            business_date=CARRY_OVER_DATE,
            idempotency_key=f"demo-opening-{resident.volunteer_number}",
            memo=f"纸质积分存折结转 (passbook no. {resident.volunteer_number[-4:]})",
        )
        self._count("opening_balances", new=not recorded.replayed)

    def load_rules(self) -> None:
        """Publish the default rules at the district, unless a version is published there already."""
        district = self.orgs[DISTRICT_CODE]
        present = versions(self.session, district)
        self.present["rule_set_versions"] += len(present)
        if not any(version.status == RuleSetStatus.PUBLISHED for version in present):
            publish_default(self.session, actor=self.actor, org=district, now=RULES_PUBLISHED_AT)
            self.new["rule_set_versions"] += 1

    def enter(self, step: Step) -> None:
        """Enter one step of the season the way staff (or the volunteer) would."""
        if isinstance(step, PlannedEvent):
            self._event(step)
        elif isinstance(step, PlannedReport):
            self._report(step)
        elif isinstance(step, PlannedCorrection):
            self._correction(step)
        else:
            self._activity(step)

    def _activity(self, planned: PlannedService) -> None:
        recorded = record_activity(
            self.session,
            actor=self.actor,
            org=self.orgs[planned.community],
            service=self._service(planned),
            idempotency_key=planned.key,
            now=ENTERED_AT,
        )
        self._entered(recorded, planned.key)

    def _service(self, planned: PlannedService) -> Service:
        return Service(
            participant_id=self.participants[planned.who],
            activity_type=planned.activity_type,
            started_at=planned.started_at,
            ended_at=planned.ended_at,
            quantity=planned.quantity,
            description=planned.description,
        )

    def _entered(self, recorded: RecordedActivity, key: str) -> RecordedActivity:
        self._count("activities", new=not recorded.replayed)
        self.activities[key] = recorded.activity.id
        return recorded

    def _event(self, planned: PlannedEvent) -> None:
        recorded = record_event(
            self.session,
            actor=self.actor,
            org=self.orgs[planned.community],
            title=planned.title,
            activity_type=planned.activity_type,
            started_at=planned.started_at,
            ended_at=planned.ended_at,
            attendees=[Attendee(self.participants[who], started_at=late) for who, late in planned.attendees],
            idempotency_key=planned.key,
            tags=planned.tags,
            now=ENTERED_AT,
        )
        self._count("events", new=not recorded.replayed)
        self._count("activities", new=not recorded.replayed, records=len(recorded.activities))

    def _report(self, planned: PlannedReport) -> None:
        """Let the volunteer report their own service, and have the staff member review it (or not yet)."""
        service = planned.service
        recorded = self._entered(
            report_own_service(
                self.session,
                actor=self._reporter(service.who),
                org=self.orgs[service.community],
                service=self._service(service),
                idempotency_key=service.key,
                now=ENTERED_AT,
            ),
            service.key,
        )
        if planned.approved is None:
            self.pending_reports.append(recorded.activity.id)
            return
        review_report(
            self.session,
            actor=ensure_user(self.session, STAFF_USERNAME, STAFF_DISPLAY_NAME),
            activity_id=recorded.activity.id,
            approve=planned.approved,
            reason=planned.reason,
            now=ENTERED_AT,
        )

    def load_sign_ins(self, password: str | None) -> None:
        """Give each demo user their role; with a password, let them sign in to the API."""
        reporter = self.session.execute(select(AppUser).where(AppUser.username == REPORTER_USERNAME)).scalar_one_or_none()
        for username, display_name, role, org_code in DEMO_SIGN_INS:
            if username == REPORTER_USERNAME:
                if reporter is None:
                    continue  # the season that links the volunteer to their user was not loaded
                participant = self.session.get(Participant, reporter.participant_id)
                user, org = reporter, self.session.get(OrgNode, participant.org.community_id)
            else:
                user = ensure_user(self.session, username, display_name)
                org = self.orgs[org_code] if org_code else None
            grant_role(self.session, user=user, role=role, org=org)
            if password is not None and user.password_hash is None:
                set_password(user, password)
        self.session.flush()

    def _reporter(self, who: str) -> AppUser:
        """Return the volunteer's own user, linked to them (users are not ledger rows: set it in place)."""
        participant = self.session.get(Participant, self.participants[who])
        user = ensure_user(self.session, REPORTER_USERNAME, participant.display_name)
        if user.participant_id != participant.id:
            user.participant_id = participant.id
            self.session.flush()
        return user

    def _correction(self, planned: PlannedCorrection) -> None:
        original = planned.original
        self._entered(
            correct_activity(
                self.session,
                actor=self.actor,
                activity_id=self.activities[original.key],
                service=self._service(replace(original, ended_at=planned.ended_at)),
                reason=planned.reason,
                idempotency_key=planned.key,
                now=ENTERED_AT,
            ),
            planned.key,
        )

    def load_shelves(self, residents: tuple[Resident, ...], seed: int, through: dt.date) -> None:
        """Stock the shelves, take the donation and enter the redemptions, up to ``through``."""
        staff = ensure_user(self.session, STAFF_USERNAME, STAFF_DISPLAY_NAME)
        opened_at = _at(SHELF_OPENS, dt.time(9, 0))
        for community in COMMUNITIES:
            for planned in COMMUNITY_REWARDS:
                self._reward(staff, community.code, planned, opened_at)
        self._reward(staff, STREET_CODE, PRIORITY_REWARD, opened_at)
        self._donation(staff, through)
        for planned in plan_redemptions(self._shelf_candidates(residents), seed):
            if planned.requested_at.date() > through:
                break
            self._redemption(staff, planned, through)

    def _reward(self, staff: AppUser, org_code: str, planned: PlannedReward, now: dt.datetime) -> None:
        org = self.orgs[org_code]
        self.rewards[org_code, planned.name] = self._ensure(
            "rewards",
            self._find(select(Reward).where(Reward.org_id == org.id, Reward.name == planned.name)),
            lambda: add_reward(
                self.session,
                actor=staff,
                org=org,
                name=planned.name,
                kind=planned.kind,
                price_points=planned.price_points,
                active_from=SHELF_OPENS,
                stock=planned.stock,
                unit_value_yuan=planned.unit_value_yuan,
                per_person_limit=planned.per_person_limit,
                limit_period=planned.limit_period,
                min_star_level=planned.min_star_level,
                description=planned.description,
                now=now,
            ),
        )

    def _donation(self, staff: AppUser, through: dt.date) -> None:
        """Take in the unit's donated stock; the unit earns its points by a ``unit_donation`` activity."""
        name, reward, quantity, value_yuan, day, hours = DONATION
        if day > through:
            return
        index, community = next((i, unit[0]) for i, unit in enumerate(CO_BUILDING_UNITS) if unit[1] == name)
        handle = unit_handle(index)
        start, end = (_at(day, time) for time in hours)
        key = f"demo-donation-{handle}-{day.isoformat()}"
        donation = donate_stock(
            self.session,
            actor=staff,
            reward_id=self.rewards[community, reward].id,
            unit_participant_id=self.participants[handle],
            quantity=quantity,
            value_yuan=value_yuan,
            handed_over_at=(start, end),
            idempotency_key=key,
            now=end + dt.timedelta(minutes=30),
        )
        self._entered(donation.recorded, key)

    def _shelf_candidates(self, residents: tuple[Resident, ...]) -> tuple[ShelfCandidate, ...]:
        """Return the volunteers with the points and hours they had earned by the day before the shelves open."""
        volunteers = {
            self.participants[resident_handle(index)]: (resident_handle(index), resident)
            for index, resident in enumerate(residents)
            if resident.volunteer_number
        }
        earned = dict.fromkeys(volunteers, (0, 0))
        rows = self.session.execute(
            select(
                Account.participant_id,
                integer_sum(PeriodTotal.points_earned),
                integer_sum(PeriodTotal.service_minutes),
            )
            .join(Account, Account.id == PeriodTotal.account_id)
            .where(
                Account.kind == AccountKind.PARTICIPANT,
                Account.participant_id.in_(list(volunteers)),
                PeriodTotal.period == PeriodKind.MONTH,
                PeriodTotal.starts_on < SHELF_OPENS,
            )
            .group_by(Account.participant_id)
        )
        earned.update((participant_id, (points, minutes)) for participant_id, points, minutes in rows)
        thresholds = rules_of(version_in_force(self.session, self.orgs[STREET_CODE], SHELF_OPENS)).star_levels.hours
        return tuple(
            ShelfCandidate(
                who=handle,
                volunteer_number=resident.volunteer_number,
                community=LEAF_GRIDS[resident.grid_code].code,
                born=identity.birth_date(resident.id_number),
                points=earned[participant_id][0],
                star_level=star_standing(earned[participant_id][1], thresholds).level,
            )
            for participant_id, (handle, resident) in sorted(volunteers.items(), key=lambda item: item[1][0])
        )

    def _redemption(self, staff: AppUser, planned: PlannedRedemption, through: dt.date) -> None:
        """Redeem at the counter, then hand it over or cancel it when its day has come (and not yet done)."""
        result = redeem(
            self.session,
            actor=staff,
            participant_id=self.participants[planned.who],
            reward_id=self.rewards[planned.shelf, planned.reward].id,
            quantity=planned.quantity,
            idempotency_key=planned.key,
            now=planned.requested_at,
        )
        self._count("redemptions", new=not result.replayed)
        redemption = result.redemption
        requested = redemption.status == RedemptionStatus.REQUESTED
        if requested and planned.fulfilled_at is not None and planned.fulfilled_at.date() <= through:
            fulfil(self.session, actor=staff, redemption_id=redemption.id, now=planned.fulfilled_at)
        elif requested and planned.cancelled_at is not None and planned.cancelled_at.date() <= through:
            cancel(
                self.session,
                actor=staff,
                redemption_id=redemption.id,
                reason=planned.cancel_reason,
                now=planned.cancelled_at,
            )
        if redemption.status == RedemptionStatus.REQUESTED:
            self.requested_redemptions.append(redemption.id)
        elif redemption.status == RedemptionStatus.CANCELLED:
            self.cancelled_redemptions.append(redemption.id)

    def load_orders(self, residents: tuple[Resident, ...], through: dt.date) -> None:
        """Post each community's orders and take each as far as its script goes by ``through``; then the deadline job."""
        staff = ensure_user(self.session, STAFF_USERNAME, STAFF_DISPLAY_NAME)
        recorded_before = self.new["activities"]
        orders = [
            (self._order(staff, community, planned, residents, through), planned)
            for community in COMMUNITIES
            for planned in ORDER_SCRIPT
            if planned.posted_on <= through
        ]
        if DEADLINE_JOB_RAN_AT.date() <= through:
            system = ensure_user(self.session, SYSTEM_USERNAME)
            close_overdue(self.session, actor=system, as_of=DEADLINE_JOB_AS_OF, now=DEADLINE_JOB_RAN_AT)
        for order, planned in orders:
            self._note_waiting_claim(order, planned)
        # Steps done by an earlier load are skipped, not replayed: count what they recorded as present.
        recorded = self.session.scalar(
            select(func.count()).select_from(Activity).where(Activity.idempotency_key.startswith(ACTIVITY_KEY_PREFIX))
        )
        self._count("activities", new=False, records=recorded - (self.new["activities"] - recorded_before))

    def _order(
        self, staff: AppUser, community: DemoCommunity, planned: PlannedOrder, residents: tuple[Resident, ...], through
    ) -> ServiceOrder:
        org = self.orgs[community.code]
        key = planned.key(community.code)
        order = self._ensure(
            "orders",
            self._find(select(ServiceOrder).where(ServiceOrder.org_id == org.id, ServiceOrder.idempotency_key == key)),
            lambda: post_order(
                self.session,
                actor=staff,
                org=org,
                kind=planned.kind,
                title=planned.title,
                activity_type=planned.activity_type,
                deadline=planned.deadline,
                beneficiary_group=planned.beneficiary_group,
                beneficiary_name=planned.beneficiary_name,
                capacity=planned.capacity,
                idempotency_key=key,
                now=_at(planned.posted_on, dt.time(9, 0)),
            ),
        )
        # Each step appends one event to the order's history: those there were done by an earlier load.
        done = self.session.scalar(select(func.count()).select_from(OrderEvent).where(OrderEvent.order_id == order.id))
        for index in range(done, len(planned.steps)):
            now = planned.step_at(index)
            if now.date() > through:
                break
            self._order_step(staff, order, planned, planned.steps[index], self._order_claimant(community, planned, residents), now)
        return order

    def _note_waiting_claim(self, order: ServiceOrder, planned: PlannedOrder) -> None:
        """Note the order's claim if it waits for staff to confirm it, or for the deadline job."""
        claim_id = self._latest_claim(order)
        if claim_id is None:
            return
        last = self.session.execute(
            select(OrderEvent.happening).where(OrderEvent.claim_id == claim_id).order_by(OrderEvent.id.desc()).limit(1)
        ).scalar_one()
        if last == Happening.DELIVERED:
            self.delivered_claims.append(claim_id)
        elif last == Happening.CLAIMED and planned.deadline < ENTERED_AT.date():
            self.claims_past_deadline.append(claim_id)

    def _latest_claim(self, order: ServiceOrder) -> int | None:
        return self.session.execute(
            select(OrderClaim.id).where(OrderClaim.order_id == order.id).order_by(OrderClaim.id.desc()).limit(1)
        ).scalar_one_or_none()

    def _order_claimant(self, community: DemoCommunity, planned: PlannedOrder, residents: tuple[Resident, ...]):
        """Return who claims ``planned`` in ``community``: ``(participant id, team, members who serve)``."""
        turn = ORDER_SCRIPT.index(planned)
        if planned.claimant == "unit":
            index = next(i for i, unit in enumerate(CO_BUILDING_UNITS) if unit[0] == community.code)
            return self.participants[unit_handle(index)], None, None
        if planned.claimant == "team":
            team = self.teams[self.orgs[community.code].id, community.teams[0][0]]
            members = self.session.execute(
                select(TeamMember.participant_id).where(TeamMember.team_id == team.id).order_by(TeamMember.participant_id)
            ).scalars()
            return None, team, list(members)[:2]
        party_member = planned.claimant == "party_member"
        handles = [
            resident_handle(index)
            for index, resident in enumerate(residents)
            if LEAF_GRIDS[resident.grid_code].code == community.code
            and (resident.employer is not None if party_member else resident.employer is None)
        ]
        return self.participants[handles[turn % len(handles)]], None, None

    def _order_step(self, staff: AppUser, order: ServiceOrder, planned: PlannedOrder, step: str, claimant, now) -> None:
        """Take one step of an order's script: staff publish, cancel, reject and confirm; the claimant the rest."""
        participant_id, team, served_by = claimant
        if step == "publish":
            publish_order(self.session, actor=staff, order_id=order.id, now=now)
            return
        if step == "cancel":
            cancel_order(self.session, actor=staff, order_id=order.id, reason=CANCELLATION_REASON, now=now)
            return
        if step == "claim":
            taken = claim_order(
                self.session,
                actor=self.actor,
                order_id=order.id,
                participant_id=participant_id,
                team_id=None if team is None else team.id,
                now=now,
            )
            self._count("activities", new=True, records=len(taken.recorded))
            return
        claim_id = self._latest_claim(order)
        if step == "withdraw":
            withdraw(self.session, actor=self.actor, claim_id=claim_id, now=now)
        elif step == "deliver":
            served_from, served_until = (_at(now.date(), time) for time in DELIVERY_HOURS)
            deliver(
                self.session,
                actor=self.actor,
                claim_id=claim_id,
                served_from=served_from,
                served_until=served_until,
                note=f"已完成 done: {planned.title}",
                served_by=served_by,
                now=now,
            )
        elif step == "reject":
            reject(self.session, actor=staff, claim_id=claim_id, reason=REJECTION_REASON, now=now)
        else:
            confirmed = confirm(self.session, actor=staff, claim_id=claim_id, rating=5, now=now)
            self._count("activities", new=True, records=len(confirmed.recorded))
