"""Named permissions built from small predicates.

Routes call ``require(request, "name", obj)``; templates call ``can("name", obj)``. Feature packages
register their own permissions with ``register(...)`` at import time. Never compare roles by hand in a
handler.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.exceptions import HTTPException

from app.models import Role, User

Predicate = Callable[[User | None, Any], bool]
ROLE_RANK = {Role.RESIDENT: 0, Role.MODERATOR: 1, Role.STAFF: 2, Role.ADMIN: 3}


def is_authenticated(user: User | None, _obj: Any = None) -> bool:
    return user is not None and not user.is_deleted and not user.is_suspended()


def is_anonymous(user: User | None, _obj: Any = None) -> bool:
    return user is None


def has_role(*roles: Role) -> Predicate:
    names = {r.value for r in roles}

    def predicate(user: User | None, _obj: Any = None) -> bool:
        return is_authenticated(user) and user is not None and user.role in names

    predicate.__name__ = "has_role_" + "_".join(sorted(names))
    return predicate


def any_of(*predicates: Predicate) -> Predicate:
    return lambda user, obj=None: any(p(user, obj) for p in predicates)


def all_of(*predicates: Predicate) -> Predicate:
    return lambda user, obj=None: all(p(user, obj) for p in predicates)


is_moderator = has_role(Role.MODERATOR, Role.ADMIN)
is_staff = has_role(Role.STAFF, Role.ADMIN)
is_admin = has_role(Role.ADMIN)

PERMISSIONS: dict[str, tuple[Predicate, str]] = {}


def register(name: str, predicate: Predicate, description: str) -> None:
    if name in PERMISSIONS and PERMISSIONS[name][0] is not predicate:
        raise ValueError(f"permission {name!r} registered twice")
    PERMISSIONS[name] = (predicate, description)


register("account.view", is_authenticated, "See and edit one's own account")
register("admin.access", any_of(is_staff, is_admin), "Open the administration area")
register("admin.users", is_admin, "List users, assign roles, suspend accounts")
register("admin.pages", is_admin, "Edit imprint, privacy and rules pages")
register("admin.config", is_admin, "Edit theme areas and districts")


def can_user(user: User | None, name: str, obj: Any = None) -> bool:
    try:
        predicate = PERMISSIONS[name][0]
    except KeyError as exc:
        raise KeyError(f"unknown permission {name!r}") from exc
    return bool(predicate(user, obj))


class LoginRequired(Exception):
    """Raised by require() for anonymous users; the app turns it into a redirect to the login page."""


def require(request, name: str, obj: Any = None) -> User:
    """Return the current user if they hold the permission; otherwise 403 (or login redirect)."""
    user: User | None = getattr(request.state, "user", None)
    if can_user(user, name, obj):
        return user  # type: ignore[return-value]
    if user is None:
        raise LoginRequired()
    raise HTTPException(status_code=403)
