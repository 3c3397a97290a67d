"""Idempotent demo and configuration data: theme areas and districts always; outside production also
demo proposals across all nine theme areas with supports and a few status changes (comments are added
by the comment module's own demo loader)."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session

from app.database import utcnow
from app.models import Role, User
from proposals.defaults import DISTRICTS, THEMES
from proposals.models import District, Proposal, Theme


def load(db: Session, settings) -> list[str]:
    """Configuration data, plus demo proposals when called with development settings."""
    done = load_themes_and_districts(db)
    if settings is not None and not settings.is_production:
        db.flush()
        done += load_proposals(db, settings)
    return done


def load_themes_and_districts(db: Session) -> list[str]:
    """Insert the default theme areas and districts that are missing (matched by slug)."""
    done: list[str] = []
    have = set(db.execute(select(Theme.slug)).scalars())
    for pos, (slug, de, en, desc_de, desc_en) in enumerate(THEMES):
        if slug not in have:
            db.add(
                Theme(
                    slug=slug,
                    name_de=de,
                    name_en=en,
                    description_de=desc_de,
                    description_en=desc_en,
                    position=pos,
                )
            )
            done.append(f"theme {slug}")
    have = set(db.execute(select(District.slug)).scalars())
    for pos, (slug, name) in enumerate(DISTRICTS):
        if slug not in have:
            db.add(District(slug=slug, name=name, position=pos))
            done.append(f"district {slug}")
    return done


# --- demo proposals ---------------------------------------------------------------------------------------

# The core's demo accounts (app/demo.py) lend their names to the demo supports.
DEMO_SUPPORTERS = [
    ("moderator@example.org", "Mona Moderation", Role.MODERATOR),
    ("admin@example.org", "Ada Admin", Role.ADMIN),
    ("staff@example.org", "Stefan Stadtverwaltung", Role.STAFF),
]
# (theme slug, district slug, title, summary, body, cost in euros, address, (lat, lon), status, supporters)
DEMO_PROPOSALS = [
    (
        "mobilitaet-verkehr",
        "elberfeld",
        "Sichere Fahrradwege an der Friedrich-Ebert-Straße",
        "Ein durchgehender, baulich getrennter Radweg zwischen Robert-Daum-Platz und Döppersberg.",
        "Der Radverkehr teilt sich die Straße mit Bussen und Lieferverkehr.\n\n"
        "## Vorschlag\n\n- Protected Bike Lane auf beiden Seiten\n- Sichere Kreuzungen\n- Abstellanlagen",
        850_000,
        "Friedrich-Ebert-Straße",
        (51.2553, 7.1389),
        "under_review",
        3,
    ),
    (
        "energie-umwelt",
        "barmen",
        "Mehr Bäume auf dem Werth",
        "Schattenspendende Bäume und Sitzplätze für die Fußgängerzone in Barmen.",
        "Im Sommer heizt sich der Werth stark auf. **Zwölf neue Stadtbäume** würden helfen.",
        120_000,
        "Werth, Barmen",
        (51.2721, 7.1985),
        "published",
        3,
    ),
    (
        "jugend-familie",
        "vohwinkel",
        "Neuer Spielplatz am Lienhardplatz",
        "Der alte Spielplatz ist gesperrt; Familien im Viertel brauchen einen Ersatz.",
        "Wir wünschen uns Spielgeräte für Kleinkinder *und* Schulkinder, dazu Bänke im Schatten.",
        95_000,
        "Lienhardplatz",
        (51.2335, 7.0668),
        "accepted",
        3,
    ),
    (
        "bildung-kultur",
        "elberfeld-west",
        "Längere Öffnungszeiten der Stadtbibliothek",
        "Die Zentralbibliothek soll samstags bis 18 Uhr geöffnet sein.",
        "Viele Berufstätige und Studierende können nur am Wochenende kommen.",
        None,
        "",
        None,
        "published",
        3,
    ),
    (
        "gesellschaft-engagement",
        "oberbarmen",
        "Nachbarschaftstreff am Berliner Platz",
        "Ein offener Raum für Vereine, Initiativen und Nachbarinnen.",
        "Leerstehende Ladenlokale könnten als Treffpunkt dienen. Träger könnten Vereine sein.",
        40_000,
        "Berliner Platz",
        (51.2715, 7.2245),
        "published",
        2,
    ),
    (
        "wirtschaft-einzelhandel",
        "elberfeld",
        "Wochenmarkt auch am Abend",
        "Ein Feierabendmarkt einmal im Monat auf dem Laurentiusplatz.",
        "Regionale Erzeuger, Streetfood und Musik beleben die Innenstadt nach Ladenschluss.",
        15_000,
        "Laurentiusplatz",
        None,
        "rejected",
        1,
    ),
    (
        "sicherheit-vertrauen",
        "heckinghausen",
        "Bessere Beleuchtung am Bahnhof Heckinghausen",
        "Der Weg vom Bahnhof zur Bushaltestelle ist nachts sehr dunkel.",
        "Mehr Laternen und ein Rückschnitt der Hecken würden den Weg sicherer machen.",
        30_000,
        "Bahnhof Heckinghausen",
        None,
        "implemented",
        3,
    ),
    (
        "it-infrastruktur-netze",
        None,
        "Freies WLAN in allen Bürgerbüros",
        "Wartende sollen in den Bürgerbüros kostenloses WLAN nutzen können.",
        "Viele Anträge brauchen Unterlagen vom Smartphone; ein offenes Netz würde helfen.",
        25_000,
        "",
        None,
        "published",
        2,
    ),
    (
        "gesundheit-pflege",
        "ronsdorf",
        "Barrierefreier Zugang zum Ronsdorfer Bad",
        "Eine Rampe und ein Lift am Eingang des Hallenbads.",
        "Menschen im Rollstuhl und mit Rollatoren kommen derzeit nicht ohne Hilfe hinein.",
        210_000,
        "Ronsdorfer Bad",
        None,
        "published",
        3,
    ),
    (
        "mobilitaet-verkehr",
        "cronenberg",
        "Busanbindung Cronenberg am Sonntag",
        "Die Linie 625 soll sonntags im Halbstundentakt fahren.",
        "Sonntags fährt der Bus nur stündlich; Ausflüge in die Stadt sind dadurch schwierig.",
        None,
        "",
        None,
        "draft",
        0,
    ),
]
DECISION_REASONS = {
    "under_review": "Die Verwaltung prüft Kosten und Umsetzbarkeit mit dem Verkehrsressort.",
    "accepted": "Der Bezirksrat hat die Mittel im Haushalt bereitgestellt.",
    "rejected": "Der Laurentiusplatz ist an Abenden bereits durch Veranstaltungen belegt.",
    "implemented": "Sechs neue LED-Laternen wurden im Oktober aufgestellt.",
}
STAFF_PATHS = {
    "under_review": ["under_review"],
    "accepted": ["under_review", "accepted"],
    "rejected": ["under_review", "rejected"],
    "implemented": ["under_review", "accepted", "implemented"],
}


def _demo_user(db: Session, email: str, name: str, role: Role = Role.RESIDENT) -> User:
    user = db.execute(select(User).where(User.email == email)).scalar_one_or_none()
    if user is None:  # normally made by app/demo.py; without a password here (no well-known secret)
        user = User(email=email, display_name=name, role=role.value, email_confirmed_at=utcnow())
        db.add(user)
        db.flush()
    return user


def load_proposals(db: Session, settings) -> list[str]:
    """Demo proposals (matched by title), authored by the demo resident, supported by demo neighbours."""
    from proposals import lifecycle, supports

    author = _demo_user(db, "resident@example.org", "Rita Bürgerin")
    staff = _demo_user(db, "staff@example.org", "Stefan Stadtverwaltung", Role.STAFF)
    neighbours = [_demo_user(db, email, name, role) for email, name, role in DEMO_SUPPORTERS]
    themes = {t.slug: t for t in db.execute(select(Theme)).scalars()}
    districts = {d.slug: d for d in db.execute(select(District)).scalars()}
    have = set(db.execute(select(Proposal.title)).scalars())
    done: list[str] = []
    for theme, district, title, summary, body, euros, address, point, status, n in DEMO_PROPOSALS:
        if title in have or theme not in themes:
            continue
        data = lifecycle.ProposalData(
            title=title,
            summary=summary,
            body=body,
            theme=themes[theme].id,
            district=districts[district].id if district in districts else None,
            address=address,
            lat=point[0] if point else None,
            lon=point[1] if point else None,
            cost=euros * 100 if euros is not None else None,
        )
        proposal = lifecycle.create_proposal(db, author=author, data=data, publish=status != "draft")
        for neighbour in neighbours[:n]:
            supports.support(db, proposal=proposal, user=neighbour, settings=settings)
        for step in STAFF_PATHS.get(status, []):
            lifecycle.change_status(
                db,
                proposal=proposal,
                actor=staff,
                to_status=step,
                reason=DECISION_REASONS[step],
                by_staff=True,
            )
        done.append(f"proposal {title}")
    return done
