"""Rule-set versions: drafts, publishing, immutability, and which version is in force where and when.

Runs on SQLite and PostgreSQL. The tree: 示范区 (district) → 城东街道 (street) → 幸福社区 (community,
with a grid and a sub-grid) and 和平社区 (other_community).
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.exc import DBAPIError

from ledger import chain
from ledger.errors import AppendOnlyViolation, NotFound, RuleSetInvalid
from ledger.models import RuleSetVersion
from ledger.rules import RuleSetPublished, publish, rules_of, update_draft, version_in_force, versions
from ledger.ruleset_schema import default_rule_set, default_rules_text, dump_rule_set
from ledger.rulesets import RuleSet
from tests.activity_fixtures import rules_text
from tests.helpers import run_raw

# Drafts and publishing.


def test_an_invalid_document_is_refused_with_every_problem_by_path_and_nothing_stored(bare_desk):
    mistakes = {"activity_types.patrol.points": -1, "caps.hours_per_day": "eight", "effective_to": "2024-12-31"}

    refusal = bare_desk.refuse(lambda: bare_desk.draft(bare_desk.street.street, mistakes), RuleSetInvalid)

    assert set(refusal.errors) == {"activity_types.patrol.points", "caps.hours_per_day", "effective_to"}
    assert "activity_types.patrol.points: must be a whole number" in str(refusal)


def test_versions_are_numbered_one_two_three_in_each_org(bare_desk):
    street, community = bare_desk.street.street, bare_desk.street.community
    for org_id in (street, street, community, street):
        bare_desk.draft(org_id)

    numbers = {org: [v.version for v in versions(bare_desk.session, bare_desk.org(org))] for org in (street, community)}

    assert numbers == {street: [3, 2, 1], community: [1]}  # newest first


def test_a_draft_stores_the_canonical_document_and_its_digest_whatever_the_format(bare_desk):
    from_yaml = bare_desk.draft(bare_desk.street.street, yaml=default_rules_text())
    from_json = bare_desk.draft(bare_desk.street.street)

    assert from_yaml.document == dump_rule_set(default_rule_set()) == from_json.document
    assert from_yaml.digest == chain.digest(from_yaml.document) == from_json.digest
    assert (from_yaml.status, from_yaml.effective_from, from_yaml.effective_to) == ("draft", dt.date(2025, 1, 1), None)
    assert from_yaml.name == default_rule_set().name


def test_a_draft_can_be_edited_until_publishing_freezes_it(bare_desk):
    draft = bare_desk.draft(bare_desk.street.street)
    first_digest = draft.digest

    edited = bare_desk.write(
        lambda: update_draft(
            bare_desk.session,
            version_id=draft.id,
            text=rules_text({"activity_types.patrol.points": 20, "effective_from": "2026-07-01"}),
            format="json",
        )
    )
    assert (edited.id, edited.version, edited.status) == (draft.id, 1, "draft")
    assert edited.document["activity_types"]["patrol"]["points"] == 20 and edited.digest != first_digest
    assert edited.effective_from == dt.date(2026, 7, 1)

    moment = dt.datetime(2026, 6, 1, 8, tzinfo=dt.timezone.utc)
    published = bare_desk.write(
        lambda: publish(bare_desk.session, actor=bare_desk.user(), version_id=draft.id, now=moment)
    )
    assert (published.status, published.published_by_id, published.published_at) == (
        "published",
        bare_desk.staff_id,
        moment,
    )


def test_publishing_accepts_an_actor_loaded_before_the_write_transaction(bare_desk):
    draft = bare_desk.draft(bare_desk.street.street)
    actor = bare_desk.user()

    published = bare_desk.write(lambda: publish(bare_desk.session, actor=actor, version_id=draft.id))

    assert (published.status, published.published_by_id) == ("published", bare_desk.staff_id)


@pytest.mark.parametrize(
    "change",
    [
        lambda desk, version_id: update_draft(desk.session, version_id=version_id, text=rules_text(), format="json"),
        lambda desk, version_id: publish(desk.session, actor=desk.user(), version_id=version_id),
    ],
    ids=["update_draft", "publish"],
)
def test_a_published_version_is_never_changed_by_the_service(desk, change):
    refusal = desk.refuse(lambda: desk.write(lambda: change(desk, desk.default_rules)), RuleSetPublished)
    assert refusal.field == "version_id"


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE rule_set_version SET name = 'edited' WHERE id = {id}",
        "UPDATE rule_set_version SET status = 'draft', published_at = NULL, published_by_id = NULL WHERE id = {id}",
        "DELETE FROM rule_set_version WHERE id = {id}",
    ],
    ids=["edit", "unpublish", "delete"],
)
def test_the_database_refuses_raw_changes_to_a_published_version(app, desk, statement):
    with pytest.raises(DBAPIError) as refusal:
        run_raw(app, statement.format(id=desk.default_rules))

    assert "never changes" in str(refusal.value.orig)
    assert desk.session.get(RuleSetVersion, desk.default_rules).name == default_rule_set().name


def test_the_database_lets_a_draft_be_edited(app, bare_desk):
    draft = bare_desk.draft(bare_desk.street.street)

    run_raw(app, f"UPDATE rule_set_version SET name = 'edited' WHERE id = {draft.id}")

    assert bare_desk.session.get(RuleSetVersion, draft.id).name == "edited"


@pytest.mark.parametrize(
    "change",
    [lambda session, version: setattr(version, "name", "edited"), lambda session, version: session.delete(version)],
    ids=["edit", "delete"],
)
def test_the_orm_refuses_to_change_a_published_version(desk, change):
    change(desk.session, desk.session.get(RuleSetVersion, desk.default_rules))

    with pytest.raises(AppendOnlyViolation):
        desk.session.flush()
    desk.session.rollback()


# Which version is in force.


def test_the_version_in_force_is_the_highest_covering_version_of_the_nearest_org(desk):
    street, community = desk.street.street, desk.street.community
    publications = {
        ("street", 1): desk.publish(street, {"effective_from": "2026-01-01", "effective_to": "2026-06-30"}),
        ("street", 2): desk.publish(street, {"effective_from": "2026-04-01"}),
        ("community", 1): desk.publish(community, {"effective_from": "2026-09-01", "effective_to": "2026-09-30"}),
    }
    publications[("district", 1)] = desk.session.get(RuleSetVersion, desk.default_rules)
    desk.draft(community, {"effective_from": "2026-01-01"})  # a draft is never in force

    expected = {
        ("grid", "2025-12-31"): ("district", 1),  # before the street's rules
        ("grid", "2026-03-31"): ("street", 1),
        ("grid", "2026-04-01"): ("street", 2),  # both of the street's cover the day: the higher wins
        ("grid", "2026-07-01"): ("street", 2),  # version 1 has ended
        ("subgrid", "2026-09-15"): ("community", 1),  # the nearest org with rules wins
        ("grid", "2026-10-01"): ("street", 2),  # the community's have ended
        ("other_community", "2026-09-15"): ("street", 2),  # 幸福社区's rules are not 和平社区's
        ("street", "2026-09-15"): ("street", 2),
        ("district", "2026-09-15"): ("district", 1),
    }
    found = {}
    for org, day in expected:
        version = version_in_force(desk.session, desk.org(getattr(desk.street, org)), dt.date.fromisoformat(day))
        found[org, day] = next(name for name, published in publications.items() if published.id == version.id)

    assert found == expected


@pytest.mark.parametrize(("day", "in_force"), [("2025-12-31", False), ("2026-06-30", True), ("2026-07-01", False)])
def test_a_day_no_published_version_covers_is_not_found(bare_desk, day, in_force):
    bare_desk.publish(bare_desk.street.street, {"effective_from": "2026-01-01", "effective_to": "2026-06-30"})
    grid, on = bare_desk.org(), dt.date.fromisoformat(day)

    if in_force:
        assert version_in_force(bare_desk.session, grid, on).org_id == bare_desk.street.street
    else:
        with pytest.raises(NotFound) as refusal:
            version_in_force(bare_desk.session, grid, on)
        assert refusal.value.field == "started_at"


def test_rules_of_returns_the_versions_parsed_rule_set(desk):
    modified = desk.publish(desk.street.street, {"activity_types.patrol.points": 20})

    default = rules_of(desk.session.get(RuleSetVersion, desk.default_rules))

    assert isinstance(default, RuleSet) and default == default_rule_set()
    assert rules_of(modified).activity_types["patrol"].points == 20
    assert rules_of(modified) is rules_of(modified)  # parsed once
