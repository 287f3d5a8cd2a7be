"""The org tree: district → street → community → grid (up to three grid levels).

Creating a node also opens its system accounts (issuance, reward shelf, expiry, adjustment,
opening balances) and, for a community, street or district, the head of the hash chain that
records its transactions. Grids keep their own accounts but write to their community's chain.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import zoneinfo
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger.db import integer_sum
from ledger.errors import AlreadyExists, InvalidInput, NotFound
from ledger.models import SYSTEM_ACCOUNT_KINDS, Account, AccountKind, ChainHead, OrgKind, OrgNode

CODE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
MAX_NAME_LENGTH = 200

#: Which kind of node each kind may hang under.
_PARENT_KIND = {
    OrgKind.DISTRICT: None,
    OrgKind.STREET: OrgKind.DISTRICT,
    OrgKind.COMMUNITY: OrgKind.STREET,
}


@functools.cache
def _known_time_zones() -> frozenset[str]:
    # "localtime" is a file of some zone databases, not a zone: it means whatever the server says.
    return frozenset(zoneinfo.available_timezones() - {"localtime"})


def check_time_zone(name: object, *, field: str = "time_zone") -> str:
    """Return ``name`` if it is an IANA time zone name such as Asia/Shanghai."""
    if not isinstance(name, str) or name not in _known_time_zones():
        raise InvalidInput(f"unknown time zone {name!r}; use an IANA name such as Asia/Shanghai", field=field)
    return name


def check_name(name: object, *, field: str = "name", max_length: int = MAX_NAME_LENGTH) -> str:
    """Return ``name`` stripped, if it is non-empty text within ``max_length``."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("must not be empty", field=field)
    if "\x00" in name:
        raise InvalidInput("must not contain NUL characters", field=field)
    name = name.strip()
    if len(name) > max_length:
        raise InvalidInput(f"must be at most {max_length} characters", field=field)
    return name


def create_org_node(
    session: Session,
    *,
    code: str,
    name: str,
    kind: str,
    parent: OrgNode | None = None,
    time_zone: str | None = None,
    default_time_zone: str = "Asia/Shanghai",
) -> OrgNode:
    """Add a node under ``parent`` with its system accounts (and chain head, above grids)."""
    if not isinstance(code, str) or not CODE_PATTERN.fullmatch(code):
        raise InvalidInput("must be 1 to 64 letters, digits, _ or -, starting with a letter or digit", field="code")
    name = check_name(name)
    try:
        kind = OrgKind(kind)
    except ValueError:
        raise InvalidInput(f"must be one of {', '.join(OrgKind)}", field="kind") from None
    grid_level = _check_parent(kind, parent)
    if time_zone is None:
        time_zone = parent.time_zone if parent else default_time_zone
    zone = check_time_zone(time_zone)
    if session.execute(select(OrgNode.id).where(OrgNode.code == code)).first():
        raise AlreadyExists(f"an org node with code {code!r} already exists", field="code")

    node = OrgNode(
        code=code,
        name=name,
        kind=kind,
        parent_id=parent.id if parent else None,
        grid_level=grid_level,
        time_zone=zone,
        path="",
    )
    session.add(node)
    session.flush()
    node.path = f"{parent.path if parent else '/'}{node.id}/"
    if kind == OrgKind.COMMUNITY:
        node.community_id = node.id
    elif kind == OrgKind.GRID:
        node.community_id = parent.community_id
    session.add_all(Account(org_id=node.id, kind=account_kind) for account_kind in SYSTEM_ACCOUNT_KINDS)
    if kind != OrgKind.GRID:
        session.add(ChainHead(org_id=node.id))
    session.flush()
    return node


def _check_parent(kind: OrgKind, parent: OrgNode | None) -> int | None:
    """Return the grid level ``kind`` gets under ``parent``, after checking it may go there."""
    if kind == OrgKind.GRID:
        if parent is None or parent.kind not in (OrgKind.COMMUNITY, OrgKind.GRID):
            raise InvalidInput("a grid belongs to a community or to a grid", field="parent")
        level = 1 if parent.kind == OrgKind.COMMUNITY else parent.grid_level + 1
        if level > 3:
            raise InvalidInput("grids go at most three levels deep", field="parent")
        return level
    expected = _PARENT_KIND[kind]
    if expected is None and parent is not None:
        raise InvalidInput("a district is the root of the tree and has no parent", field="parent")
    if expected is not None and (parent is None or parent.kind != expected):
        raise InvalidInput(f"a {kind} belongs to a {expected}", field="parent")
    return None


def local_date(moment: dt.datetime, org: OrgNode) -> dt.date:
    """Return the day ``moment`` falls on in ``org``'s time zone: days, months and years are local."""
    return moment.astimezone(zoneinfo.ZoneInfo(org.time_zone)).date()


def org_by_code(session: Session, code: str) -> OrgNode:
    """Return the node with ``code``."""
    node = session.execute(select(OrgNode).where(OrgNode.code == code)).scalar_one_or_none()
    if node is None:
        raise NotFound(f"no org node has code {code!r}", field="org")
    return node


def subtree(session: Session, node: OrgNode) -> list[OrgNode]:
    """Return ``node`` and everything under it, parents before children."""
    return list(
        session.execute(
            select(OrgNode).where(OrgNode.path.startswith(node.path)).order_by(OrgNode.path)
        ).scalars()
    )


def subtree_ids(node: OrgNode):
    """Return the query of the ids of ``node`` and everything under it, to filter rows that carry an org id."""
    return select(OrgNode.id).where(OrgNode.path.startswith(node.path))


@dataclass(frozen=True)
class NodeOverview:
    node: OrgNode
    depth: int
    #: Participants belonging to this node or anywhere under it.
    participants: int
    #: Points held by those participants: what the org's shelf may be asked to honour.
    points_outstanding: int
    #: Links in the node's hash chain (communities, streets and districts only).
    chain_links: int | None


def tree_overview(session: Session) -> list[NodeOverview]:
    """Return every node, parents first, with its subtree's participants and points."""
    nodes = sorted(session.execute(select(OrgNode)).scalars(), key=lambda node: path_ids(node.path))
    direct = {
        org_id: (count, points)
        for org_id, count, points in session.execute(
            select(Account.org_id, func.count(), integer_sum(Account.balance))
            .where(Account.kind == AccountKind.PARTICIPANT)
            .group_by(Account.org_id)
        )
    }
    links = dict(session.execute(select(ChainHead.org_id, ChainHead.seq)).all())
    participants: dict[int, int] = {}
    points: dict[int, int] = {}
    for node in nodes:
        count, held = direct.get(node.id, (0, 0))
        for ancestor_id in path_ids(node.path):
            participants[ancestor_id] = participants.get(ancestor_id, 0) + count
            points[ancestor_id] = points.get(ancestor_id, 0) + held
    return [
        NodeOverview(
            node=node,
            depth=len(path_ids(node.path)) - 1,
            participants=participants.get(node.id, 0),
            points_outstanding=points.get(node.id, 0),
            chain_links=links.get(node.id),
        )
        for node in nodes
    ]


def path_ids(path: str) -> list[int]:
    """Return the ids of a node's ancestors and itself, root first, from its path."""
    return [int(part) for part in path.strip("/").split("/")]
