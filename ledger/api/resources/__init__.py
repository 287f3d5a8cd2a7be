"""One blueprint per resource; each is one tag of the OpenAPI document."""

from __future__ import annotations

from ledger.api.resources.activities import activities
from ledger.api.resources.audit import audit
from ledger.api.resources.certificates import certificates
from ledger.api.resources.evaluation import evaluations
from ledger.api.resources.imports import imports
from ledger.api.resources.ledger import entries
from ledger.api.resources.orders import orders
from ledger.api.resources.orgs import orgs
from ledger.api.resources.participants import participants, teams
from ledger.api.resources.rewards import rewards
from ledger.api.resources.rules import rule_sets
from ledger.api.resources.standings import standings
from ledger.api.resources.users import users

RESOURCE_BLUEPRINTS = (orgs, participants, teams, users, activities, rule_sets, entries, standings, audit, orders, rewards, evaluations, imports, certificates)
