"""Default moderation grounds: the community rules' sections and the legal grounds a German municipality
meets most. Seeded by migration 0006 and by ``mitmachen demo``; admins edit them in the admin area."""

DEFAULT_GROUNDS = [
    (
        "rules-respect",
        "Gemeinschaftsregeln: Respektvoller Umgang",
        "Community rules: respectful conduct",
        "community-rule",
    ),
    (
        "rules-topic",
        "Gemeinschaftsregeln: Beim Thema bleiben",
        "Community rules: stay on topic",
        "community-rule",
    ),
    (
        "rules-spam",
        "Gemeinschaftsregeln: Keine Werbung und kein Spam",
        "Community rules: no advertising or spam",
        "community-rule",
    ),
    (
        "rules-duplicate",
        "Gemeinschaftsregeln: Keine doppelten Vorschläge",
        "Community rules: no duplicate proposals",
        "community-rule",
    ),
    (
        "rules-privacy",
        "Gemeinschaftsregeln: Privatsphäre Dritter achten",
        "Community rules: respect others' privacy",
        "community-rule",
    ),
    (
        "stgb-130",
        "§ 130 StGB Volksverhetzung",
        "Section 130 German Criminal Code (incitement to hatred)",
        "legal",
    ),
    ("stgb-185", "§ 185 StGB Beleidigung", "Section 185 German Criminal Code (insult)", "legal"),
    ("stgb-186", "§ 186 StGB Üble Nachrede", "Section 186 German Criminal Code (defamation)", "legal"),
    (
        "stgb-86a",
        "§ 86a StGB Verwenden von Kennzeichen verfassungswidriger Organisationen",
        "Section 86a German Criminal Code (symbols of unconstitutional organisations)",
        "legal",
    ),
    (
        "dsgvo",
        "DSGVO: Veröffentlichung personenbezogener Daten",
        "GDPR: publication of personal data",
        "legal",
    ),
    ("urhg", "UrhG: Urheberrechtsverletzung", "Copyright infringement (UrhG)", "legal"),
]
