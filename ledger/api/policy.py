"""Who may do what, where: every authorization decision of the API, in one place.

A user holds roles, each over an org's subtree (a system admin over everything). An action
on an object is allowed when some role the user holds over the object's org grants the
action. The object's org is found by the view (the participant's, the activity's, the
order's …) and handed here; views never decide for themselves.

Two rules keep what exists from leaking:

* an object outside every subtree the user holds a role over is *not found* (404), exactly
  as if it did not exist;
* a volunteer's personal data (balance, history, their reports, claims and redemptions) is
  theirs alone: another volunteer asking for it is told it is not found.

Inside a scope, an action no role grants is *forbidden* (403).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ledger.errors import Forbidden, NotFound
from ledger.models import AppUser, OrgNode, Role


class Action(StrEnum):
    READ_ORGS = "read_orgs"
    MANAGE_ORGS = "manage_orgs"
    READ_PARTICIPANTS = "read_participants"
    MANAGE_PARTICIPANTS = "manage_participants"
    #: Balances, history, transactions, period totals, star levels.
    READ_LEDGER = "read_ledger"
    RECORD_SERVICE = "record_service"
    REVIEW_REPORTS = "review_reports"
    #: Corrections of activities and reversals of transactions.
    CORRECT = "correct"
    REPORT_OWN_SERVICE = "report_own_service"
    READ_RANKINGS = "read_rankings"
    #: Rankings as staff see them, with those who opted out.
    READ_FULL_RANKINGS = "read_full_rankings"
    #: Leaving a participant out of public rankings or showing them again (a volunteer: only themselves).
    CHOOSE_RANKING_VISIBILITY = "choose_ranking_visibility"
    READ_RULES = "read_rules"
    MANAGE_RULES = "manage_rules"
    READ_ORDERS = "read_orders"
    MANAGE_ORDERS = "manage_orders"
    CONFIRM_ORDERS = "confirm_orders"
    CLAIM_ORDERS = "claim_orders"
    READ_SHELF = "read_shelf"
    MANAGE_SHELF = "manage_shelf"
    REDEEM = "redeem"
    RUN_EXPIRY = "run_expiry"
    VERIFY = "verify"
    MANAGE_USERS = "manage_users"
    #: Downloading the annual evaluation, the changes since its freeze, and the employers' feedback.
    EXPORT_EVALUATION = "export_evaluation"
    #: Freezing an org's annual evaluation of a year (a street admin's step at the deadline).
    FREEZE_EVALUATION = "freeze_evaluation"
    #: Issuing a service certificate (志愿服务记录证明); a volunteer: only their own.
    ISSUE_CERTIFICATES = "issue_certificates"


#: Actions a volunteer may take only for themselves.
OWN_ONLY = {
    Action.READ_LEDGER,
    Action.REPORT_OWN_SERVICE,
    Action.CLAIM_ORDERS,
    Action.REDEEM,
    Action.READ_PARTICIPANTS,
    Action.CHOOSE_RANKING_VISIBILITY,
    Action.ISSUE_CERTIFICATES,
}

_READS = {Action.READ_ORGS, Action.READ_RULES, Action.READ_RANKINGS, Action.READ_ORDERS, Action.READ_SHELF}
_STAFF_READS = _READS | {Action.READ_PARTICIPANTS, Action.READ_LEDGER, Action.READ_FULL_RANKINGS}

GRANTS: dict[Role, frozenset[Action]] = {
    Role.VOLUNTEER: frozenset(
        _READS
        | {
            Action.READ_PARTICIPANTS,
            Action.READ_LEDGER,
            Action.REPORT_OWN_SERVICE,
            Action.CLAIM_ORDERS,
            Action.REDEEM,
            Action.CHOOSE_RANKING_VISIBILITY,
            Action.ISSUE_CERTIFICATES,
        }
    ),
    Role.GRID_WORKER: frozenset(
        # A grid worker collects their grid's needs, so posts and runs its orders too.
        _STAFF_READS | {Action.RECORD_SERVICE, Action.REVIEW_REPORTS, Action.MANAGE_ORDERS, Action.CONFIRM_ORDERS}
        | {Action.ISSUE_CERTIFICATES}
    ),
    Role.COMMUNITY_STAFF: frozenset(
        _STAFF_READS
        | {
            Action.MANAGE_PARTICIPANTS,
            Action.CHOOSE_RANKING_VISIBILITY,
            Action.RECORD_SERVICE,
            Action.REVIEW_REPORTS,
            Action.CORRECT,
            Action.MANAGE_ORDERS,
            Action.CONFIRM_ORDERS,
            Action.CLAIM_ORDERS,
            Action.MANAGE_SHELF,
            Action.REDEEM,
            Action.EXPORT_EVALUATION,
            Action.ISSUE_CERTIFICATES,
        }
    ),
    Role.STREET_ADMIN: frozenset(set(Action) - {Action.REPORT_OWN_SERVICE}),
    Role.AUDITOR: frozenset(_STAFF_READS | {Action.VERIFY, Action.EXPORT_EVALUATION}),
    Role.SYSTEM_ADMIN: frozenset(Action),
}


@dataclass(frozen=True)
class Grant:
    role: Role
    #: The path of the subtree the role covers; ``None`` for everywhere.
    path: str | None

    def covers(self, org: OrgNode) -> bool:
        return self.path is None or org.path.startswith(self.path)


@dataclass(frozen=True)
class Principal:
    """The signed-in user and the roles they hold, for one request."""

    user: AppUser
    grants: tuple[Grant, ...]

    @classmethod
    def of(cls, user: AppUser) -> Principal:
        return cls(user, tuple(Grant(Role(r.role), None if r.org is None else r.org.path) for r in user.roles))

    def authorize(self, action: Action, org: OrgNode, *, participant_id: int | None = None) -> None:
        """Allow ``action`` on an object of ``org`` (and of ``participant_id``), or refuse it.

        Raises :class:`NotFound` for an object outside every scope, or another volunteer's
        personal data; :class:`Forbidden` when in scope but no role grants the action.
        """
        in_scope = [grant for grant in self.grants if grant.covers(org)]
        if not in_scope:
            raise NotFound("not found, or not within your organisation", field=None)
        personal_refusals = 0
        for grant in in_scope:
            if action not in GRANTS[grant.role]:
                continue
            if grant.role is Role.VOLUNTEER and action in OWN_ONLY and participant_id != self.user.participant_id:
                personal_refusals += 1
                continue
            return
        if personal_refusals:
            raise NotFound("not found: you can see only your own records", field=None)
        raise Forbidden(f"none of your roles allows {action.value} here")

    def may(self, action: Action, org: OrgNode) -> bool:
        """Tell whether some role allows ``action`` in ``org`` (for choosing what a list shows)."""
        return any(grant.covers(org) and action in GRANTS[grant.role] for grant in self.grants)

    def scopes(self, action: Action) -> list[str] | None:
        """Return the subtree paths where ``action`` is allowed; ``None`` means everywhere."""
        paths = []
        for grant in self.grants:
            if action in GRANTS[grant.role]:
                if grant.path is None:
                    return None
                paths.append(grant.path)
        return paths
