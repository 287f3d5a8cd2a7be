"""The project keeps its own promises about how it is set up and run."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_command(label: str) -> str:
    head = ROOT.joinpath("README.md").read_text(encoding="utf-8").splitlines()[:6]
    [line] = [line for line in head if line.startswith(label)]
    return re.search(r"`([^`]+)`", line).group(1)


def test_the_readme_opens_with_the_demo_and_the_test_commands():
    assert "ledger demo" in readme_command("Run the demo") and "ledger serve" in readme_command("Run the demo")
    assert readme_command("Run the tests").endswith("pytest")


def test_ci_runs_exactly_the_readme_test_command():
    ci = ROOT.joinpath(".ci", "run").read_text(encoding="utf-8")
    assert readme_command("Run the tests") in ci.splitlines()
