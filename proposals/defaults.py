"""Wuppertal's configuration data: the nine theme areas and the ten city districts.

Loaded by a data migration and by ``mitmachen demo``; a city edits them in the admin area."""

THEMES = [
    (
        "gesellschaft-engagement",
        "Gesellschaft und Engagement",
        "Society and civic engagement",
        "Nachbarschaft, Ehrenamt, Vereine und Zusammenhalt in der Stadt.",
        "Neighbourhoods, volunteering, associations and community life.",
    ),
    (
        "bildung-kultur",
        "Bildung und Kultur",
        "Education and culture",
        "Schulen, Bibliotheken, Museen, Theater und kulturelle Angebote.",
        "Schools, libraries, museums, theatres and cultural life.",
    ),
    (
        "wirtschaft-einzelhandel",
        "Wirtschaft und Einzelhandel",
        "Economy and retail",
        "Innenstädte, lokale Geschäfte, Gründungen und Arbeit.",
        "Town centres, local shops, start-ups and work.",
    ),
    (
        "mobilitaet-verkehr",
        "Mobilität und Verkehr",
        "Mobility and transport",
        "Bus, Schwebebahn, Radwege, Fußwege und Parken.",
        "Buses, the suspension railway, cycle paths, footpaths and parking.",
    ),
    (
        "sicherheit-vertrauen",
        "Sicherheit und Vertrauen",
        "Safety and trust",
        "Sichere Wege, Beleuchtung, Prävention und Vertrauen in die Verwaltung.",
        "Safe routes, lighting, prevention and trust in the administration.",
    ),
    (
        "energie-umwelt",
        "Energie und Umwelt",
        "Energy and environment",
        "Klimaschutz, Grünflächen, Energie, Wasser und Sauberkeit.",
        "Climate action, green spaces, energy, water and clean streets.",
    ),
    (
        "jugend-familie",
        "Jugend und Familie",
        "Youth and family",
        "Spielplätze, Kitas, Jugendtreffs und Angebote für Familien.",
        "Playgrounds, day care, youth centres and services for families.",
    ),
    (
        "it-infrastruktur-netze",
        "IT-Infrastruktur und Netze",
        "IT infrastructure and networks",
        "Breitband, WLAN, digitale Verwaltung und offene Daten.",
        "Broadband, public Wi-Fi, digital services and open data.",
    ),
    (
        "gesundheit-pflege",
        "Gesundheit und Pflege",
        "Health and care",
        "Gesundheitsversorgung, Pflege, Barrierefreiheit und Sport.",
        "Health services, care, accessibility and sport.",
    ),
]

DISTRICTS = [
    ("elberfeld", "Elberfeld"),
    ("elberfeld-west", "Elberfeld-West"),
    ("uellendahl-katernberg", "Uellendahl-Katernberg"),
    ("vohwinkel", "Vohwinkel"),
    ("cronenberg", "Cronenberg"),
    ("barmen", "Barmen"),
    ("oberbarmen", "Oberbarmen"),
    ("heckinghausen", "Heckinghausen"),
    ("langerfeld-beyenburg", "Langerfeld-Beyenburg"),
    ("ronsdorf", "Ronsdorf"),
]
