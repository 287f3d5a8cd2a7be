"""The domain modules load without Flask or a database driver (checked in a fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

DOMAIN_MODULES = (
    "ledger.points",
    "ledger.rewards",
    "ledger.chain",
    "ledger.identity",
    "ledger.rulesets",
    "ledger.ruleset_schema",
    "ledger.evaluation",
    "ledger.exports",
)
FORBIDDEN = ("flask", "flask_sqlalchemy", "sqlalchemy", "psycopg")

#: Imports each domain module in turn and reports which forbidden packages each one pulled in.
PROBE = """
import importlib, json, sys
forbidden = set(json.loads(sys.argv[1]))
loaded = {}
for name in json.loads(sys.argv[2]):
    importlib.import_module(name)
    loaded[name] = sorted(m for m in sys.modules if m.split(".")[0] in forbidden)
print(json.dumps(loaded))
"""


def test_the_domain_modules_load_without_flask_sqlalchemy_or_psycopg():
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(FORBIDDEN), json.dumps(DOMAIN_MODULES)],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    loaded = json.loads(result.stdout)
    assert list(loaded) == list(DOMAIN_MODULES)
    assert loaded == {name: [] for name in DOMAIN_MODULES}
