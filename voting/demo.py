"""Idempotent demo: the budget vote "Bürgerbudget Wuppertal 2027" in its voting phase, with fifteen
projects across the theme areas, sub-budgets for Elberfeld and Barmen, and a few ballots of the demo
accounts. Nothing in production or without settings (the test database's configuration load)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlmodel import Session

from app.database import utcnow
from app.models import User
from app.sanitize import render_markdown
from voting import ballots, lifecycle
from voting.models import DistrictBudget, Process, Project

SLUG = "buergerbudget-wuppertal-2027"
TITLE = "Bürgerbudget Wuppertal 2027"
DESCRIPTION = (
    "Wuppertal stellt **500.000 Euro** für Projekte aus der Bürgerschaft bereit, dazu je **80.000 Euro** "
    "für Elberfeld und Barmen. Wählen Sie die Projekte, die die Stadt umsetzen soll: Zusammen dürfen sie "
    "das Budget nicht überschreiten. Sie können Ihre Stimme bis zum Ende der Abstimmung ändern.\n\n"
    "Gezählt wird mit der *Methode der gleichen Anteile* (Method of Equal Shares)."
)
# (theme slug, district slug or None for city-wide, title, description, cost in euros)
PROJECTS = [
    (
        "mobilitaet-verkehr",
        None,
        "Sichere Radwege an der Talachse",
        "Baulich getrennte Radwege entlang der B7 zwischen Elberfeld und Barmen, mit sicheren Kreuzungen.",
        180_000,
    ),
    (
        "energie-umwelt",
        None,
        "Hundert neue Stadtbäume",
        "Schattenspendende Bäume in besonders heißen Straßen, mit drei Jahren Pflege.",
        120_000,
    ),
    (
        "jugend-familie",
        None,
        "Spielplatz-Offensive",
        "Fünf Spielplätze werden modernisiert und barrierefrei.",
        95_000,
    ),
    (
        "bildung-kultur",
        None,
        "Bibliothek am Abend",
        "Die Stadtbibliothek öffnet an zwei Abenden pro Woche bis 22 Uhr.",
        60_000,
    ),
    (
        "gesellschaft-engagement",
        None,
        "Nachbarschaftsfonds",
        "Kleine Zuschüsse für Straßenfeste, Repair-Cafés und Nachbarschaftsgärten.",
        40_000,
    ),
    (
        "sicherheit-vertrauen",
        None,
        "Helle Wege zur Schwebebahn",
        "Bessere Beleuchtung an den Zugängen von zehn Schwebebahnhaltestellen.",
        75_000,
    ),
    (
        "it-infrastruktur-netze",
        None,
        "Freies WLAN in Stadtteilzentren",
        "Öffentliches WLAN an acht Plätzen in den Stadtteilzentren.",
        55_000,
    ),
    (
        "gesundheit-pflege",
        None,
        "Trinkbrunnen in der Innenstadt",
        "Sechs Trinkbrunnen für heiße Sommertage.",
        48_000,
    ),
    (
        "wirtschaft-einzelhandel",
        None,
        "Leerstand auf Zeit",
        "Leere Läden werden für ein Jahr günstig an Start-ups und Kulturinitiativen vermietet.",
        70_000,
    ),
    (
        "energie-umwelt",
        "elberfeld",
        "Grüne Oase am Laurentiusplatz",
        "Hochbeete, Sitzplätze und Schatten auf dem Laurentiusplatz.",
        35_000,
    ),
    (
        "mobilitaet-verkehr",
        "elberfeld",
        "Fahrradbügel am Hauptbahnhof",
        "200 überdachte Fahrradstellplätze am Döppersberg.",
        30_000,
    ),
    (
        "jugend-familie",
        "elberfeld",
        "Jugendtreff Ölberg",
        "Renovierung und Ausstattung des Jugendtreffs am Ölberg.",
        25_000,
    ),
    (
        "bildung-kultur",
        "barmen",
        "Kultur im Werth",
        "Eine Sommerbühne mit freiem Programm in der Fußgängerzone.",
        28_000,
    ),
    (
        "gesundheit-pflege",
        "barmen",
        "Bewegungsparcours in den Barmer Anlagen",
        "Outdoor-Fitnessgeräte für alle Generationen.",
        32_000,
    ),
    (
        "gesellschaft-engagement",
        "barmen",
        "Stadtteilküche Wichlinghausen",
        "Eine Gemeinschaftsküche für Kochkurse und Nachbarschaftsessen.",
        22_000,
    ),
]
DISTRICT_BUDGETS = {"elberfeld": 80_000, "barmen": 80_000}
# demo voters (from the core and proposals demos) and the project titles they choose
DEMO_BALLOTS = {
    "resident@example.org": (["Hundert neue Stadtbäume", "Spielplatz-Offensive", "Bibliothek am Abend"], []),
    "demo-anna@example.org": (
        ["Sichere Radwege an der Talachse", "Hundert neue Stadtbäume"],
        ["Fahrradbügel am Hauptbahnhof"],
    ),
    "demo-bernd@example.org": (
        ["Helle Wege zur Schwebebahn", "Trinkbrunnen in der Innenstadt", "Nachbarschaftsfonds"],
        [],
    ),
    "demo-cem@example.org": (
        ["Freies WLAN in Stadtteilzentren", "Leerstand auf Zeit", "Spielplatz-Offensive"],
        ["Kultur im Werth"],
    ),
}
DEMO_DISTRICTS = {"demo-anna@example.org": "elberfeld", "demo-cem@example.org": "barmen"}


def load(db: Session, settings) -> list[str]:
    """Create the demo vote once (matched by slug) and cast the demo ballots."""
    if settings is None or settings.is_production:
        return []
    if db.execute(select(Process.id).where(Process.slug == SLUG)).first() is not None:
        return []
    from proposals import services as proposal_services

    db.flush()
    themes = {t.slug: t.id for t in proposal_services.themes(db, include_inactive=True)}
    districts = {d.slug: d.id for d in proposal_services.districts(db, include_inactive=True)}
    if not all(slug in districts for slug in DISTRICT_BUDGETS):
        return []
    now = utcnow()
    process = Process(
        slug=SLUG,
        title=TITLE,
        description_md=DESCRIPTION,
        description_html=render_markdown(DESCRIPTION),
        budget_cents=500_000_00,
        ballot_type="knapsack",
        rule="mes-add1-greedy",
        has_district_ballots=True,
        ideas_starts_at=now - dt.timedelta(days=120),
        review_starts_at=now - dt.timedelta(days=60),
        voting_starts_at=now - dt.timedelta(days=3),
        voting_ends_at=now + dt.timedelta(days=25),
        results_at=now + dt.timedelta(days=32),
    )
    db.add(process)
    db.flush()
    for slug, euros in DISTRICT_BUDGETS.items():
        db.add(DistrictBudget(process_id=process.id, district_id=districts[slug], budget_cents=euros * 100))
    for position, (theme, district, title, text, euros) in enumerate(PROJECTS):
        db.add(
            Project(
                process_id=process.id,
                title=title,
                description_md=text,
                description_html=render_markdown(text),
                cost_cents=euros * 100,
                theme_id=themes.get(theme),
                district_id=districts[district] if district else None,
                position=position,
            )
        )
    db.flush()
    lifecycle.open_voting(db, process=process, now=now)
    done = [f"process {SLUG}", f"{len(PROJECTS)} projects"]
    done += _demo_ballots(db, settings, process, districts)
    return done


def _demo_ballots(db: Session, settings, process: Process, districts: dict[str, int]) -> list[str]:
    ids = {p.title: p.id for s in lifecycle.scopes(db, process) for p in s.projects}
    done = []
    for email, (city, local) in DEMO_BALLOTS.items():
        user = db.execute(select(User).where(User.email == email)).scalar_one_or_none()
        if user is None:
            continue
        if email in DEMO_DISTRICTS and user.district_id is None:
            user.district_id = districts[DEMO_DISTRICTS[email]]
            db.add(user)
            db.flush()
        choices = [(0, city)]
        if local and user.district_id is not None:
            choices.append((user.district_id, local))
        for scope, titles in choices:
            ballots.cast_ballot(
                db=db,
                secret_key=settings.secret_key,
                process=process,
                voter=user,
                scope=scope,
                selection=[ids[t] for t in titles],
            )
            done.append(f"ballot {scope}")
    return done
