"""Web pages: the front page (the org tree with its participants and points), and the public check of a certificate."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from ledger.api.auth import limiter
from ledger.api.resources.certificates import CHECK_RATE_LIMIT
from ledger.certificates import check_code, hours_text
from ledger.db import db
from ledger.errors import NotFound
from ledger.orgs import tree_overview

pages = Blueprint("pages", __name__)

#: zh-CN labels of the org kinds.
ORG_KIND_LABELS = {"district": "区（县）", "street": "街道（乡镇）", "community": "社区（村）", "grid": "网格"}


@pages.get("/")
def index():
    """Show the org tree, participants and outstanding points of each node."""
    return render_template("index.html", overview=tree_overview(db.session), kind_labels=ORG_KIND_LABELS)


@pages.get("/certificates/check")
@limiter.limit(CHECK_RATE_LIMIT)
def certificate_check():
    """Let anyone check a service certificate's verification code (查验): what it certifies, and whether it still holds."""
    code = request.args.get("code", "").strip()[:40]
    try:
        check = check_code(db.session, code) if code else None
    except NotFound:
        return render_template("certificate_check.html", code=code, check=None, not_found=True), 404
    return render_template("certificate_check.html", code=code, check=check, not_found=False, hours_text=hours_text)


def init_app(app) -> None:
    app.register_blueprint(pages)
