"""Fixtures for API tests: users of every role in two communities, and a client that signs requests.

``api`` gives an :class:`ApiCaller`: ``api.get(path, as_="staff")``, ``api.post(path, body,
as_="staff")`` (a fresh Idempotency-Key unless one is given). The users:

========== ==================== ======================================
name       role                 over
========== ==================== ======================================
admin      system_admin         everything
street     street_admin         the street S
staff      community_staff      community C1
staff2     community_staff      community C2
grid       grid_worker          grid C1-G1
auditor    auditor              the street S
volunteer  volunteer            community C1, as the volunteer ``me``
volunteer2 volunteer            community C1, as another volunteer
========== ==================== ======================================
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

import pytest

from ledger.models import Account, OrgNode, utc_now
from ledger.users import ensure_user, grant_role, issue_token

_keys = itertools.count(1)

#: name → (role, org attribute of the ``street`` fixture, or None)
API_USERS = {
    "admin": ("system_admin", None),
    "street": ("street_admin", "street"),
    "staff": ("community_staff", "community"),
    "staff2": ("community_staff", "other_community"),
    "grid": ("grid_worker", "grid"),
    "auditor": ("auditor", "street"),
    "volunteer": ("volunteer", "community"),
    "volunteer2": ("volunteer", "community"),
}


@dataclass
class ApiCaller:
    client: object
    tokens: dict[str, str]
    #: Participant ids of the two volunteers who have users.
    me: int
    other_volunteer: int

    def headers(self, as_: str | None, key: str | None = None, language: str | None = None) -> dict:
        headers = {}
        if as_ is not None:
            headers["Authorization"] = f"Bearer {self.tokens[as_]}"
        if key is not None:
            headers["Idempotency-Key"] = key
        if language is not None:
            headers["Accept-Language"] = language
        return headers

    def get(self, path: str, *, as_: str | None = "admin", **params):
        return self.client.get(path, headers=self.headers(as_), query_string=params)

    def post(self, path: str, body=None, *, as_: str | None = "admin", key: str | None = "fresh", language=None):
        key = f"test-{next(_keys)}" if key == "fresh" else key
        return self.client.post(path, json=body, headers=self.headers(as_, key, language))


@pytest.fixture
def api(client, session, write, street, make_volunteer) -> ApiCaller:
    me = session.get(Account, make_volunteer()).participant_id
    other = session.get(Account, make_volunteer()).participant_id

    def create_users():
        tokens = {}
        for name, (role, org_attribute) in API_USERS.items():
            user = ensure_user(session, f"api-{name}", f"API {name}")
            if name == "volunteer":
                user.participant_id = me
            elif name == "volunteer2":
                user.participant_id = other
            org = None if org_attribute is None else session.get(OrgNode, getattr(street, org_attribute))
            grant_role(session, user=user, role=role, org=org)
            tokens[name] = issue_token(session, user=user, name="test", now=utc_now(), lifetime=dt.timedelta(hours=2)).secret
        return tokens

    return ApiCaller(client, write(create_users), me, other)
