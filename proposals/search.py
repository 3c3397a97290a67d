"""Full-text search over title, summary and body, with German stemming on both databases.

PostgreSQL: the generated column ``proposal.search_vector`` (German configuration, weights A/B/C) matched
with ``websearch_to_tsquery('german', :q)`` and ranked with ``ts_rank``.

SQLite: the FTS5 table ``proposal_search`` (rowid = proposal id) holds German-stemmed text that
``index_proposal`` writes in the same transaction as every create and edit. Query words are stemmed the
same way and each is quoted as an FTS5 string, so user input can never become FTS syntax; the MATCH
expression is a bound parameter (ASVS V1.2.4). Results are ranked with bm25 (title counts most).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import snowballstemmer
from sqlalchemy import ColumnElement, Float, Integer, Select, false, func, literal_column, text
from sqlmodel import Session

from proposals.models import Proposal

MAX_QUERY = 200
MAX_TERMS = 12
_WORD = re.compile(r"\w+", re.UNICODE)


@functools.cache
def _stemmer():
    return snowballstemmer.stemmer("german")


def stem_words(value: str) -> list[str]:
    """Lower-cased German stems of the words in ``value`` (digits kept, punctuation dropped)."""
    words = [w.replace("_", "") for w in _WORD.findall((value or "").lower())]
    return _stemmer().stemWords([w for w in words if w])


def stemmed_text(value: str) -> str:
    return " ".join(stem_words(value))


def fts5_match(query: str) -> str:
    """A safe FTS5 MATCH expression: every stemmed term as a quoted string, implicitly AND-ed."""
    terms: list[str] = []
    for term in stem_words(query[:MAX_QUERY]):
        if term not in terms:
            terms.append(term)
    return " ".join('"' + term.replace('"', '""') + '"' for term in terms[:MAX_TERMS])


def dialect(db: Session) -> str:
    return db.get_bind().dialect.name


def index_proposal(db: Session, *, proposal: Proposal) -> None:
    """Write the proposal's stemmed text into the SQLite FTS table (PostgreSQL needs nothing: the
    tsvector column is generated). Call after every create and edit, inside the same transaction."""
    if dialect(db) != "sqlite":
        return
    db.flush()
    params = {"id": proposal.id}
    db.execute(text("DELETE FROM proposal_search WHERE rowid = :id"), params)
    db.execute(
        text(
            "INSERT INTO proposal_search (rowid, title, summary, body) VALUES (:id, :title, :summary, :body)"
        ),
        {
            **params,
            "title": stemmed_text(proposal.title),
            "summary": stemmed_text(proposal.summary),
            "body": stemmed_text(proposal.body_md),
        },
    )


def remove_proposal(db: Session, *, proposal_id: int) -> None:
    if dialect(db) == "sqlite":
        db.execute(text("DELETE FROM proposal_search WHERE rowid = :id"), {"id": proposal_id})


def reindex_all(db: Session, *, batch: int = 500) -> int:
    """Rebuild the SQLite FTS table from the proposals (after bulk imports); returns the row count."""
    if dialect(db) != "sqlite":
        return 0
    from sqlalchemy import select

    db.execute(text("DELETE FROM proposal_search"))
    count, last_id = 0, 0
    while True:
        rows = list(
            db.execute(
                select(Proposal).where(Proposal.id > last_id).order_by(Proposal.id).limit(batch)
            ).scalars()
        )
        if not rows:
            return count
        db.execute(
            text("INSERT INTO proposal_search (rowid, title, summary, body) VALUES (:id, :t, :s, :b)"),
            [
                {
                    "id": p.id,
                    "t": stemmed_text(p.title),
                    "s": stemmed_text(p.summary),
                    "b": stemmed_text(p.body_md),
                }
                for p in rows
            ],
        )
        count += len(rows)
        last_id = rows[-1].id or last_id


@dataclass(frozen=True)
class Matched:
    """A statement restricted to the proposals matching a query, and the expression to order by
    (best match first)."""

    stmt: Select
    relevance: ColumnElement


def apply(db: Session, stmt: Select, query: str) -> Matched:
    """Restrict ``stmt`` (which selects from ``proposal``) to the proposals matching ``query``."""
    query = query.strip()[:MAX_QUERY]
    if dialect(db) == "postgresql":
        vector = literal_column("proposal.search_vector")
        tsquery = func.websearch_to_tsquery(literal_column("'german'::regconfig"), query)
        return Matched(stmt.where(vector.op("@@")(tsquery)), func.ts_rank(vector, tsquery).desc())
    match = fts5_match(query)
    if not match:
        return Matched(stmt.where(false()), Proposal.id.desc())
    fts = (
        text(
            "SELECT rowid AS pid, bm25(proposal_search, 10.0, 4.0, 1.0) AS rank "
            "FROM proposal_search WHERE proposal_search MATCH :match"
        )
        .bindparams(match=match)
        .columns(pid=Integer, rank=Float)
        .subquery("fts")
    )
    return Matched(stmt.join(fts, fts.c.pid == Proposal.id), fts.c.rank.asc())
