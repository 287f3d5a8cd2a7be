"""The ledger's errors: one hierarchy, mapped to HTTP and CLI messages at the edges.

Every error carries a stable machine-readable ``code``, a human ``message`` and, where a
single input field is at fault, the ``field`` it names. Services raise these; they never
raise HTTP exceptions and never return error tuples.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every refusal the ledger makes on purpose."""

    code = "ledger_error"
    http_status = 400

    def __init__(self, message: str, *, field: str | None = None, **details: object):
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class InvalidInput(LedgerError):
    """Raised when an argument is malformed or out of range (names the field)."""

    code = "invalid_input"
    http_status = 422


class RuleSetInvalid(InvalidInput):
    """Raised when a rule-set document cannot be read or breaks the rule-set schema.

    Every problem is listed at once, so staff can fix a document in one round: ``errors`` maps
    each dotted path (``activity_types.patrol.points``, ``calendar.holidays.3``, or ``document``
    for the text as a whole) to its messages, and the message summarises them all.
    """

    code = "rule_set_invalid"
    http_status = 422

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        problems = [f"{path}: {message}" for path, messages in errors.items() for message in messages]
        super().__init__(f"the rule set has {len(problems)} problem(s): " + "; ".join(problems))


class NotFound(LedgerError):
    """Raised when a referenced object does not exist (or is outside the caller's scope)."""

    code = "not_found"
    http_status = 404


class Conflict(LedgerError):
    """Raised when a write collides with what is already stored."""

    code = "conflict"
    http_status = 409


class AlreadyExists(Conflict):
    """Raised when creating something whose natural key is already taken."""

    code = "already_exists"


class IdempotencyConflict(Conflict):
    """Raised when an idempotency key is reused with different content."""

    code = "idempotency_conflict"
    http_status = 422


class InsufficientBalance(Conflict):
    """Raised when a transaction would take a participant account below zero."""

    code = "insufficient_balance"


class AlreadyReversed(Conflict):
    """Raised when a transaction that already has a reversal is reversed again."""

    code = "already_reversed"


class NotReversible(Conflict):
    """Raised when a transaction may not be reversed at all (a reversal, for one)."""

    code = "not_reversible"


class AppendOnlyViolation(LedgerError):
    """Raised when code tries to update or delete a ledger row."""

    code = "append_only"
    http_status = 409


class Unauthenticated(LedgerError):
    """Raised when a request carries no valid credentials (missing, expired or revoked token)."""

    code = "unauthenticated"
    http_status = 401


class Forbidden(LedgerError):
    """Raised when the caller may see an object but none of their roles allows this action on it."""

    code = "forbidden"
    http_status = 403


class RetryLimitReached(LedgerError):
    """Raised when a write kept colliding with concurrent writers after every retry."""

    code = "busy"
    http_status = 503


class ConfigurationError(RuntimeError):
    """Raised at start-up when the environment does not describe a safe configuration."""
