"""The record of processing activities (Art. 30 GDPR, "Verzeichnis von Verarbeitungstätigkeiten") as data.

One entry per activity; texts are translatable msgids; retention periods that a setting controls are read
from the running configuration, so the page says what the platform really does. The municipality (the
controller) completes the entries with its own names (data-protection officer, processors) in its privacy
notice; this list is what the software processes."""

from __future__ import annotations

from dataclasses import dataclass

from app.i18n import gettext as _
from app.i18n import lazy
from app.settings import Settings

PUBLIC_TASK = lazy("Art. 6(1)(e) GDPR with the municipal code (public task: participation of residents)")
CONSENT = lazy("Art. 6(1)(a) GDPR (consent, can be withdrawn at any time)")
LEGAL_DUTY = lazy("Art. 6(1)(c) GDPR (legal obligation)")


@dataclass(frozen=True)
class Activity:
    key: str
    name: str
    purpose: str
    legal_basis: list[str]
    data: str
    subjects: str
    recipients: str
    retention: str
    measures: str


def activities(settings: Settings) -> list[Activity]:
    idle_h = settings.session_idle_minutes / 60
    sessions = _(
        "Sessions end after %(idle)s hours without activity and after %(days)s days at the latest; "
        "confirmation links are valid for %(hours)s hours, password reset links for %(minutes)s minutes.",
        idle=f"{idle_h:g}",
        days=f"{settings.session_absolute_hours / 24:g}",
        hours=settings.email_token_hours,
        minutes=settings.reset_token_minutes,
    )
    deleted = (
        _("their proposals and comments are removed (comments stay as placeholders)")
        if settings.deleted_content == "remove"
        else _("their proposals and comments stay, shown under \u201cdeleted account\u201d")
    )
    return [
        Activity(
            "accounts",
            _("User accounts and sign-in"),
            _("Letting residents take part with an account; securing the accounts."),
            [_(PUBLIC_TASK)],
            _(
                "E-mail address, display name, password hash, language, city district, role, sign-in "
                "sessions (device description, times), sign-in identities and second factors where used."
            ),
            _("Registered residents, moderators, council staff, administrators"),
            _("Nobody outside the platform; the hosting provider as processor."),
            _("Until the account is deleted by its owner; then %(what)s.", what=deleted) + " " + sessions,
            _(
                "Passwords hashed with Argon2id; revocable server-side sessions; rate limits; second factor "
                "for staff roles; encrypted transport (HTTPS); self-service export and deletion."
            ),
        ),
        Activity(
            "contributions",
            _("Proposals and comments"),
            _("Publishing residents' proposals and the discussion about them."),
            [_(PUBLIC_TASK)],
            _(
                "Texts, places (address, map point), attachments, time stamps, the author's display name "
                "(shown in open data only with consent)."
            ),
            _("Residents who contribute"),
            _("The public (published contributions); council staff for review; open-data users."),
            _("As long as the proposal is part of the process; on account deletion %(what)s.", what=deleted),
            _("Sanitised rendering, moderation, version history, visibility rules for hidden content."),
        ),
        Activity(
            "supports",
            _("Supports and follows"),
            _("Counting support for proposals; notifying followers."),
            [_(PUBLIC_TASK)],
            _("Which account supports or follows which proposal; notification settings."),
            _("Registered residents"),
            _("Only the counts are public."),
            _("Supports stay counted without a name after account deletion; follows are deleted with it."),
            _("Only aggregated counts are shown; unique per account and proposal."),
        ),
        Activity(
            "voting",
            _("Participatory-budget votes"),
            _("Secret, verifiable votes on budget projects; the published result."),
            [_(PUBLIC_TASK)],
            _(
                "Ballots under a random identifier without the voter's name; a keyed hash linking voter and "
                "ballot (one ballot per person); eligibility attributes (district, verified age)."
            ),
            _("Eligible residents who vote"),
            _("The public: anonymous ballots in the audit log and the result; nobody sees who voted what."),
            _(
                "Ballots are kept with the result (public audit log). The voter links are destroyed after the "
                "final result, or when the voter deletes the account."
            ),
            _("Secret ballot by design; signed append-only audit log; two-person entry of paper ballots."),
        ),
        Activity(
            "moderation",
            _("Moderation"),
            _("Enforcing the community rules and the law (reports, decisions, appeals)."),
            [_(PUBLIC_TASK), _(LEGAL_DUTY) + " " + _("(Digital Services Act: statements of reasons)")],
            _("Reports (reporter, reason), decisions with statements of reasons, appeals, suspensions."),
            _("Authors of reported content, reporters, moderators"),
            _("The affected author (statement of reasons); aggregated numbers in the transparency report."),
            _("As long as the content exists and the appeal period runs; aggregated counts indefinitely."),
            _(
                "Reports from visitors stored under a keyed hash of the address; review by a second moderator."
            ),
        ),
        Activity(
            "verification",
            _("Resident verification"),
            _("Checking that a participant lives in the city and may vote (age, district)."),
            [
                _(PUBLIC_TASK),
                _(CONSENT) + " " + _("for verification through an external identity service"),
            ],
            _("Date or year of birth, postal code, method and time of the verification."),
            _("Residents who verify themselves"),
            _("The chosen identity service (e.g. eID) as source; nobody else."),
            _("Until the account is deleted; then removed."),
            _("Only the attributes needed for eligibility are stored."),
        ),
        Activity(
            "mail",
            _("E-mail"),
            _("Confirmations, password resets, notifications and digests the recipient asked for."),
            [_(PUBLIC_TASK), _(CONSENT) + " " + _("for notifications")],
            _("E-mail address, display name, message content."),
            _("Account holders"),
            _("The mail provider as processor."),
            _("Sent messages are not kept beyond delivery retries."),
            _("Transport encryption to the mail server where configured; rate limits on mails."),
        ),
        Activity(
            "logs",
            _("Server logs and abuse protection"),
            _("Operating the service securely; finding faults; stopping abuse."),
            [_(PUBLIC_TASK), _("Art. 6(1)(c) and Art. 32 GDPR (security of processing)")],
            _(
                "IP address in rate-limit counters, request logs without form content, account ids of staff actions."
            ),
            _("All visitors"),
            _("Nobody outside the operator."),
            _(
                "Rate-limit counters at most one day; request logs as the operator's log rotation sets "
                "(docs/operations.md); backups as docs/operations-data.md describes."
            ),
            _("No secrets or form content in logs; logs and backups readable by the operator only."),
        ),
    ]
