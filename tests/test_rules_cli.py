"""The `ledger rules` commands: validate, draft, publish, list."""

from __future__ import annotations

from ledger.ruleset_schema import default_rules_text


def test_validate_accepts_the_default_rules(runner, tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(default_rules_text(), encoding="utf-8")
    result = runner.invoke(args=["rules", "validate", str(path)])
    assert result.exit_code == 0 and result.output.startswith("OK: ")


def test_validate_lists_every_problem_by_field_path(runner, tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(
        "name: 坏规则\neffective_from: 2026-01-01\nactivity_types:\n"
        "  patrol: {label: {zh: 巡逻, en: Patrol}, unit: hour, points: -1, round_to_minutes: 0}\n"
        "caps: {hours_per_day: 25}\n",
        encoding="utf-8",
    )
    result = runner.invoke(args=["rules", "validate", str(path)])
    assert result.exit_code == 1
    for path_ in ("activity_types.patrol.points", "activity_types.patrol.round_to_minutes", "caps.hours_per_day"):
        assert path_ in result.output


def test_draft_publish_and_list_an_orgs_versions(runner, street, tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(default_rules_text(), encoding="utf-8")
    drafted = runner.invoke(args=["rules", "draft", "--org", "S", str(path)])
    assert drafted.exit_code == 0 and "S version 1" in drafted.output and "draft" in drafted.output
    version_id = drafted.output.split("(id ")[1].split(")")[0]
    path.write_text(default_rules_text().replace("name: ", "name: 修订 ", 1), encoding="utf-8")
    edited = runner.invoke(args=["rules", "edit", version_id, str(path)])
    assert edited.exit_code == 0 and "now reads: 修订" in edited.output
    published = runner.invoke(args=["rules", "publish", version_id])
    assert published.exit_code == 0 and "Published version 1" in published.output
    again = runner.invoke(args=["rules", "publish", version_id])
    assert again.exit_code == 1 and "already published" in again.output
    frozen = runner.invoke(args=["rules", "edit", version_id, str(path)])
    assert frozen.exit_code == 1 and "never changes" in frozen.output
    listing = runner.invoke(args=["rules", "list", "--org", "S"])
    assert "published" in listing.output and "2025-01-01" in listing.output


def test_publish_default_for_an_unknown_org_says_so(runner, street):
    result = runner.invoke(args=["rules", "publish-default", "--org", "NOPE"])
    assert result.exit_code == 1 and "no org node has code 'NOPE'" in result.output
