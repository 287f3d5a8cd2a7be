"""The evaluation from the command line: exports, the freeze, changes since, feedback, remarks, headcounts."""

from __future__ import annotations

import csv
import io

import openpyxl

from ledger.exports import BOM
from ledger.models import AppUser, EmployerUnit
from tests.evaluation_fixtures import correct_alices_patrol, season  # noqa: F401 - the fixture


def run(runner, *arguments):
    result = runner.invoke(args=list(arguments), catch_exceptions=False)
    return result


def workbook_rows(path) -> dict[str, list[tuple]]:
    """Return each sheet's rows by sheet name, and close the file (a read-only workbook holds it open)."""
    workbook = openpyxl.load_workbook(path, read_only=True)
    try:
        return {sheet.title: list(sheet.iter_rows(values_only=True)) for sheet in workbook.worksheets}
    finally:
        workbook.close()


def test_the_annual_workbook_has_a_sheet_per_section_in_chinese_or_english(runner, season, tmp_path):
    path = tmp_path / "annual.xlsx"
    result = run(runner, "export", "annual", "--org", "S", "--year", "2026", "-o", str(path))
    assert result.exit_code == 0, result.output
    assert "Wrote 7 rows of 城东街道's 2026 evaluation (computed now)" in result.output
    workbook = workbook_rows(path)
    assert list(workbook) == ["参与者", "在职党员", "共建单位"]
    [header, *rows] = workbook["参与者"]
    assert header[:3] == ("编号", "姓名/名称", "类别") and len(rows) == 5
    assert {row[1] for row in rows} >= {"王丽", "赵党员", "锦绣物业", "'=HYPERLINK(\"x\")"}
    run(runner, "export", "annual", "--org", "S", "--year", "2026", "--language", "en", "-o", str(path))
    assert list(workbook_rows(path)) == ["Participants", "Party members", "Co-building units"]


def test_a_csv_export_is_one_sheet_with_a_bom_that_reads_back(runner, season, tmp_path):
    path = tmp_path / "members.csv"
    result = run(runner, "export", "annual", "--org", "S", "--year", "2026", "--format", "csv", "--sheet", "party_members", "-o", str(path))
    assert result.exit_code == 0, result.output
    data = path.read_bytes()
    assert data.startswith(BOM)
    rows = list(csv.reader(io.StringIO(data[len(BOM) :].decode(), newline="")))
    assert rows[0][:3] == ["编号", "姓名", "工作单位"] and rows[1][1:4] == ["赵党员", "示范区税务局", "幸福社区"]
    assert rows[1][6:8] == ["12.00", "是"]


def test_the_frozen_export_is_the_same_bytes_after_a_correction_and_the_changes_say_what_moved(runner, season, tmp_path, desk):
    result = run(runner, "evaluation", "freeze", "--org", "S", "--year", "2026", "--as", "street-admin")
    assert result.exit_code == 0 and "Froze 城东街道's 2026 evaluation" in result.output
    first, second = tmp_path / "first.xlsx", tmp_path / "second.xlsx"
    assert run(runner, "export", "annual", "--org", "S", "--year", "2026", "-o", str(first)).exit_code == 0
    correct_alices_patrol(desk, season)
    result = run(runner, "export", "annual", "--org", "S", "--year", "2026", "-o", str(second))
    assert "(frozen at " in result.output and second.read_bytes() == first.read_bytes()
    live = tmp_path / "live.xlsx"
    run(runner, "export", "annual", "--org", "S", "--year", "2026", "--live", "-o", str(live))
    assert live.read_bytes() != first.read_bytes()

    changes = run(runner, "evaluation", "changes", "--org", "S", "--year", "2026").output
    assert f"participants · participant {season.alice} · service_minutes: 5.00 → 3.00" in changes
    assert "reverse 2026-03-07" in changes and "-36 points, -3.00 hours · reverses #" in changes
    assert "2 transaction postings of 2026 recorded since the freeze" in changes


def test_freezing_twice_is_refused_with_a_message(runner, season):
    run(runner, "evaluation", "freeze", "--org", "S", "--year", "2026")
    result = run(runner, "evaluation", "freeze", "--org", "S", "--year", "2026")
    assert result.exit_code == 1 and "year: 城东街道's evaluation of 2026 was frozen at" in result.output


def test_the_feedback_is_a_workbook_with_a_sheet_per_employer_or_a_csv_per_employer(runner, season, tmp_path, session):
    assert run(runner, "evaluation", "headcount", "--employer", str(season.employer), "--party-members", "2").exit_code == 0
    result = run(runner, "evaluation", "remark", "--participant", str(season.party_member), "--year", "2026", "--text", "=认真负责")
    assert result.exit_code == 0, result.output
    workbook_path = tmp_path / "feedback.xlsx"
    assert run(runner, "export", "feedback", "--org", "S", "--year", "2026", "-o", str(workbook_path)).exit_code == 0
    rows = workbook_rows(workbook_path)["示范区税务局"]
    assert rows[1][0] == "赵党员" and rows[1][-1] == "'=认真负责"
    assert ("报到率", "50.0%") in [row[:2] for row in rows] and ("完成率", "100.0%") in [row[:2] for row in rows]

    folder = tmp_path / "feedback"
    result = run(runner, "export", "feedback", "--org", "S", "--year", "2026", "--format", "csv", "--language", "en", "-o", str(folder))
    assert result.exit_code == 0 and "示范区税务局" in result.output
    data = (folder / f"{season.employer}.csv").read_bytes()
    assert data.startswith(BOM) and "Report-in rate,50.0%" in data.decode()
    assert session.get(EmployerUnit, season.employer).party_members_employed == 2


def test_bad_values_are_refused_naming_the_field(runner, season, tmp_path):
    for arguments, message in [
        (("export", "annual", "--org", "S", "--year", "2030", "-o", str(tmp_path / "x.xlsx")), "year: 2030 has not begun yet"),
        (("export", "annual", "--org", "NOPE", "--year", "2026", "-o", str(tmp_path / "x.xlsx")), "org: no org node has code"),
        (("evaluation", "changes", "--org", "S", "--year", "2026"), "year: 城东街道's evaluation of 2026 is not frozen"),
        (("evaluation", "remark", "--participant", str(season.alice), "--year", "2026", "--text", "好"), "participant_id:"),
        (("evaluation", "headcount", "--employer", str(season.employer), "--party-members", "-3"), "party_members_employed:"),
        (("export", "feedback", "--org", "S", "--year", "2026", "--employer", "999", "-o", str(tmp_path / "f.xlsx")), "employer_unit_id:"),
    ]:
        result = run(runner, *arguments)
        assert result.exit_code == 1 and message in result.output, (arguments, result.output)


def test_the_demo_user_that_froze_is_recorded(runner, season, session):
    run(runner, "evaluation", "freeze", "--org", "C1", "--year", "2026", "--as", "demo-street")
    from ledger.models import EvaluationFreeze

    freeze = session.query(EvaluationFreeze).one()
    assert session.get(AppUser, freeze.frozen_by_id).username == "demo-street"
