"""Attachments: type by content, size limits, storage outside the web root under random names, download
headers, escaping of file names, visibility, deletion, and nothing left behind on errors.
SECURITY.md rows: CVE-2023-51447, ASVS V3.2.1, V5.2.1, V5.2.2, V5.3.2, V5.4.1."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image

from app.web import STATIC_DIR
from proposals import attachments, lifecycle
from proposals.lifecycle import ProposalError
from proposals.models import Attachment, Proposal
from tests.conftest import query
from tests.proposals.proposal_helpers import form_data, get, jpeg_bytes, make_proposal, pdf_bytes, png_bytes


@pytest.fixture
def settings_overrides(tmp_path):
    return {"data_dir": str(tmp_path / "data"), "upload_max_mb": 1}


@pytest.fixture
def upload_dir(app) -> Path:
    return app.state.settings.upload_dir


def _stored(upload_dir: Path) -> list[Path]:
    return sorted(upload_dir.iterdir()) if upload_dir.exists() else []


def _post(client, path: str, data: dict, files: list[tuple[str, bytes, str]]):
    token = client.csrf()
    return client.post(
        path,
        data={**data, "csrf_token": token},
        files=[("attachments", (name, content, ctype)) for name, content, ctype in files],
    )


def _create(client, db, files, **overrides):
    return _post(client, "/proposals/new", {**form_data(db), "action": "publish", **overrides}, files)


def test_upload_on_create_and_download(client, db, make_user, login, upload_dir):
    """PDF, PNG and JPEG are accepted; stored under random names outside the web root; served as downloads
    with Content-Disposition (RFC 5987), nosniff and a sandbox CSP."""
    login(make_user())
    files = [
        ("Plan für den Park.pdf", pdf_bytes(), "application/pdf"),
        ("skizze.png", png_bytes(), "image/png"),
        ("foto.JPG", jpeg_bytes(), "image/jpeg"),
    ]
    assert _create(client, db, files).status_code == 303
    rows = sorted(query(db, Attachment), key=lambda a: a.id)
    assert [(a.original_name, a.content_type) for a in rows] == [
        ("Plan für den Park.pdf", "application/pdf"),
        ("skizze.png", "image/png"),
        ("foto.JPG", "image/jpeg"),
    ]
    stored = _stored(upload_dir)
    assert len(stored) == 3 and all(re.fullmatch(r"[0-9a-f]{32}", p.name) for p in stored)
    assert STATIC_DIR not in upload_dir.parents and not str(upload_dir).startswith(str(STATIC_DIR))
    pdf = rows[0]
    response = client.get(f"/proposals/{pdf.proposal_id}/attachments/{pdf.id}")
    assert response.status_code == 200 and response.content == pdf_bytes()
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"Plan fur den Park.pdf\"; filename*=UTF-8''Plan%20f%C3%BCr%20den%20Park.pdf"
    )
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"] == "default-src 'none'; sandbox"
    page = client.get(f"/proposals/{pdf.proposal_id}").text
    assert (
        f'href="/proposals/{pdf.proposal_id}/attachments/{pdf.id}"' in page
        and "Plan für den Park.pdf" in page
    )


BAD_FILES = [
    ("notiz.pdf", b"Dies ist nur Text.\n", "application/pdf"),
    ("bild.pdf", png_bytes(), "application/pdf"),
    ("text.png", b"just some text, not an image", "image/png"),
    ("seite.png", b"<html><script>alert(1)</script></html>", "image/png"),
    ("kaputt.png", png_bytes((64, 64))[:60], "image/png"),
    ("foto.png", jpeg_bytes(), "image/png"),
    ("animation.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "image/gif"),
    ("programm.exe", b"MZ\x90\x00\x03\x00\x00\x00", "application/octet-stream"),
    ("ohne-endung", pdf_bytes(), "application/pdf"),
    ("leer.pdf", b"", "application/pdf"),
    ("halb.pdf", pdf_bytes()[:40], "application/pdf"),
]


@pytest.mark.parametrize(("name", "content", "ctype"), BAD_FILES, ids=[f[0] for f in BAD_FILES])
def test_wrong_or_lying_files_are_refused(client, db, make_user, login, upload_dir, name, content, ctype):
    """ASVS V5.2.2: the type is checked by content and must agree with the name (a PNG renamed .pdf, a text
    file renamed .png, a truncated image are refused); 400 next to the field, nothing written."""
    login(make_user())
    response = _create(client, db, [("gut.pdf", pdf_bytes(), "application/pdf"), (name, content, ctype)])
    assert response.status_code == 400
    assert 'id="e-attachments"' in response.text and 'aria-invalid="true"' in response.text
    assert query(db, Proposal) == [] and query(db, Attachment) == [] and _stored(upload_dir) == []


def test_decompression_bomb_is_refused(client, db, make_user, login, upload_dir):
    """A small PNG that decodes to a huge image is refused."""
    buf = io.BytesIO()
    Image.new("1", (9000, 9000)).save(buf, "PNG", optimize=True)
    login(make_user())
    response = _create(client, db, [("riesig.png", buf.getvalue(), "image/png")])
    assert response.status_code == 400 and _stored(upload_dir) == []


def test_oversized_file_gets_a_field_error(client, db, make_user, login, upload_dir):
    """ASVS V5.2.1: a file over UPLOAD_MAX_MB (1 MB here) → 400 with a message naming the file."""
    login(make_user())
    big = pdf_bytes(pad=1024 * 1024)
    response = _create(client, db, [("gross.pdf", big, "application/pdf")])
    assert response.status_code == 400 and "gross.pdf ist größer als 1 MB." in response.text
    assert query(db, Proposal) == [] and _stored(upload_dir) == []


def test_request_over_the_body_limit_is_413(client, db, make_user, login, upload_dir):
    """Bodies over the request limit are refused before they are read whole (413); nothing written."""
    login(make_user())
    response = _create(client, db, [("riesig.pdf", pdf_bytes(pad=7 * 1024 * 1024), "application/pdf")])
    assert response.status_code == 413
    assert query(db, Proposal) == [] and _stored(upload_dir) == []


def test_at_most_five_files(client, db, make_user, login, upload_dir):
    """At most five attachments per proposal, on create and when adding more on edit."""
    author = make_user()
    login(author)
    six = [(f"datei{i}.png", png_bytes(), "image/png") for i in range(6)]
    assert _create(client, db, six).status_code == 400 and _stored(upload_dir) == []
    assert _create(client, db, six[:4]).status_code == 303
    p = query(db, Proposal)[0]
    response = _post(client, f"/proposals/{p.id}/edit", form_data(db), six[:2])
    assert response.status_code == 400 and len(query(db, Attachment)) == 4
    assert _post(client, f"/proposals/{p.id}/edit", form_data(db), six[:1]).status_code == 303
    assert len(query(db, Attachment)) == 5 and len(_stored(upload_dir)) == 5
    assert 'id="f-attachments"' not in client.get(f"/proposals/{p.id}/edit").text


@pytest.mark.parametrize(
    "name",
    [
        '"><img src=x onerror=alert(1)>.png',
        "<script>alert(1)</script>.png",
        "a\r\nX-Evil: 1.png",
        "..\\..\\x.png",
    ],
)
def test_filename_is_escaped_everywhere(client, db, make_user, login, name):
    """CVE-2023-51447: a crafted file name is shown as text on the proposal and edit pages and cannot
    break the Content-Disposition header."""
    author = make_user()
    login(author)
    assert _create(client, db, [(name, png_bytes(), "image/png")]).status_code == 303
    [row] = query(db, Attachment)
    assert "\r" not in row.original_name and "\n" not in row.original_name and "\\" not in row.original_name
    for path in (f"/proposals/{row.proposal_id}", f"/proposals/{row.proposal_id}/edit"):
        main = client.get(path).text.split('<main id="main"')[1]
        assert not re.search(r"<img\b|<script>alert", main)
    response = client.get(f"/proposals/{row.proposal_id}/attachments/{row.id}")
    assert "x-evil" not in response.headers
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="') and disposition.count('"') == 2


def test_clean_filename():
    assert attachments.clean_filename("../../etc/passwd.pdf") == "passwd.pdf"
    assert attachments.clean_filename("C:\\Users\\x\\plan.pdf") == "plan.pdf"
    assert attachments.clean_filename("a\x00b\x1fc.png") == "abc.png"
    assert attachments.clean_filename("") == "file"
    long = attachments.clean_filename("x" * 300 + ".pdf")
    assert len(long) == 200 and long.endswith(".pdf")


def test_download_follows_visibility(client, db, make_user, login, upload_dir):
    """CVE-2024-27090: attachments of a draft are served only to those who may see the draft; an
    attachment id under another proposal's path is 404 (no IDOR)."""
    author = make_user()
    login(author)
    assert (
        _create(client, db, [("plan.pdf", pdf_bytes(), "application/pdf")], action="draft").status_code == 303
    )
    [row] = query(db, Attachment)
    url = f"/proposals/{row.proposal_id}/attachments/{row.id}"
    assert client.get(url).status_code == 200
    other = make_proposal(db, make_user())
    assert client.get(f"/proposals/{other.id}/attachments/{row.id}").status_code == 404
    assert client.get(f"/proposals/{row.proposal_id}/attachments/999999").status_code == 404
    login(make_user())
    assert client.get(url).status_code == 404
    client.post_form("/logout")
    assert client.get(url).status_code == 404


def test_delete_own_attachment(client, db, make_user, login, upload_dir):
    """The author deletes an attachment after a confirmation; the row goes and the file is removed after
    the commit. Others get 403; an attachment under another proposal's path is 404."""
    author = make_user()
    login(author)
    _create(
        client, db, [("plan.pdf", pdf_bytes(), "application/pdf"), ("bild.png", png_bytes(), "image/png")]
    )
    first, second = sorted(query(db, Attachment), key=lambda a: a.id)
    p = first.proposal_id
    confirm = client.get(f"/proposals/{p}/attachments/{first.id}/delete")
    assert confirm.status_code == 200 and "plan.pdf" in confirm.text
    other = make_proposal(db, author)
    assert client.post_form(f"/proposals/{other.id}/attachments/{first.id}/delete").status_code == 404
    login(make_user())
    assert client.post_form(f"/proposals/{p}/attachments/{first.id}/delete").status_code == 403
    login(author)
    response = client.post_form(f"/proposals/{p}/attachments/{first.id}/delete")
    assert response.status_code == 303 and response.headers["location"] == f"/proposals/{p}/edit"
    assert [a.id for a in query(db, Attachment)] == [second.id]
    assert [f.name for f in _stored(upload_dir)] == [second.storage_name]


def test_failed_request_leaves_no_files(client, db, make_user, login, upload_dir, monkeypatch):
    """Files written during a request that then fails are removed when the transaction rolls back."""
    author = make_user()
    p = make_proposal(db, author, status="draft")
    login(author)

    def refuse(*args, **kwargs):
        raise ProposalError("nope")

    monkeypatch.setattr(lifecycle, "change_status", refuse)
    response = _post(
        client,
        f"/proposals/{p.id}/edit",
        {**form_data(db), "action": "publish"},
        [("a.png", png_bytes(), "image/png")],
    )
    assert response.status_code == 400
    assert query(db, Attachment) == [] and _stored(upload_dir) == []
    assert get(db, p.id).status == "draft"
