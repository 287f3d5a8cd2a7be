"""Rule-set versions: drafts, publishing, and which version is in force where and when.

A street or community writes its rules as a document; a draft can be edited and validated
freely; publishing freezes it (the database refuses any later change) and a change is a new
version. The version in force for an org on a day is found by walking up the tree: the
nearest org with a published version whose effective period covers the day, and in that org
the highest version number. Entries record the version that scored them, so publishing a new
version changes the entries written after it and never one written before.
"""

from __future__ import annotations

import datetime as dt
from typing import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger import chain
from ledger.errors import Conflict, NotFound
from ledger.models import AppUser, OrgNode, RuleSetStatus, RuleSetVersion, utc_now
from ledger.orgs import path_ids
from ledger.rulesets import RuleSet
from ledger.ruleset_schema import default_rules_text, dump_rule_set, load_rule_set, parse_rule_set
from ledger.transactions import lock_chain


class RuleSetPublished(Conflict):
    """Raised when a published rule-set version is asked to change; publish a new version."""

    code = "rule_set_published"


def create_draft(
    session: Session, *, actor: AppUser, org: OrgNode, text: str, format: str = "yaml", now: dt.datetime | None = None
) -> RuleSetVersion:
    """Validate a rule document and store it as the org's next version, still a draft."""
    rules = parse_rule_set(text, format=format)
    lock_chain(session, org)  # numbers versions one writer at a time
    next_version = (
        session.scalar(select(func.coalesce(func.max(RuleSetVersion.version), 0)).where(RuleSetVersion.org_id == org.id))
        + 1
    )
    draft = RuleSetVersion(org_id=org.id, version=next_version, status=RuleSetStatus.DRAFT, created_by_id=actor.id)
    draft.created_at = now or utc_now()
    _set_rules(draft, rules)
    session.add(draft)
    session.flush()
    return draft


def update_draft(session: Session, *, version_id: int, text: str, format: str = "yaml") -> RuleSetVersion:
    """Replace a draft's document with a new one, validated the same way."""
    draft = _version(session, version_id)
    if draft.status == RuleSetStatus.PUBLISHED:
        raise RuleSetPublished(
            f"version {draft.version} is published and never changes; create a new draft", field="version_id"
        )
    _set_rules(draft, parse_rule_set(text, format=format))
    session.flush()
    return draft


def publish(session: Session, *, actor: AppUser, version_id: int, now: dt.datetime | None = None) -> RuleSetVersion:
    """Freeze a draft: from now on it scores entries in its org and effective period."""
    version = _version(session, version_id)
    if version.status == RuleSetStatus.PUBLISHED:
        raise RuleSetPublished(f"version {version.version} is already published", field="version_id")
    publisher_id = actor.id  # read first: loading it may flush, and a half-published row is refused
    version.published_by_id = publisher_id
    version.published_at = now or utc_now()
    version.status = RuleSetStatus.PUBLISHED
    session.flush()
    return version


def publish_document(
    session: Session, *, actor: AppUser, org: OrgNode, text: str, format: str = "yaml", now: dt.datetime | None = None
) -> RuleSetVersion:
    """Create a draft from ``text`` and publish it at once."""
    draft = create_draft(session, actor=actor, org=org, text=text, format=format, now=now)
    return publish(session, actor=actor, version_id=draft.id, now=now)


def publish_default(session: Session, *, actor: AppUser, org: OrgNode, now: dt.datetime | None = None) -> RuleSetVersion:
    """Publish the rule set that ships with the product for ``org`` (see docs/rules.md)."""
    return publish_document(session, actor=actor, org=org, text=default_rules_text(), now=now)


def version_in_force(session: Session, org: OrgNode, day: dt.date) -> RuleSetVersion:
    """Return the published version that scores service done in ``org`` on ``day``."""
    candidates = session.execute(
        select(RuleSetVersion).where(
            RuleSetVersion.org_id.in_(path_ids(org.path)),
            RuleSetVersion.status == RuleSetStatus.PUBLISHED,
            RuleSetVersion.effective_from <= day,
            (RuleSetVersion.effective_to.is_(None)) | (RuleSetVersion.effective_to >= day),
        )
    ).scalars()
    return choose_version(candidates, org, day)


def choose_version(versions: Iterable[RuleSetVersion], org: OrgNode, day: dt.date) -> RuleSetVersion:
    """Return, of ``versions``, the published one that scores service done in ``org`` on ``day``.

    The nearest org up the tree wins, then the highest version; a caller that scores many days
    loads its candidates once and chooses here for each day.
    """
    lineage = path_ids(org.path)  # root first
    candidates = (
        v
        for v in versions
        if v.org_id in lineage
        and v.status == RuleSetStatus.PUBLISHED
        and v.effective_from <= day
        and (v.effective_to is None or v.effective_to >= day)
    )
    best = max(candidates, key=lambda v: (lineage.index(v.org_id), v.version), default=None)
    if best is None:
        raise NotFound(
            f"no published rule set covers {day.isoformat()} in {org.name}; publish one for it or an org above it",
            field="started_at",
        )
    return best


#: Parsed rules by (version id, digest): a published version never changes, and an edited
#: draft gets a new digest, so an entry here is never stale.
_parsed: dict[tuple[int, str], RuleSet] = {}


def rules_of(version: RuleSetVersion) -> RuleSet:
    """Return a stored version's rules as values, parsing each version's content once."""
    key = (version.id, version.digest)
    if key not in _parsed:
        _parsed[key] = load_rule_set(version.document)
    return _parsed[key]


def versions(session: Session, org: OrgNode) -> list[RuleSetVersion]:
    """Return every version of ``org``'s rule set, newest first."""
    return list(
        session.execute(
            select(RuleSetVersion).where(RuleSetVersion.org_id == org.id).order_by(RuleSetVersion.version.desc())
        ).scalars()
    )


def _set_rules(version: RuleSetVersion, rules: RuleSet) -> None:
    document = dump_rule_set(rules)
    version.name = rules.name
    version.document = document
    version.digest = chain.digest(document)
    version.effective_from = rules.effective_from
    version.effective_to = rules.effective_to


def _version(session: Session, version_id: int) -> RuleSetVersion:
    version = session.get(RuleSetVersion, version_id)
    if version is None:
        raise NotFound(f"rule set version {version_id} does not exist", field="version_id")
    return version
