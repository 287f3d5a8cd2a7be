"""The org tree: shape, system accounts, chain heads, paths, time zones, codes, names, overview."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ledger.chain import GENESIS_HASH
from ledger.errors import AlreadyExists, NotFound
from ledger.models import SYSTEM_ACCOUNT_KINDS, Account, ChainHead, OrgNode
from ledger.orgs import create_org_node, org_by_code, subtree, tree_overview
from tests.refusals import refused

#: The conftest ``street``: code → (kind, parent's code, grid level, community's code).
STREET_SHAPE = {
    "D": ("district", None, None, None),
    "S": ("street", "D", None, None),
    "C1": ("community", "S", None, "C1"),
    "C2": ("community", "S", None, "C2"),
    "C1-G1": ("grid", "C1", 1, "C1"),
    "C1-G1-1": ("grid", "C1-G1", 2, "C1"),
}


def add(session, code, kind, parent_code=None, **arguments):
    """Create a node named after its code under the node with ``parent_code``."""
    parent = org_by_code(session, parent_code) if parent_code else None
    return create_org_node(session, code=code, name=arguments.pop("name", f"节点{code}"), kind=kind, parent=parent,
                           **arguments)


def test_the_street_is_a_district_a_street_two_communities_and_two_grid_levels(session, street):
    nodes = {node.code: node for node in session.scalars(select(OrgNode))}
    assert set(nodes) == set(STREET_SHAPE)
    for code, (kind, parent_code, grid_level, community_code) in STREET_SHAPE.items():
        node = nodes[code]
        parent = nodes.get(parent_code)
        community = nodes.get(community_code)
        assert (node.kind, node.parent, node.grid_level) == (kind, parent, grid_level), code
        assert node.community_id == (community.id if community else None), code
        assert node.path == f"{parent.path if parent else '/'}{node.id}/", code
        assert node.chain_id == (community.id if community else node.id), code
        assert node.time_zone == "Asia/Shanghai", code
    ids = (street.district, street.street, street.community, street.grid, street.subgrid)
    assert nodes["C1-G1-1"].path == "/" + "".join(f"{node_id}/" for node_id in ids)


def test_every_node_has_the_five_system_accounts_at_zero_and_only_nodes_above_grids_have_a_chain_head(
    session, street
):
    accounts = session.execute(select(Account.org_id, Account.kind, Account.balance, Account.participant_id)).all()
    for node in session.scalars(select(OrgNode)):
        own = [account for account in accounts if account.org_id == node.id]
        assert sorted(account.kind for account in own) == sorted(SYSTEM_ACCOUNT_KINDS), node.code
        assert all(account.balance == 0 and account.participant_id is None for account in own), node.code
    assert len(SYSTEM_ACCOUNT_KINDS) == 5

    heads = session.execute(select(ChainHead.org_id, ChainHead.seq, ChainHead.head_hash)).all()
    assert {head.org_id for head in heads} == {street.district, street.street, street.community, street.other_community}
    assert all((head.seq, head.head_hash) == (0, GENESIS_HASH) for head in heads)
    assert session.get(OrgNode, street.subgrid).chain_id == street.community


def test_a_third_grid_level_is_the_deepest_and_a_fourth_is_refused(session, write, street):
    third = write(lambda: add(session, "C1-G1-1-1", "grid", "C1-G1-1"))
    assert (third.grid_level, third.community_id, third.chain_id) == (3, street.community, street.community)

    refusal = refused(session, write, lambda: add(session, "C1-G1-1-1-1", "grid", "C1-G1-1-1"))
    assert refusal.field == "parent"


@pytest.mark.parametrize(
    ("kind", "parent_code"),
    [
        pytest.param("community", "D", id="community under a district"),
        pytest.param("street", "C1", id="street under a community"),
        pytest.param("grid", "S", id="grid under a street"),
        pytest.param("grid", None, id="grid without a parent"),
        pytest.param("district", "S", id="district with a parent"),
    ],
)
def test_a_node_in_the_wrong_place_in_the_tree_is_refused_naming_the_parent(session, write, street, kind, parent_code):
    refusal = refused(session, write, lambda: add(session, "NEW", kind, parent_code))
    assert refusal.field == "parent"


def test_a_second_district_is_another_root_and_subtrees_hold_a_node_and_all_below_it_parents_first(
    session, write, street
):
    other = write(lambda: add(session, "D2", "district"))
    assert (other.parent_id, other.path, other.community_id, other.chain_id) == (None, f"/{other.id}/", None, other.id)
    assert session.get(ChainHead, other.id) is not None

    # A root whose id starts with the first district's id ("/1/" and "/10/") is not under it.
    lookalike = other
    while not (str(lookalike.id).startswith(str(street.district)) and lookalike.id != street.district):
        lookalike = write(lambda: add(session, f"D{lookalike.id + 1}", "district"))
        assert lookalike.id < 100

    district = session.get(OrgNode, street.district)
    below = subtree(session, district)
    assert {node.id for node in below} == {
        street.district, street.street, street.community, street.other_community, street.grid, street.subgrid
    }
    assert below[0] == district
    for index, node in enumerate(below[1:], start=1):
        assert node.parent in below[:index], node.code
    community = session.get(OrgNode, street.community)
    assert [node.id for node in subtree(session, community)] == [street.community, street.grid, street.subgrid]
    assert subtree(session, session.get(OrgNode, street.subgrid)) == [session.get(OrgNode, street.subgrid)]
    assert subtree(session, session.get(OrgNode, other.id)) == [session.get(OrgNode, other.id)]


def test_a_node_takes_its_parents_time_zone_unless_it_names_a_valid_one(session, write):
    def build():
        district = add(session, "D", "district", time_zone="Asia/Urumqi")
        street = add(session, "S", "street", "D")
        community = add(session, "C", "community", "S", time_zone="Asia/Shanghai")
        grid = add(session, "G", "grid", "C")
        elsewhere = add(session, "D2", "district", default_time_zone="Asia/Hong_Kong")
        default = add(session, "D3", "district")
        return [node.time_zone for node in (district, street, community, grid, elsewhere, default)]

    assert write(build) == [
        "Asia/Urumqi", "Asia/Urumqi", "Asia/Shanghai", "Asia/Shanghai", "Asia/Hong_Kong", "Asia/Shanghai"
    ]


@pytest.mark.parametrize(
    "time_zone",
    [
        pytest.param("Mars/Base", id="unknown zone"),
        pytest.param("", id="empty"),
        pytest.param("asia/shanghai", id="wrong case"),
        pytest.param("Asia", id="a folder of the zone database"),
    ],
)
def test_a_time_zone_this_machine_does_not_know_is_refused_naming_the_time_zone(session, write, street, time_zone):
    refusal = refused(session, write, lambda: add(session, "C3", "community", "S", time_zone=time_zone))
    assert refusal.field == "time_zone"


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("", id="empty"),
        pytest.param("-C3", id="starts with a dash"),
        pytest.param("C 3", id="inner space"),
        pytest.param("C3\n", id="trailing newline"),
        pytest.param("社区3", id="not ASCII"),
        pytest.param("C" * 65, id="65 characters"),
        pytest.param(None, id="None"),
    ],
)
def test_a_malformed_code_is_refused_naming_the_code(session, write, street, code):
    refusal = refused(session, write, lambda: add(session, code, "community", "S"))
    assert refusal.field == "code"


def test_a_code_already_in_use_anywhere_in_the_tree_is_refused(session, write, street):
    refusal = refused(session, write, lambda: add(session, "C1-G1", "community", "S"), AlreadyExists)
    assert refusal.field == "code"


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("", id="empty"),
        pytest.param(" \u3000\t", id="only whitespace"),
        pytest.param("社" * 201, id="201 characters"),
    ],
)
def test_an_empty_or_overlong_name_is_refused_naming_the_name(session, write, street, name):
    refusal = refused(session, write, lambda: add(session, "C3", "community", "S", name=name))
    assert refusal.field == "name"


def test_the_longest_code_and_name_are_accepted_and_the_name_is_kept_without_surrounding_spaces(
    session, write, street
):
    longest = write(lambda: add(session, "C" * 64, "community", "S", name=" " + "社" * 200 + " "))
    padded = write(lambda: add(session, "C4_b-9", "community", "S", name="  新城社区\u3000"))
    assert (org_by_code(session, "C" * 64).id, longest.name) == (longest.id, "社" * 200)
    assert (org_by_code(session, "C4_b-9").id, padded.name) == (padded.id, "新城社区")


def test_looking_up_a_code_nobody_has_is_not_found(session, street):
    with pytest.raises(NotFound) as missing:
        org_by_code(session, "C9")
    assert missing.value.field == "org"


def test_the_overview_rolls_participants_and_points_up_to_every_ancestor_and_counts_chain_links_on_chain_roots(
    session, write, street, make_volunteer, issue_points
):
    in_subgrid = make_volunteer(street.subgrid)
    in_grid = make_volunteer(street.grid)
    make_volunteer(street.community)
    in_other_community = make_volunteer(street.other_community)
    issue_points(in_subgrid, 30)
    issue_points(in_grid, 20)
    issue_points(in_other_community, 5, org_id=street.other_community)
    roots = [write(lambda: add(session, "D2", "district"))]
    while roots[-1].id < 10:  # so that "/10/" sorts before "/7/" as text
        roots.append(write(lambda: add(session, f"D{roots[-1].id + 1}", "district")))

    overview = tree_overview(session)
    rows = {row.node.code: (row.depth, row.participants, row.points_outstanding, row.chain_links) for row in overview}
    assert rows == {
        "D": (0, 4, 55, 0),
        "S": (1, 4, 55, 0),
        "C1": (2, 3, 50, 2),
        "C2": (2, 1, 5, 1),
        "C1-G1": (3, 2, 50, None),
        "C1-G1-1": (4, 1, 30, None),
        **{root.code: (0, 0, 0, 0) for root in roots},
    }
    # Tree order: each node right before its subtree, siblings by id, not by the text of their paths.
    paths = [row.node.path for row in overview]
    ids = [[int(part) for part in path.strip("/").split("/")] for path in paths]
    assert ids == sorted(ids)
    assert paths != sorted(paths)
