"""Web pages. For now the front page: the org tree with its participants and points."""

from __future__ import annotations

from flask import Blueprint, render_template

from ledger.db import db
from ledger.orgs import tree_overview

pages = Blueprint("pages", __name__)

#: zh-CN labels of the org kinds.
ORG_KIND_LABELS = {"district": "区（县）", "street": "街道（乡镇）", "community": "社区（村）", "grid": "网格"}


@pages.get("/")
def index():
    """Show the org tree, participants and outstanding points of each node."""
    return render_template("index.html", overview=tree_overview(db.session), kind_labels=ORG_KIND_LABELS)


def init_app(app) -> None:
    app.register_blueprint(pages)
