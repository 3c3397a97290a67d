"""Administration: the route × role matrix, role changes and suspensions, pages, theme areas and districts."""

from __future__ import annotations

import pytest

from app.models import Page, Role, User, UserSession
from proposals.models import District, Theme
from tests.conftest import PASSWORD, Client, query

ADMIN_PAGES = [
    "/admin",
    "/admin/users",
    "/admin/pages",
    "/admin/pages/impressum",
    "/admin/config",
    "/admin/themes/new",
    "/admin/districts/new",
]
# who may open each page: admin pages are for admins; the dashboard also for staff
ALLOWED = {path: {"admin"} for path in ADMIN_PAGES}
ALLOWED["/admin"] = {"admin", "staff"}


@pytest.mark.parametrize("role", ["anonymous", "resident", "moderator", "staff", "admin"])
def test_admin_route_role_matrix(client, make_user, login, role):
    """CVE-2023-36465: every admin route checks the permission server-side, for every role."""
    if role != "anonymous":
        login(make_user(role))
    for path in ADMIN_PAGES:
        response = client.get(path)
        if role == "anonymous":
            assert response.status_code == 303 and response.headers["location"].startswith("/login?next="), (
                path
            )
        elif role in ALLOWED[path]:
            assert response.status_code == 200, (role, path)
        else:
            assert response.status_code == 403, (role, path)


@pytest.mark.parametrize("role", ["resident", "moderator", "staff"])
def test_admin_actions_forbidden_for_non_admins(client, db, make_user, login, role):
    """Object-level actions (role, suspension, page edit, theme edit) are refused for non-admins."""
    target = make_user(name="Target")
    login(make_user(role))
    token = client.csrf()
    assert (
        client.post(f"/admin/users/{target.id}/role", data={"csrf_token": token, "role": "admin"}).status_code
        == 403
    )
    assert (
        client.post(f"/admin/users/{target.id}/suspend", data={"csrf_token": token, "days": "5"}).status_code
        == 403
    )
    assert (
        client.post("/admin/pages/impressum", data={"csrf_token": token, "title_de": "X"}).status_code == 403
    )
    assert client.post("/admin/themes/new", data={"csrf_token": token, "slug": "x"}).status_code == 403
    assert query(db, User, User.id == target.id)[0].role == "resident"


def test_role_change_revokes_sessions(client, db, make_user, login):
    """Assigning a role logs the target out everywhere (their rights changed)."""
    target = make_user(name="Tina")
    other = Client(client.app, base_url="http://testserver", follow_redirects=False)
    login(target, c=other)
    admin = make_user("admin")
    login(admin)
    response = client.post_form(f"/admin/users/{target.id}/role", {"role": "moderator"})
    assert response.status_code == 303
    assert query(db, User, User.id == target.id)[0].role == "moderator"
    assert other.get("/account").status_code == 303
    assert all(s.revoked_reason == "role" for s in query(db, UserSession, UserSession.user_id == target.id))


def test_role_change_rejects_unknown_role_and_self_demotion(client, db, make_user, login):
    """Unknown roles and an admin removing their own admin role are refused with a message."""
    admin = make_user("admin")
    target = make_user()
    login(admin)
    client.post_form(f"/admin/users/{target.id}/role", {"role": "superuser"})
    assert query(db, User, User.id == target.id)[0].role == "resident"
    client.post_form(f"/admin/users/{admin.id}/role", {"role": "resident"})
    assert query(db, User, User.id == admin.id)[0].role == "admin"
    assert "nicht entziehen" in client.get("/admin/users").text
    assert client.post_form("/admin/users/999999/role", {"role": "staff"}).status_code == 404


def test_suspend_and_lift(client, db, make_user, login):
    """A suspension ends the target's sessions and blocks login until lifted."""
    target = make_user()
    other = Client(client.app, base_url="http://testserver", follow_redirects=False)
    login(target, c=other)
    login(make_user("admin"))
    assert client.post_form(f"/admin/users/{target.id}/suspend", {"days": "7"}).status_code == 303
    assert other.get("/account").status_code == 303
    assert other.post_form("/login", {"email": target.email, "password": PASSWORD}).status_code == 400
    client.post_form(f"/admin/users/{target.id}/suspend", {"days": "0"})
    assert query(db, User, User.id == target.id)[0].suspended_until is None
    bad = client.post_form(f"/admin/users/{target.id}/suspend", {"days": "abc"})
    assert bad.status_code == 303 and "zwischen 0 und 3650" in client.get("/admin/users").text


def test_user_search_htmx_partial(client, make_user, login):
    """The user list filters by name and role; htmx gets only the table partial."""
    login(make_user("admin", name="Ada"))
    make_user(name="Zora Zeta")
    make_user("moderator", name="Moritz")
    full = client.get("/admin/users?q=zora")
    assert "Zora Zeta" in full.text and "Moritz" not in full.text and "<html" in full.text
    partial = client.get("/admin/users?role=moderator", headers={"HX-Request": "true"})
    assert "Moritz" in partial.text and "Zora" not in partial.text and "<html" not in partial.text


def test_edit_page_and_render_markdown_safely(client, db, make_user, login):
    """Admins edit the imprint; Markdown renders with raw HTML off, sanitised (no javascript: links)."""
    login(make_user("admin"))
    body = (
        "## Kontakt\n\n[Rathaus](https://www.wuppertal.de) [x](javascript:alert(1)) <script>alert(2)</script>"
    )
    response = client.post_form(
        "/admin/pages/impressum",
        {"title_de": "Impressum", "title_en": "Imprint", "body_de": body, "body_en": "", "in_footer": "on"},
    )
    assert response.status_code == 303
    html = client.get("/pages/impressum").text
    assert '<a href="https://www.wuppertal.de" rel="nofollow ugc noopener">Rathaus</a>' in html
    assert "javascript:" not in html.split("<main")[1].replace("[x](javascript:alert(1))", "")
    assert "<script>alert(2)" not in html and "<h3>Kontakt</h3>" in html
    bad = client.post_form("/admin/pages/impressum", {"title_de": "", "title_en": "Imprint", "body_de": ""})
    assert bad.status_code == 400 and 'id="e-title_de"' in bad.text
    assert query(db, Page, Page.slug == "impressum")[0].title_de == "Impressum"
    assert client.get("/admin/pages/nope").status_code == 404


def test_footer_links_to_pages(client):
    """The footer links the configurable pages (imprint, privacy, rules)."""
    html = client.get("/").text
    for slug in ("impressum", "datenschutz", "regeln"):
        assert f'href="/pages/{slug}"' in html


def test_nine_themes_and_ten_districts_seeded(client, db):
    """The nine theme areas and Wuppertal's ten districts are seeded; the home page lists them."""
    themes = query(db, Theme)
    assert len(themes) == 9 and len(query(db, District)) == 10
    html = client.get("/").text
    for theme in themes:
        assert theme.name_de in html
    assert "Mobilität und Verkehr" in html and "IT-Infrastruktur und Netze" in html


def test_admin_edits_themes_and_districts(client, db, make_user, login):
    """Another city can use its own configuration: add, rename and deactivate theme areas and districts."""
    login(make_user("admin"))
    response = client.post_form(
        "/admin/themes/new",
        {
            "slug": "kultur-neu",
            "name_de": "Kultur neu",
            "name_en": "New culture",
            "position": "20",
            "is_active": "on",
        },
    )
    assert response.status_code == 303
    [theme] = query(db, Theme, Theme.slug == "kultur-neu")
    assert "Kultur neu" in client.get("/").text
    client.post_form(
        f"/admin/themes/{theme.id}",
        {
            "slug": "kultur-neu",
            "name_de": "Kultur neu",
            "name_en": "New culture",
            "position": "20",
            "is_active": "",
        },
    )
    assert "Kultur neu" not in client.get("/").text
    assert client.get("/themes/kultur-neu").status_code == 404
    dup = client.post_form("/admin/themes/new", {"slug": "kultur-neu", "name_de": "X1", "name_en": "X1"})
    assert dup.status_code == 400 and "schon vergeben" in dup.text
    bad = client.post_form("/admin/districts/new", {"slug": "Not A Slug", "name": "", "position": "-5"})
    assert bad.status_code == 400
    for field in ("slug", "name", "position"):
        assert f'id="e-{field}"' in bad.text
    ok = client.post_form("/admin/districts/new", {"slug": "neustadt", "name": "Neustadt", "is_active": "on"})
    assert ok.status_code == 303 and query(db, District, District.slug == "neustadt")
    assert client.get("/admin/themes/999999").status_code == 404


def test_create_admin_role_values():
    """Roles are exactly resident, moderator, staff, admin."""
    assert [r.value for r in Role] == ["resident", "moderator", "staff", "admin"]
