"""Docs kept honest: every setting documented, every README command exists, every permission listed."""

from __future__ import annotations

import re
from pathlib import Path

from app.cli import build_parser
from app.permissions import PERMISSIONS
from app.settings import documented_settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_documented():
    """docs/settings.md and .env.example name only real settings; the docs name them all."""
    docs = (ROOT / "docs" / "settings.md").read_text()
    names = set(documented_settings())
    in_docs = set(re.findall(r"^\| `([A-Z_]+)` \|", docs, re.M))
    assert names == in_docs
    example = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert example <= names


def test_readme_commands_exist():
    """Every `mitmachen X` in the README is a real subcommand."""
    readme = (ROOT / "README.md").read_text()
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    for name in set(re.findall(r"`mitmachen ([a-z-]+)", readme)) - {"COMMAND"}:
        assert name in action.choices, name
    assert "make run" in readme and "make test" in readme


def test_every_permission_documented():
    """docs/security.md lists every named permission."""
    doc = (ROOT / "docs" / "security.md").read_text()
    for name in PERMISSIONS:
        assert f"`{name}`" in doc, name
