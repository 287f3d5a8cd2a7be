"""The demo street: a realistic data set to try the ledger on, loaded by ``ledger demo``.

One district, one street, three communities with grids two and three levels deep, a few
hundred volunteers, in-service party members from half a dozen employers, co-building units
of every kind, volunteer service teams, and the balances carried over from paper passbooks.

The residents are drawn from ``random.Random(seed)`` before anything touches the database
(:func:`plan_residents`), so the same seed always yields the same people. Loading goes only
through the service functions, the way staff would enter the same data, and looks each record
up by its natural key first: loading again adds nothing, and the opening balances replay
through their idempotency keys.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from dataclasses import dataclass, field, fields, replace
from typing import Callable, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import identity
from ledger.errors import Conflict
from ledger.models import (
    Account,
    AccountKind,
    CoBuildingUnit,
    EmployerUnit,
    OrgKind,
    OrgNode,
    Participant,
    Team,
    TeamMember,
    TransactionKindCode,
    UnitKind,
    Volunteer,
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
from ledger.transactions import participant_account, record_transaction, system_account
from ledger.users import ensure_user

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

#: Employers of in-service party members, with unified social credit codes (check characters
#: per GB 32100-2015), or None where the employer has not given one.
EMPLOYERS = (
    ("示范区税务局", "11320102945807305F"),
    ("示范区人民医院", "12320102215736816L"),
    ("示范区第一中学", None),
    ("中国工商银行示范区支行", "91320102MAJ70P6D0C"),
    ("示范区城市建设投资集团有限公司", "91320102MA85XUQC1Y"),
    ("示范区市场监督管理局", "113201022129972285"),
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

    @property
    def new(self) -> int:
        """Records of every kind this run added."""
        return sum(getattr(self, item.name).new for item in fields(self))

    def describe(self) -> str:
        lines = [f"演示街道 demo street {STREET_NAME} ({STREET_CODE}):"]
        for item in fields(self):
            tally = getattr(self, item.name)
            lines.append(f"  {item.metadata['label']}: {tally.total} ({tally.new} new)")
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


def load_demo(session: Session, *, seed: int = 2026, id_number_key: str) -> DemoSummary:
    """Load the demo street through the services, adding only what is not there yet."""
    loader = _Loader(session, id_number_key)
    loader.load_orgs()
    loader.load_employers()
    loader.load_units()
    loader.load_teams()
    for resident in plan_residents(seed):
        loader.load_resident(resident)
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

    def summary(self) -> DemoSummary:
        return DemoSummary(
            **{
                item.name: Tally(total=self.new[item.name] + self.present[item.name], new=self.new[item.name])
                for item in fields(DemoSummary)
            }
        )

    def _count(self, what: str, *, new: bool) -> None:
        (self.new if new else self.present)[what] += 1

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
        for name, credit_code in EMPLOYERS:
            self.employers[name] = self._ensure(
                "employer_units",
                self._find(select(EmployerUnit).where(EmployerUnit.name == name)),
                lambda: register_employer_unit(self.session, org=district, name=name, credit_code=credit_code),
            )

    def load_units(self) -> None:
        for community_code, name, unit_kind, credit_code, reported_on in CO_BUILDING_UNITS:
            community = self.orgs[community_code]
            self._ensure(
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

    def load_teams(self) -> None:
        for community in COMMUNITIES:
            org = self.orgs[community.code]
            for name, founded_on in community.teams:
                self.teams[org.id, name] = self._ensure(
                    "teams",
                    self._find(select(Team).where(Team.org_id == org.id, Team.name == name)),
                    lambda: create_team(self.session, org=org, name=name, founded_on=founded_on),
                )

    def load_resident(self, resident: Resident) -> None:
        """Register the resident's roles, then their team places and passbook balance."""
        grid = self.orgs[resident.grid_code]
        community = self.session.get(OrgNode, grid.community_id)
        participant = self._volunteer(resident, grid) if resident.volunteer_number else None
        if resident.employer:  # a volunteer who reports in stays the same participant
            participant = self._party_member(resident, grid)
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

