"""Default configurable pages (imprint, privacy, rules); edited by an admin."""

PAGES = [
    (
        "impressum",
        "Impressum",
        "Imprint",
        "Angaben gemäß § 5 DDG. Bitte im Verwaltungsbereich mit den Daten der Stadt ausfüllen.",
        "Legal notice. Please fill in the city's details in the administration area.",
    ),
    (
        "datenschutz",
        "Datenschutz",
        "Privacy",
        "Hinweise zur Verarbeitung personenbezogener Daten nach Art. 13 DSGVO. "
        "Bitte im Verwaltungsbereich ergänzen.",
        "Information on the processing of personal data under Art. 13 GDPR. "
        "Please complete it in the administration area.",
    ),
    (
        "regeln",
        "Community-Regeln",
        "Community rules",
        "Wir diskutieren respektvoll und sachlich, ohne Beleidigungen, Werbung "
        "oder persönliche Daten Dritter.",
        "We discuss respectfully and to the point, without insults, advertising "
        "or other people's personal data.",
    ),
]
