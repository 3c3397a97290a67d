"""Who may use which route, with which status: the declared expectations of test_route_matrix.py, written
from the permission table in docs/security.md (never read from the app).

Keys are (method, path template) exactly as in the routing table; values map each role to the statuses
allowed. GET requests the page; POST sends a valid CSRF token and an empty body, so an allowed role usually
gets 400 (the form is incomplete) or 303 (an action without fields), a refused one 403, and anonymous
visitors 303 to the login page. The world behind the ids (tests/attack/conftest.py): the resident wrote the
proposal, the attachment and ``comment`` (on someone else's proposal); ``other`` wrote ``others_comment``;
the moderator hid a comment of the resident (``decision``), which the resident appealed (``appeal``); the
staff member entered the paper ballot (``paper``).

Adding a route: copy the entry of a similar route and adjust the roles. Helpers:
``everyone(s)``, ``signed_in(ok)``, ``only(roles, ok)``.
"""

from __future__ import annotations

ROLES = ("anonymous", "resident", "other", "moderator", "staff", "admin")
LOGIN = 303  # anonymous visitors are sent to /login?next=…
STAFF = ("staff", "admin")
ADMIN = ("admin",)
MODERATORS = ("moderator", "admin")


def _set(value) -> set[int]:
    return set(value) if isinstance(value, (set, tuple, list)) else {value}


def everyone(status) -> dict[str, set[int]]:
    return {role: _set(status) for role in ROLES}


def signed_in(ok, anonymous=LOGIN) -> dict[str, set[int]]:
    return {"anonymous": _set(anonymous), **{role: _set(ok) for role in ROLES[1:]}}


def only(roles, ok, denied=403, anonymous=LOGIN) -> dict[str, set[int]]:
    return {
        role: _set(anonymous) if role == "anonymous" else _set(ok) if role in roles else _set(denied)
        for role in ROLES
    }


def per_role(**statuses) -> dict[str, set[int]]:
    assert set(statuses) == set(ROLES), statuses
    return {role: _set(s) for role, s in statuses.items()}


TABLE: dict[tuple[str, str], dict[str, set[int]]] = {
    # --- operations and accounts
    ("GET", "/healthz"): everyone(200),
    ("GET", "/readyz"): everyone(200),
    ("GET", "/metrics"): everyone(404),  # off unless METRICS_TOKEN is set; never public (ASVS V13.4.5)
    ("GET", "/register"): everyone(200),
    ("POST", "/register"): everyone(400),
    ("GET", "/register/sent"): everyone(200),
    ("GET", "/register/confirm"): everyone(400),  # no token
    ("GET", "/login"): signed_in(303, anonymous=200),  # signed in: on to the start page
    ("POST", "/login"): everyone(400),
    ("POST", "/logout"): everyone(303),
    ("GET", "/password/forgot"): everyone(200),
    ("POST", "/password/forgot"): everyone(400),
    ("GET", "/password/reset"): everyone(400),
    ("POST", "/password/reset"): everyone(400),
    ("GET", "/account"): signed_in(200),
    ("POST", "/account"): signed_in(400),
    ("POST", "/account/password"): signed_in(400),
    ("POST", "/account/sessions/revoke"): signed_in(303),
    ("GET", "/account/delete"): signed_in(200),
    ("POST", "/account/delete"): signed_in(303),  # no password: back to the form with an error
    ("POST", "/language"): everyone(400),
    ("GET", "/account/verify"): signed_in(200),
    # GDPR export: own data only; the download link needs the session and a valid token
    ("GET", "/account/export"): signed_in(200),
    ("POST", "/account/export"): signed_in(400),  # needs the password again
    ("GET", "/account/export/{token:str}"): signed_in(404),
    # re-authentication by a mailed link: only accounts without password and app get one (the world's have one)
    ("POST", "/account/confirm/{purpose:str}"): signed_in(404),
    ("GET", "/account/confirm/{purpose:str}/{token:str}"): signed_in(404),
    ("GET", "/admin/processing"): only(STAFF, 200),  # gdpr.records: records of processing activities
    ("POST", "/account/verify"): signed_in(400),
    # --- sign-in with an identity provider (none configured in tests: unknown keys are 404)
    ("GET", "/login/oidc/connect"): everyone(400),
    ("POST", "/login/oidc/connect"): everyone(400),
    ("GET", "/login/oidc/connect/confirm"): everyone(400),
    ("GET", "/login/oidc/{key}"): everyone(404),
    ("GET", "/login/oidc/{key}/callback"): everyone(404),
    ("GET", "/account/oidc/{key}/link"): everyone(404),
    ("POST", "/account/oidc/unlink"): signed_in(400),
    # --- two-factor (nobody in the world has it: pending-login pages send back, management pages are 404)
    ("GET", "/login/2fa"): everyone(303),
    ("POST", "/login/2fa"): everyone(303),
    ("GET", "/login/2fa/enrol"): everyone(303),
    ("POST", "/login/2fa/enrol"): everyone(303),
    ("GET", "/account/2fa"): signed_in(200),
    ("GET", "/account/2fa/setup"): signed_in(200),
    ("POST", "/account/2fa/setup"): signed_in(400),
    ("GET", "/account/2fa/recovery-codes"): signed_in(404),
    ("POST", "/account/2fa/recovery-codes"): signed_in(404),
    ("GET", "/account/2fa/replace"): signed_in(404),
    ("POST", "/account/2fa/replace"): signed_in(404),
    ("GET", "/account/2fa/disable"): signed_in(404),
    ("POST", "/account/2fa/disable"): signed_in(404),
    ("POST", "/admin/users/{user_id:int}/2fa/reset"): only(ADMIN, 303),
    # --- administration (CVE-2023-36465)
    ("GET", "/admin"): only(STAFF, 200),
    ("GET", "/admin/users"): only(ADMIN, 200),
    ("POST", "/admin/users/{user_id:int}/role"): only(ADMIN, 303),  # no role given: flash error
    ("POST", "/admin/users/{user_id:int}/suspend"): only(ADMIN, 303),
    ("GET", "/admin/pages"): only(ADMIN, 200),
    ("GET", "/admin/pages/{slug:str}"): only(ADMIN, 200),
    ("POST", "/admin/pages/{slug:str}"): only(ADMIN, 400),
    ("GET", "/pages/{slug:str}"): everyone(200),
    ("GET", "/admin/config"): only(ADMIN, 200),
    ("GET", "/admin/themes/new"): only(ADMIN, 200),
    ("POST", "/admin/themes/new"): only(ADMIN, 400),
    ("GET", "/admin/themes/{obj_id:int}"): only(ADMIN, 200),
    ("POST", "/admin/themes/{obj_id:int}"): only(ADMIN, 400),
    ("GET", "/admin/districts/new"): only(ADMIN, 200),
    ("POST", "/admin/districts/new"): only(ADMIN, 400),
    ("GET", "/admin/districts/{obj_id:int}"): only(ADMIN, 200),
    ("POST", "/admin/districts/{obj_id:int}"): only(ADMIN, 400),
    ("GET", "/admin/mail"): only(ADMIN, 200),
    ("POST", "/admin/mail"): only(ADMIN, 400),
    ("POST", "/admin/mail/reset"): only(ADMIN, 303),
    ("POST", "/admin/mail/test"): only(ADMIN, 400),
    ("POST", "/admin/mail/retry"): only(ADMIN, 303),
    ("GET", "/admin/moderation"): only(ADMIN, 200),
    ("POST", "/admin/moderation"): only(ADMIN, 303),  # an empty word list is a valid setting
    ("POST", "/admin/moderation/grounds"): only(ADMIN, 303),
    # --- proposals: the resident is the author of "proposal"
    ("GET", "/"): everyone(200),
    ("GET", "/themes/{slug:str}"): everyone(200),
    ("GET", "/users/{user_id:int}"): everyone(200),
    ("GET", "/proposals"): everyone(200),
    ("GET", "/proposals/new"): signed_in(200),
    ("POST", "/proposals/new"): signed_in(400),
    ("POST", "/proposals/preview"): signed_in(200),
    ("GET", "/proposals/review"): only(STAFF, 200),
    ("GET", "/proposals/{proposal_id:int}"): everyone(200),
    ("GET", "/proposals/{proposal_id:int}/edit"): only(("resident",), 200),
    ("POST", "/proposals/{proposal_id:int}/edit"): only(("resident",), 400),
    ("POST", "/proposals/{proposal_id:int}/publish"): only((), 403),  # already published: nobody
    ("GET", "/proposals/{proposal_id:int}/withdraw"): only(("resident",), 200),
    ("POST", "/proposals/{proposal_id:int}/withdraw"): only(("resident",), 303),
    ("GET", "/proposals/{proposal_id:int}/status"): only(STAFF, 200),
    ("POST", "/proposals/{proposal_id:int}/status"): only(STAFF, 400),
    # supports: everyone signed in except the author
    ("POST", "/proposals/{proposal_id:int}/support"): only(("other", "moderator", "staff", "admin"), 303),
    ("POST", "/proposals/{proposal_id:int}/unsupport"): only(("other", "moderator", "staff", "admin"), 303),
    ("POST", "/proposals/{proposal_id:int}/follow"): signed_in(303),
    ("POST", "/proposals/{proposal_id:int}/unfollow"): signed_in(303),
    ("GET", "/proposals/{proposal_id:int}/attachments/{attachment_id:int}"): everyone(200),
    ("GET", "/proposals/{proposal_id:int}/attachments/{attachment_id:int}/delete"): only(("resident",), 200),
    ("POST", "/proposals/{proposal_id:int}/attachments/{attachment_id:int}/delete"): only((), 403),
    # --- comments: "comment" is the resident's, on someone else's proposal
    ("GET", "/proposals/{proposal_id:int}/comments"): everyone(303),  # no-JS: the section on the page
    ("POST", "/proposals/{proposal_id:int}/comments"): signed_in(400),  # the author may answer too
    ("GET", "/comments/{comment_id:int}"): everyone(303),
    ("GET", "/comments/{comment_id:int}/reply"): signed_in(200),
    ("GET", "/comments/{comment_id:int}/edit"): only(("resident",), 200),
    ("POST", "/comments/{comment_id:int}/edit"): only(("resident",), 400),
    ("GET", "/comments/{comment_id:int}/delete"): only(("resident",), 200),
    ("POST", "/comments/{comment_id:int}/delete"): only(("resident",), 303),
    ("POST", "/comments/{comment_id:int}/vote"): only(("other", "moderator", "staff", "admin"), 400),
    ("POST", "/comments/{comment_id:int}/unvote"): only(("other", "moderator", "staff", "admin"), 303),
    # --- notifications: "notification" is the resident's
    ("GET", "/notifications"): signed_in(200),
    ("GET", "/notifications/settings"): signed_in(200),
    ("POST", "/notifications/settings"): signed_in(303),
    ("POST", "/notifications/read-all"): signed_in(303),
    ("GET", "/notifications/{notification_id:int}"): only(("resident",), 303),
    ("POST", "/notifications/{notification_id:int}/read"): only(("resident",), 303),
    # --- open-data API: public, read-only
    ("GET", "/api/v1/themes"): everyone(200),
    ("GET", "/api/v1/districts"): everyone(200),
    ("GET", "/api/v1/proposals"): everyone(200),
    ("GET", "/api/v1/proposals/{id:int}"): everyone(200),
    ("GET", "/api/v1/proposals/{id:int}/comments"): everyone(200),
    ("GET", "/api/v1/openapi.json"): everyone(200),
    # --- voting: "process" is open for voting; nobody has voted yet
    ("GET", "/processes"): everyone(200),
    ("GET", "/processes/{process_id:int}"): everyone(200),
    ("GET", "/processes/{process_id:int}/ballot"): signed_in(200),
    ("POST", "/processes/{process_id:int}/ballot"): signed_in(200),
    ("POST", "/processes/{process_id:int}/ballot/preview"): signed_in(200),
    ("POST", "/processes/{process_id:int}/ballot/cast"): signed_in(400),
    ("GET", "/processes/{process_id:int}/receipt"): signed_in(404),
    ("GET", "/processes/{process_id:int}/receipt.json"): signed_in(404),
    ("POST", "/processes/{process_id:int}/receipt/mail"): signed_in(404),
    ("GET", "/processes/{process_id:int}/results"): only(
        STAFF, 200, denied=404, anonymous=404
    ),  # unpublished
    ("GET", "/processes/{process_id:int}/export.pb"): everyone(404),  # only after publication
    ("GET", "/staff/processes/{process_id:int}/voting"): only(STAFF, 200),
    ("GET", "/staff/processes/{process_id:int}/voting/tally"): only(STAFF, 200),
    ("POST", "/staff/processes/{process_id:int}/voting/{step:str}"): only(STAFF, 400),
    ("GET", "/staff/processes/{process_id:int}/paper"): only(STAFF, 200),
    ("POST", "/staff/processes/{process_id:int}/paper"): only(STAFF, 400),
    # the staff member entered "paper": never confirmed by the same person (four-eyes principle)
    ("POST", "/staff/processes/{process_id:int}/paper/{paper_id:int}/confirm"): only(ADMIN, 303),
    ("POST", "/staff/processes/{process_id:int}/paper/{paper_id:int}/reject"): per_role(
        anonymous=LOGIN, resident=403, other=403, moderator=403, staff=303, admin=(303, 400)
    ),
    # --- staff: processes, exports, statistics, verification
    ("GET", "/staff"): only(STAFF, 200),
    ("GET", "/staff/processes"): only(STAFF, 200),
    ("GET", "/staff/processes/new"): only(STAFF, 200),
    ("POST", "/staff/processes/new"): only(STAFF, 400),
    ("GET", "/staff/processes/import-pb"): only(STAFF, 200),
    ("POST", "/staff/processes/import-pb"): only(STAFF, 400),
    ("GET", "/staff/processes/{process_id:int}/edit"): only(STAFF, 200),
    ("POST", "/staff/processes/{process_id:int}/edit"): only(STAFF, 400),
    ("GET", "/staff/processes/{process_id:int}/projects"): only(STAFF, 200),
    ("POST", "/staff/processes/{process_id:int}/projects"): only(STAFF, 400),
    ("POST", "/staff/processes/{process_id:int}/projects/import"): only(STAFF, 400),
    ("POST", "/staff/processes/{process_id:int}/projects/from-proposal"): only(STAFF, 400),
    ("GET", "/staff/processes/{process_id:int}/projects/{project_id:int}/edit"): only(STAFF, 200),
    ("POST", "/staff/processes/{process_id:int}/projects/{project_id:int}/edit"): only(STAFF, 400),
    ("POST", "/staff/processes/{process_id:int}/projects/{project_id:int}/delete"): only(STAFF, 400),
    ("GET", "/staff/processes/{process_id:int}/preflight"): only(STAFF, 200),
    ("GET", "/staff/processes/{process_id:int}/compare"): only(STAFF, 200),
    ("GET", "/staff/processes/{process_id:int}/export.{fmt:str}"): only(STAFF, 200),
    ("GET", "/staff/exports"): only(STAFF, 200),
    ("GET", "/staff/exports/{kind:str}.{fmt:str}"): only(STAFF, 200),
    ("GET", "/staff/statistics"): only(STAFF, 200),
    ("GET", "/staff/verification"): only(STAFF, 200),
    ("POST", "/staff/verification/upload"): only(STAFF, 400),
    ("POST", "/staff/verification/generate"): only(STAFF, 400),
    ("GET", "/staff/verification/in-person"): only(STAFF, 200),
    ("POST", "/staff/verification/in-person"): only(STAFF, 400),
    # no register exists in the world: 404 for everybody (nothing to leak), the role check for staff
    ("GET", "/staff/verification/registers/{register_id:int}"): only(
        STAFF, 404, denied=(403, 404), anonymous=(303, 404)
    ),
    ("GET", "/staff/verification/registers/{register_id:int}/letters.csv"): only(
        STAFF, 404, denied=(403, 404), anonymous=(303, 404)
    ),
    ("GET", "/staff/verification/registers/{register_id:int}/print"): only(
        STAFF, 404, denied=(403, 404), anonymous=(303, 404)
    ),
    ("POST", "/staff/verification/registers/{register_id:int}/printed"): only(
        STAFF, 404, denied=(403, 404), anonymous=(303, 404)
    ),
    ("POST", "/staff/verification/registers/{register_id:int}/close"): only(
        STAFF, 404, denied=(403, 404), anonymous=(303, 404)
    ),
    # --- audit log: public API, staff-only actor resolution
    ("GET", "/api/v1/processes/{id:int}/log"): everyone(200),
    ("GET", "/api/v1/log"): everyone(200),
    ("GET", "/api/v1/processes/{id:int}/log/head"): everyone(404),  # no signed head yet
    ("GET", "/api/v1/log/head"): everyone(404),
    ("GET", "/api/v1/processes/{id:int}/log/heads"): everyone(200),
    ("GET", "/api/v1/log/heads"): everyone(200),
    ("GET", "/api/v1/processes/{id:int}/log/proof"): everyone(400),  # index and size missing
    ("GET", "/api/v1/log/proof"): everyone(400),
    ("GET", "/api/v1/processes/{id:int}/log/consistency"): everyone(400),
    ("GET", "/api/v1/log/consistency"): everyone(400),
    ("GET", "/api/v1/processes/{id:int}/audit-bundle"): everyone(200),
    ("GET", "/api/v1/log/audit-bundle"): everyone(200),
    ("GET", "/.well-known/mitmachen-audit-key.pem"): everyone(200),
    ("GET", "/.well-known/mitmachen-audit-key.json"): everyone(200),
    ("GET", "/audit/check"): everyone(200),
    ("POST", "/audit/check"): everyone(400),
    ("GET", "/audit/actors"): only(STAFF, 200),  # ASVS V8.2.3
    # --- moderation: the item is "others_comment"; the moderator made "decision"
    ("GET", "/report/{item_type:str}/{item_id:int}"): everyone(200),
    ("POST", "/report/{item_type:str}/{item_id:int}"): everyone(400),
    ("GET", "/moderation"): only(MODERATORS, 200),
    ("GET", "/moderation/items/{item_type:str}/{item_id:int}"): only(MODERATORS, 200),
    ("POST", "/moderation/items/{item_type:str}/{item_id:int}/decide"): only(MODERATORS, 400),
    ("GET", "/moderation/notices"): signed_in(200),
    ("GET", "/moderation/decisions/{decision_id:int}/appeal"): only(("resident",), 200),
    ("POST", "/moderation/decisions/{decision_id:int}/appeal"): only(("resident",), 400),
    # an appeal goes to another moderator than the one who decided (here: the admin)
    ("GET", "/moderation/appeals/{appeal_id:int}"): only(ADMIN, 200),
    ("POST", "/moderation/appeals/{appeal_id:int}"): only(ADMIN, 400),
    ("GET", "/transparency"): everyone(200),
    ("GET", "/transparency.csv"): only(("moderator", "staff", "admin"), 200),
}

# Routes that end the session they are called with: the matrix calls them last.
SESSION_ENDING = {("POST", "/logout"), ("POST", "/account/sessions/revoke"), ("POST", "/account/delete")}
# Actions that change the world for the routes after them (withdrawing, deleting): called after the others.
RUN_LATE = {
    ("POST", "/proposals/{proposal_id:int}/withdraw"),
    ("POST", "/comments/{comment_id:int}/delete"),
    ("POST", "/proposals/{proposal_id:int}/attachments/{attachment_id:int}/delete"),
}
