"""Participatory-budget processes, their projects, ballots and results.

Lifecycle as timestamps: planned dates (``*_starts_at``/``*_ends_at``) apart from what happened
(``frozen_at``, ``voting_opened_at``, ``voting_closed_at``, ``results_published_at``). Money in integer cents.

Ballot secrecy: a ballot is stored under a random ``ballot_uid``; the voter ↔ ballot link lives apart in
``VoterLink`` as a keyed hash (HMAC of the voter id with the process's link key) and can be destroyed when
the result is final.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from app.database import UTCDateTime, utcnow


class BallotType(enum.StrEnum):
    APPROVAL = "approval"  # choose between min_choices and max_choices projects
    KNAPSACK = "knapsack"  # choose projects whose total cost fits the budget
    CUMULATIVE = "cumulative"  # distribute points_total points, at most points_per_project each
    RANKED = "ranked"  # order up to max_choices projects


class TallyRule(enum.StrEnum):
    GREEDY = "greedy"
    MES = "mes"
    MES_ADD1 = "mes-add1"
    MES_ADD1_GREEDY = "mes-add1-greedy"
    PHRAGMEN = "phragmen"


def _ts(nullable: bool = True):
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable))


def _now():
    return Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class Process(SQLModel, table=True):
    """A participatory-budget process with its phases, ballot rules and tally rule."""

    __table_args__ = (
        UniqueConstraint("slug", name="uq_process_slug"),
        CheckConstraint("budget_cents > 0", name="budget_positive"),
        CheckConstraint(
            "min_choices >= 0 AND (max_choices IS NULL OR max_choices >= min_choices)", name="choices"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(sa_column=Column(String(64), nullable=False))
    title: str = Field(sa_column=Column(String(200), nullable=False))
    description_md: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    description_html: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    budget_cents: int = Field(sa_column=Column(BigInteger, nullable=False))  # city-wide ballot budget
    ballot_type: str = Field(default=BallotType.APPROVAL.value, sa_column=Column(String(16), nullable=False))
    min_choices: int = Field(default=0)
    max_choices: int | None = Field(default=None)
    points_total: int | None = Field(default=None)  # cumulative
    points_per_project: int | None = Field(default=None)  # cumulative
    rule: str = Field(default=TallyRule.GREEDY.value, sa_column=Column(String(20), nullable=False))
    has_district_ballots: bool = Field(default=False)  # residents also vote in their district's sub-budget
    min_age: int | None = Field(default=None)  # at the close of voting
    require_verified: bool = Field(default=False)
    eligible_district_ids: str = Field(default="", sa_column=Column(String(500), nullable=False, default=""))
    # planned phases
    ideas_starts_at: dt.datetime | None = _ts()
    review_starts_at: dt.datetime | None = _ts()
    voting_starts_at: dt.datetime | None = _ts()
    voting_ends_at: dt.datetime | None = _ts()
    results_at: dt.datetime | None = _ts()
    # what happened
    frozen_at: dt.datetime | None = _ts()
    projects_hash: str = Field(default="", sa_column=Column(String(64), nullable=False, default=""))
    voting_opened_at: dt.datetime | None = _ts()
    voting_closed_at: dt.datetime | None = _ts()
    results_published_at: dt.datetime | None = _ts()
    links_destroyed_at: dt.datetime | None = _ts()
    created_by_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    created_at: dt.datetime = _now()
    updated_at: dt.datetime = _now()


class DistrictBudget(SQLModel, table=True):
    """A district's sub-budget within a process (its own ballot)."""

    __tablename__ = "district_budget"
    __table_args__ = (
        UniqueConstraint("process_id", "district_id", name="uq_district_budget_process_district"),
        CheckConstraint("budget_cents > 0", name="budget_positive"),
    )

    id: int | None = Field(default=None, primary_key=True)
    process_id: int = Field(foreign_key="process.id", ondelete="CASCADE")
    district_id: int = Field(foreign_key="district.id")
    budget_cents: int = Field(sa_column=Column(BigInteger, nullable=False))


class Project(SQLModel, table=True):
    """A project on a ballot. ``district_id`` NULL: city-wide ballot; otherwise that district's ballot."""

    __table_args__ = (
        Index("ix_project_process", "process_id", "district_id"),
        CheckConstraint("cost_cents IS NULL OR cost_cents > 0", name="cost_positive"),
    )

    id: int | None = Field(default=None, primary_key=True)
    process_id: int = Field(foreign_key="process.id", ondelete="CASCADE")
    proposal_id: int | None = Field(default=None, foreign_key="proposal.id", ondelete="SET NULL")
    title: str = Field(sa_column=Column(String(200), nullable=False))
    description_md: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    description_html: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    cost_cents: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    theme_id: int | None = Field(default=None, foreign_key="theme.id", ondelete="SET NULL")
    district_id: int | None = Field(default=None, foreign_key="district.id")
    feasibility_notes: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    position: int = Field(default=0)
    created_at: dt.datetime = _now()


class Ballot(SQLModel, table=True):
    """The current version of one ballot, under a random identifier (never the voter's identity).

    ``scope``: 0 for the city-wide ballot, otherwise the district id of a district ballot. ``selection`` is
    canonical JSON: approval/knapsack ``[project ids]``, cumulative ``{project id: points}``, ranked
    ``[project ids in order]``. Every version is also an entry of the process's audit log."""

    __table_args__ = (
        UniqueConstraint("ballot_uid", name="uq_ballot_ballot_uid"),
        Index("ix_ballot_process_scope", "process_id", "scope"),
    )

    id: int | None = Field(default=None, primary_key=True)
    process_id: int = Field(foreign_key="process.id", ondelete="CASCADE")
    scope: int = Field(default=0)
    ballot_uid: str = Field(sa_column=Column(String(32), nullable=False))
    selection: str = Field(sa_column=Column(Text, nullable=False))
    version: int = Field(default=1)
    is_paper: bool = Field(default=False)
    cast_at: dt.datetime = _now()
    updated_at: dt.datetime = _now()
    log_index: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class VoterLink(SQLModel, table=True):
    """voter ↔ ballot, kept apart as a keyed hash; UNIQUE: one ballot per eligible resident per scope.

    Deleted for good when staff destroy the links after the result is final (itself a log entry)."""

    __tablename__ = "voter_link"
    __table_args__ = (
        UniqueConstraint("process_id", "scope", "voter_hash", name="uq_voter_link_voter"),
        # A voter's links across the ballots of a process (receipts, the one-district check): without it
        # both scanned every link of the process, so each receipt got slower with every ballot.
        Index("ix_voter_link_process_voter", "process_id", "voter_hash"),
    )

    id: int | None = Field(default=None, primary_key=True)
    process_id: int = Field(foreign_key="process.id", ondelete="CASCADE")
    scope: int = Field(default=0)
    voter_hash: str = Field(sa_column=Column(String(64), nullable=False))
    ballot_uid: str = Field(sa_column=Column(String(32), nullable=False))


class PaperBallot(SQLModel, table=True):
    """A paper ballot from a polling station: entered by one staff member, confirmed by a second one
    (only then is it cast and logged, marked as paper)."""

    __tablename__ = "paper_ballot"

    id: int | None = Field(default=None, primary_key=True)
    process_id: int = Field(foreign_key="process.id", ondelete="CASCADE")
    scope: int = Field(default=0)
    polling_station: str = Field(sa_column=Column(String(120), nullable=False))
    reference: str = Field(sa_column=Column(String(64), nullable=False))  # the paper's serial number
    selection: str = Field(sa_column=Column(Text, nullable=False))
    entered_by_id: int = Field(foreign_key="user.id")
    entered_at: dt.datetime = _now()
    confirmed_by_id: int | None = Field(default=None, foreign_key="user.id")
    confirmed_at: dt.datetime | None = _ts()
    rejected_at: dt.datetime | None = _ts()
    ballot_uid: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))


class TallyRun(SQLModel, table=True):
    """A tally of one scope of a process with one rule; the published one is what the results page shows."""

    __tablename__ = "tally_run"
    __table_args__ = (Index("ix_tally_run_process", "process_id", "scope", "rule"),)

    id: int | None = Field(default=None, primary_key=True)
    process_id: int = Field(foreign_key="process.id", ondelete="CASCADE")
    scope: int = Field(default=0)
    rule: str = Field(sa_column=Column(String(20), nullable=False))
    status: str = Field(
        default="running", sa_column=Column(String(16), nullable=False)
    )  # running|done|failed
    progress: int = Field(default=0)  # percent
    result: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))  # canonical JSON
    error: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    ballots: int = Field(default=0)
    started_at: dt.datetime = _now()
    finished_at: dt.datetime | None = _ts()
    published_at: dt.datetime | None = _ts()


# --- the tamper-evident log (RFC 9162 Merkle tree, see voting/merkle.py) -----------------------------------


class LogState(SQLModel, table=True):
    """The head of one log: its size and the right-edge subtree hashes (compact range). The row is locked
    (SELECT … FOR UPDATE on PostgreSQL, a write transaction on SQLite) for every append, so concurrent
    workers can never fork the log."""

    __tablename__ = "log_state"

    log_id: str = Field(sa_column=Column(String(40), primary_key=True))  # "process:12" or "platform"
    size: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    compact_range: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    updated_at: dt.datetime = _now()


class LogEntry(SQLModel, table=True):
    """One entry: canonical JSON bytes and its leaf hash H(0x00 ‖ entry)."""

    __tablename__ = "log_entry"
    __table_args__ = (
        UniqueConstraint("log_id", "idx", name="uq_log_entry_log_idx"),
        Index("ix_log_entry_log_type", "log_id", "entry_type"),
    )

    id: int | None = Field(default=None, primary_key=True)
    log_id: str = Field(sa_column=Column(String(40), nullable=False))
    idx: int = Field(sa_column=Column(BigInteger, nullable=False))
    entry_type: str = Field(sa_column=Column(String(40), nullable=False))
    entry: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    leaf_hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    created_at: dt.datetime = _now()


class LogNode(SQLModel, table=True):
    """The hash of a perfect subtree: leaves [index·2^level, (index+1)·2^level), level ≥ 1."""

    __tablename__ = "log_node"
    __table_args__ = (UniqueConstraint("log_id", "level", "idx", name="uq_log_node_log_level_idx"),)

    id: int | None = Field(default=None, primary_key=True)
    log_id: str = Field(sa_column=Column(String(40), nullable=False))
    level: int
    idx: int = Field(sa_column=Column(BigInteger, nullable=False))
    hash: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))


class SignedTreeHead(SQLModel, table=True):
    """A published, Ed25519-signed statement (log, size, root, timestamp)."""

    __tablename__ = "signed_tree_head"
    __table_args__ = (Index("ix_signed_tree_head_log_size", "log_id", "size"),)

    id: int | None = Field(default=None, primary_key=True)
    log_id: str = Field(sa_column=Column(String(40), nullable=False))
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    root: bytes = Field(sa_column=Column(LargeBinary(32), nullable=False))
    timestamp: dt.datetime = _now()
    signature: bytes = Field(sa_column=Column(LargeBinary(64), nullable=False))
    key_id: str = Field(sa_column=Column(String(64), nullable=False))
    reason: str = Field(default="", sa_column=Column(String(32), nullable=False, default=""))
