"""How big each benchmark run is: the data it builds and how many times it repeats each path."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    name: str
    streets: int
    communities_per_street: int
    grids_per_community: int
    participants: int
    #: Scored activities (ledger entries) of the history, spread over ``years``.
    entries: int
    years: int
    #: Activities recorded one at a time through the service layer, and by the raw path.
    single_writes: int
    #: Writes each of the 16 concurrent writers makes.
    writes_per_writer: int
    #: Batches of 1,000 activities recorded by the bulk path and by the raw path.
    bulk_batches: int
    #: Balance reads, and ranking pages, timed one by one.
    lookups: int
    ranking_pages: int
    #: Seconds each HTTP load lasts.
    http_seconds: int

    @property
    def communities(self) -> int:
        return self.streets * self.communities_per_street


SMALL = Scale(
    name="small",
    streets=2,
    communities_per_street=2,
    grids_per_community=2,
    participants=200,
    entries=1_500,
    years=2,
    single_writes=10,
    writes_per_writer=1,
    bulk_batches=1,
    lookups=10,
    ranking_pages=3,
    http_seconds=0,
)

DISTRICT = Scale(
    name="district",
    streets=10,
    communities_per_street=11,
    grids_per_community=3,
    participants=200_000,
    entries=10_000_000,
    years=5,
    single_writes=300,
    writes_per_writer=20,
    bulk_batches=5,
    lookups=500,
    ranking_pages=30,
    http_seconds=15,
)

SCALES = {scale.name: scale for scale in (SMALL, DISTRICT)}
