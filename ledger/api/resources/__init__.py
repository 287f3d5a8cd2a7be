"""One blueprint per resource; each is one tag of the OpenAPI document."""

from __future__ import annotations

from ledger.api.resources.orgs import orgs

RESOURCE_BLUEPRINTS = (orgs,)
