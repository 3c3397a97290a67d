"""A city-scale data set for benchmarks: 50,000 users, 10,000 proposals across the nine theme areas and ten
districts, 200,000 comments (some proposals with hundreds), 300,000 supports, status histories, follows,
and the SQLite full-text index.

    DATABASE_URL=sqlite:////tmp/bench.sqlite3 .venv/bin/python -m bench.seed
    .venv/bin/python -m bench.seed --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench

The database must be fresh: the script migrates it and refuses to touch one that already has proposals.
Deterministic for a given --seed (a seeded RNG and a fixed clock), bulk inserts with SQLAlchemy Core
executemany in batches. Every seeded account has the password ``bench-password`` (e-mail
``buerger<N>@example.org``; account 1 is an administrator). Counters (support_count, comment_count) agree
with the rows, as the application keeps them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import html
import os
import random
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import Engine, func, insert, select, text

from app.database import make_engine
from app.migrations import upgrade
from app.models import Role, User
from app.sanitize import render_markdown
from app.security import hash_password
from app.settings import Settings
from proposals import search
from proposals.comments import MAX_DEPTH
from proposals.models import (
    OPEN_FOR_COMMENTS,
    Comment,
    District,
    Follow,
    Proposal,
    ProposalStatusChange,
    Support,
    Theme,
)

PASSWORD = "bench-password"
END = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)  # a fixed clock: the data set is the same on every run
SPAN_DAYS = 730
BATCH = 5000
SEARCH_WORD = "Radweg"  # appears in many proposals (the benchmark's search term)


@dataclass
class Scale:
    users: int = 50_000
    proposals: int = 10_000
    comments: int = 200_000
    supports: int = 300_000
    hot: int = 40  # proposals with 100–400 comments each

    def scaled(self, factor: float) -> Scale:
        return Scale(
            users=max(20, int(self.users * factor)),
            proposals=max(20, int(self.proposals * factor)),
            comments=int(self.comments * factor),
            supports=int(self.supports * factor),
            hot=max(1, int(self.hot * factor)) if self.comments * factor >= 100 else 0,
        )


@dataclass
class Report:
    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


# --- words ------------------------------------------------------------------------------------------------

FIRST = (
    "Anna Ben Carla David Elif Finn Greta Hakan Ida Jonas Kerstin Lukas Mara Niklas Olga Paul Rana Sven "
    "Tanja Umut Vera Wilhelm Yasemin Zoe Heike Jürgen Sabine Mehmet Petra Klaus Leonie Emre Birgit Thomas"
).split()
LAST = "M. S. K. W. B. H. O. Y. L. P. R. T. G. D. A. F. N. Ö. Ü. Z.".split()

THEME_NOUNS = {
    "gesellschaft-engagement": ["Nachbarschaftstreff", "Ehrenamtsbörse", "Stadtteilfest", "Begegnungsort"],
    "bildung-kultur": ["Stadtbibliothek", "Kulturzentrum", "Schulhof", "Freilichtbühne", "Musikschule"],
    "wirtschaft-einzelhandel": ["Wochenmarkt", "Ladenlokal", "Gründerzentrum", "Fußgängerzone"],
    "mobilitaet-verkehr": ["Radweg", "Bushaltestelle", "Zebrastreifen", "Fahrradstellplätze", "Radweg"],
    "sicherheit-vertrauen": ["Straßenbeleuchtung", "Schulweg", "Unterführung", "Bürgerbüro"],
    "energie-umwelt": ["Stadtbäume", "Solardach", "Blühwiese", "Trinkbrunnen", "Radweg"],
    "jugend-familie": ["Spielplatz", "Jugendtreff", "Kita-Garten", "Bolzplatz", "Wickelraum"],
    "it-infrastruktur-netze": [
        "WLAN-Hotspot",
        "Glasfaseranschluss",
        "Online-Terminbuchung",
        "Open-Data-Portal",
    ],
    "gesundheit-pflege": ["Sportplatz", "Rollstuhlrampe", "Pflegestützpunkt", "Sitzbänke"],
}
INTROS = ["Neuer", "Mehr", "Sicherer", "Barrierefreier", "Sanierung:", "Endlich ein", "Besserer", "Grüner"]
PLACES = [
    "an der Friedrich-Ebert-Straße",
    "am Laurentiusplatz",
    "in der Nordstadt",
    "am Werth",
    "auf dem Ölberg",
    "an der Nordbahntrasse",
    "am Arrenberg",
    "in Langerfeld",
    "am Rathaus Barmen",
    "am Hauptbahnhof",
    "an der Hünefeldstraße",
    "im Mirker Quartier",
    "am Robert-Daum-Platz",
    "in Cronenberg-Mitte",
    "am Marktplatz Ronsdorf",
    "an der Kaiserstraße in Vohwinkel",
]
SENTENCES = [
    "Viele Familien aus dem Viertel wünschen sich das schon lange.",
    "Die jetzige Situation ist für ältere Menschen und Kinder gefährlich.",
    "Andere Städte wie Münster und Karlsruhe haben damit gute Erfahrungen gemacht.",
    "Die Kosten ließen sich über Fördermittel des Landes teilweise decken.",
    "Im Stadtteil gibt es bisher kaum Angebote dieser Art.",
    "Eine Umsetzung wäre in wenigen Monaten möglich.",
    "Der Vorschlag wurde beim letzten Stadtteilgespräch von vielen unterstützt.",
    "Anwohnerinnen und Anwohner würden sich gern an der Pflege beteiligen.",
    "Besonders in den Abendstunden ist der Ort schlecht beleuchtet.",
    "Der Radweg endet derzeit abrupt an einer gefährlichen Kreuzung.",
    "Schulen und Kitas in der Nähe würden direkt profitieren.",
    "Ein Probebetrieb für ein Jahr könnte zeigen, ob die Idee trägt.",
    "Die Fläche gehört der Stadt und wird heute kaum genutzt.",
    "Wir bitten die Verwaltung, die Machbarkeit zu prüfen.",
    "Auch der Einzelhandel vor Ort hätte etwas davon.",
    "Für Menschen im Rollstuhl ist der Zugang heute nicht möglich.",
]
COMMENTS = [
    "Gute Idee, das unterstütze ich!",
    "Ich wohne direkt nebenan und sehe das Problem jeden Tag.",
    "Wer soll das bezahlen? Die Stadt hat doch kein Geld.",
    "Das wurde schon 2019 vorgeschlagen, leider ist nichts passiert.",
    "Wie wäre es, die Anwohner vorher zu befragen?",
    "Der Radweg wäre auch für Schulkinder ein großer Gewinn.",
    "Bitte auch an die Barrierefreiheit denken.",
    "Ich sehe das kritisch, der Platz ist jetzt schon zu eng.",
    "Danke für den Vorschlag, sehr gut begründet.",
    "In Solingen gibt es so etwas schon, das funktioniert prima.",
    "Vielleicht könnte man das mit dem Stadtteilfest verbinden?",
    "Die Kosten erscheinen mir zu hoch geschätzt.",
]
REJECTIONS = [
    "Die Fläche ist für ein anderes Vorhaben vorgesehen.",
    "Die Zuständigkeit liegt beim Land, nicht bei der Stadt.",
    "Die Kosten übersteigen den verfügbaren Haushaltsrahmen.",
]
STATUS_WEIGHTS = {
    "draft": 5,
    "published": 55,
    "under_review": 12,
    "accepted": 8,
    "rejected": 8,
    "implemented": 5,
    "withdrawn": 7,
}
PATHS = {  # the lifecycle steps leading to each status
    "draft": [],
    "published": ["published"],
    "under_review": ["published", "under_review"],
    "accepted": ["published", "under_review", "accepted"],
    "rejected": ["published", "under_review", "rejected"],
    "implemented": ["published", "under_review", "accepted", "implemented"],
    "withdrawn": ["published", "withdrawn"],
}


@functools.cache
def stemmed(fragment: str) -> str:
    """proposals.search's stemmed text, per fragment: the text of a proposal is fragments joined by
    white space, and stemming works word by word, so this equals stemming the whole text."""
    return search.stemmed_text(fragment)


# --- generation -------------------------------------------------------------------------------------------


def _when(rng: random.Random, start: dt.datetime, end: dt.datetime) -> dt.datetime:
    seconds = max(1, int((end - start).total_seconds()))
    return start + dt.timedelta(seconds=rng.randrange(seconds))


def _batches(rows: Iterable[dict], size: int = BATCH) -> Iterator[list[dict]]:
    batch: list[dict] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _insert(engine: Engine, table, rows: Iterable[dict]) -> int:
    n = 0
    with engine.begin() as conn:
        for batch in _batches(rows):
            conn.execute(insert(table), batch)
            n += len(batch)
    return n


def users(rng: random.Random, scale: Scale, password_hash: str) -> Iterator[dict]:
    start = END - dt.timedelta(days=SPAN_DAYS + 365)
    for uid in range(1, scale.users + 1):
        role = {1: Role.ADMIN, 2: Role.STAFF, 3: Role.STAFF, 4: Role.MODERATOR, 5: Role.MODERATOR}.get(uid)
        created = _when(rng, start, END - dt.timedelta(days=SPAN_DAYS))
        yield {
            "id": uid,
            "email": f"buerger{uid}@example.org",
            "password_hash": password_hash,
            "display_name": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
            "role": (role or Role.RESIDENT).value,
            "locale": "de" if rng.random() < 0.9 else "en",
            "district_id": None,
            "is_name_public": rng.random() < 0.3,
            "created_at": created,
            "email_confirmed_at": created,
            "password_changed_at": created,
        }


@dataclass
class SeededProposal:
    id: int
    status: str
    published_at: dt.datetime | None
    closed_at: dt.datetime | None


def proposals(
    rng: random.Random, scale: Scale, theme_ids: dict[str, int], district_ids: list[int]
) -> tuple[list[dict], list[dict], list[dict], list[SeededProposal]]:
    rows, changes, fts, seeded = [], [], [], []
    statuses, weights = zip(*STATUS_WEIGHTS.items(), strict=True)
    slugs = list(theme_ids)
    lat0, lon0, lat1, lon1 = (float(x) for x in Settings().map_bbox.split(","))
    for pid in range(1, scale.proposals + 1):
        slug = slugs[pid % len(slugs)] if pid <= len(slugs) else rng.choice(slugs)
        status = rng.choices(statuses, weights)[0] if pid > 20 else "published"
        noun, place = rng.choice(THEME_NOUNS[slug]), rng.choice(PLACES)
        title = f"{rng.choice(INTROS)} {noun} {place}"
        summary = f"{noun} {place}: {rng.choice(SENTENCES)}"
        paragraphs = [" ".join(rng.sample(SENTENCES, rng.randint(2, 4))) for _ in range(rng.randint(2, 5))]
        if rng.random() < 0.3:
            paragraphs.append("\n".join(f"- {s}" for s in rng.sample(SENTENCES, 3)))
        body = "\n\n".join(paragraphs)
        created = _when(rng, END - dt.timedelta(days=SPAN_DAYS), END - dt.timedelta(days=2))
        at = created + dt.timedelta(minutes=rng.randint(5, 600))
        stamps: dict[str, dt.datetime] = {}
        prev = "draft"
        for step in PATHS[status]:
            stamps[step] = at
            changes.append(
                {
                    "proposal_id": pid,
                    "from_status": prev,
                    "to_status": step,
                    "reason": rng.choice(REJECTIONS) if step == "rejected" else "",
                    "actor_id": None,
                    "at": at,
                }
            )
            prev = step
            at = min(END, at + dt.timedelta(days=rng.randint(3, 90)))
        closed = next((stamps[s] for s in stamps if s not in OPEN_FOR_COMMENTS and s != "published"), None)
        has_place = rng.random() < 0.5
        rows.append(
            {
                "id": pid,
                "author_id": rng.randint(1, scale.users),
                "theme_id": theme_ids[slug],
                "district_id": rng.choice(district_ids) if rng.random() < 0.85 else None,
                "title": title,
                "summary": summary,
                "body_md": body,
                "body_html": render_markdown(body),
                "address": place.split(" ", 1)[1] if has_place else "",
                "lat": round(rng.uniform(lat0, lat1), 5) if has_place else None,
                "lon": round(rng.uniform(lon0, lon1), 5) if has_place else None,
                "cost_cents": rng.randint(500, 2_000_000) * 100 if rng.random() < 0.6 else None,
                "status": status,
                "status_reason": changes[-1]["reason"] if status == "rejected" else "",
                "version": 1,
                "support_count": 0,
                "comment_count": 0,
                "created_at": created,
                "updated_at": max([created, *stamps.values()]),
                "published_at": stamps.get("published"),
                "review_requested_at": stamps.get("under_review"),
                "decided_at": stamps.get("accepted") or stamps.get("rejected"),
                "implemented_at": stamps.get("implemented"),
                "withdrawn_at": stamps.get("withdrawn"),
                "comments_locked_at": closed,
            }
        )
        fts.append(
            {
                "id": pid,
                "title": " ".join(stemmed(w) for w in title.split(" ")),
                "summary": " ".join(stemmed(s) for s in summary.split(" ")),
                "body": " ".join(stemmed(s) for s in body.split(" ")),
            }
        )
        seeded.append(SeededProposal(pid, status, stamps.get("published"), closed))
    return rows, changes, fts, seeded


def comments(
    rng: random.Random, scale: Scale, targets: list[SeededProposal]
) -> tuple[list[dict], dict[int, int]]:
    """Comments with threads: ``scale.hot`` proposals get 100–400 each, the rest follow a long tail."""
    hot = rng.sample(targets, min(scale.hot, len(targets)))
    per: dict[int, int] = {p.id: rng.randint(100, 400) for p in hot}
    remaining = max(0, scale.comments - sum(per.values()))
    if remaining and len(targets) > len(hot):
        others = [p for p in targets if p.id not in per]
        weights = [rng.lognormvariate(0, 1.3) for _ in others]
        for p in rng.choices(others, weights, k=remaining):
            per[p.id] = per.get(p.id, 0) + 1
    by_id = {p.id: p for p in targets}
    rows: list[dict] = []
    counts: dict[int, int] = {}
    cid = 0
    for pid in sorted(per):
        p = by_id[pid]
        assert p.published_at is not None
        until = p.closed_at or END
        times = sorted(_when(rng, p.published_at, until) for _ in range(per[pid]))
        thread: list[dict] = []
        for created in times:
            cid += 1
            parent = rng.choice(thread) if thread and rng.random() < 0.45 else None
            if parent is not None and parent["depth"] >= MAX_DEPTH:
                depth, parent_id = MAX_DEPTH, parent["parent_id"]
            else:
                depth, parent_id = (parent["depth"] + 1, parent["id"]) if parent else (0, None)
            deleted = rng.random() < 0.02
            body = " ".join(rng.sample(COMMENTS, rng.randint(1, 3)))
            up = int(rng.expovariate(0.5))
            down = int(rng.expovariate(1.5))
            row = {
                "id": cid,
                "proposal_id": pid,
                "author_id": rng.randint(1, scale.users),
                "parent_id": parent_id,
                "depth": depth,
                "body_md": "" if deleted else body,
                "body_html": "" if deleted else f"<p>{html.escape(body, quote=False)}</p>",
                "score": up - down,
                "upvotes": up,
                "downvotes": down,
                "created_at": created,
                "edited_at": created + dt.timedelta(minutes=rng.randint(1, 14))
                if rng.random() < 0.05
                else None,
                "deleted_at": created + dt.timedelta(hours=rng.randint(1, 48)) if deleted else None,
            }
            thread.append(row)
            rows.append(row)
            if not deleted:
                counts[pid] = counts.get(pid, 0) + 1
    return rows, counts


def supports(
    rng: random.Random, scale: Scale, targets: list[SeededProposal]
) -> tuple[list[dict], dict[int, int]]:
    weights = [rng.lognormvariate(0, 1.5) for _ in targets]
    per: dict[int, int] = {}
    for p in rng.choices(targets, weights, k=scale.supports):
        per[p.id] = min(scale.users, per.get(p.id, 0) + 1)
    by_id = {p.id: p for p in targets}
    rows = []
    for pid in sorted(per):
        p = by_id[pid]
        assert p.published_at is not None
        until = p.closed_at or END
        for uid in rng.sample(range(1, scale.users + 1), per[pid]):
            rows.append({"proposal_id": pid, "user_id": uid, "created_at": _when(rng, p.published_at, until)})
    return rows, {pid: n for pid, n in per.items()}


# --- the run ------------------------------------------------------------------------------------------


def _reset_sequences(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as conn:
        for table in ("user", "proposal", "comment"):
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), (SELECT max(id) FROM \"{table}\"))"
                )
            )


def seed(database_url: str, *, factor: float = 1.0, rng_seed: int = 42, log=print) -> Report:
    """Migrate the fresh database at ``database_url`` and fill it; returns counts and timings."""
    report = Report()
    scale = Scale().scaled(factor) if factor != 1.0 else Scale()
    rng = random.Random(rng_seed)
    started = time.perf_counter()

    def step(name: str, t0: float) -> None:
        report.seconds[name] = round(time.perf_counter() - t0, 2)
        log(f"  {name:<16} {report.counts.get(name, 0):>8} rows  {report.seconds[name]:6.1f} s")

    upgrade(database_url)
    engine = make_engine(Settings(environment="development", database_url=database_url))
    try:
        with engine.connect() as conn:
            if conn.execute(select(func.count()).select_from(Proposal)).scalar_one():
                raise SystemExit("error: the database already has proposals; bench/seed.py needs a fresh one")
            theme_ids = dict(conn.execute(select(Theme.slug, Theme.id).order_by(Theme.position)).all())
            district_ids = list(conn.execute(select(District.id).order_by(District.position)).scalars())

        t0 = time.perf_counter()
        report.counts["users"] = _insert(engine, User.__table__, users(rng, scale, hash_password(PASSWORD)))
        step("users", t0)

        t0 = time.perf_counter()
        prows, changes, fts, seeded = proposals(rng, scale, theme_ids, district_ids)
        public = [p for p in seeded if p.published_at is not None]
        crows, comment_counts = comments(rng, scale, public)
        srows, support_counts = supports(rng, scale, public)
        for row in prows:
            row["comment_count"] = comment_counts.get(row["id"], 0)
            row["support_count"] = support_counts.get(row["id"], 0)
        report.seconds["generate"] = round(time.perf_counter() - t0, 2)
        log(f"  {'generate':<16} {'':>8}       {report.seconds['generate']:6.1f} s")

        t0 = time.perf_counter()
        report.counts["proposals"] = _insert(engine, Proposal.__table__, prows)
        report.counts["status changes"] = _insert(engine, ProposalStatusChange.__table__, changes)
        follows = [
            {"proposal_id": r["id"], "user_id": r["author_id"], "created_at": r["created_at"]} for r in prows
        ]
        report.counts["follows"] = _insert(engine, Follow.__table__, follows)
        if engine.dialect.name == "sqlite":
            with engine.begin() as conn:
                for batch in _batches(fts):
                    conn.execute(
                        text(
                            "INSERT INTO proposal_search (rowid, title, summary, body) "
                            "VALUES (:id, :title, :summary, :body)"
                        ),
                        batch,
                    )
        step("proposals", t0)

        t0 = time.perf_counter()
        report.counts["comments"] = _insert(engine, Comment.__table__, crows)
        step("comments", t0)
        t0 = time.perf_counter()
        report.counts["supports"] = _insert(engine, Support.__table__, srows)
        step("supports", t0)

        t0 = time.perf_counter()
        _reset_sequences(engine)
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        step("analyze", t0)
    finally:
        engine.dispose()
    report.seconds["total"] = round(time.perf_counter() - started, 2)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url", default=os.environ.get("DATABASE_URL", ""), help="default: $DATABASE_URL"
    )
    parser.add_argument("--seed", type=int, default=42, help="RNG seed (default 42)")
    parser.add_argument("--scale", type=float, default=1.0, help="size factor, e.g. 0.01 for a quick run")
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("give --database-url or set DATABASE_URL (a fresh database)")
    if not 0 < args.scale <= 10:
        parser.error("--scale must be in (0, 10]")
    print(f"seeding {args.database_url.split('@')[-1]} (scale {args.scale}, seed {args.seed})")
    report = seed(args.database_url, factor=args.scale, rng_seed=args.seed)
    print(
        f"done in {report.seconds['total']:.1f} s: " + ", ".join(f"{n} {k}" for k, n in report.counts.items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
