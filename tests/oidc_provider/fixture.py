"""Start and drive the real test OpenID provider (tests/oidc_provider/server.js, panva/oidc-provider).

``start_provider(redirect_uris)`` runs ``node server.js`` on 127.0.0.1 (a free port chosen by the server)
and returns an ``OidcTestProvider``; ``stop()`` ends the process. Without node or without
``npm ci --prefix tests/oidc_provider`` the tests are skipped locally and FAIL under CI (``CI`` set).

``provider_login(auth_url, account)`` plays the person at the provider with plain HTTP: it follows the
redirects, fills in the provider's login form (any password) and its consent form, and returns the URL the
provider sends the browser back to (our callback with code, state and iss).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest

HERE = Path(__file__).resolve().parent
CLIENT_ID = "mitmachen-test"
CLIENT_SECRET = "test-client-secret-" + "s" * 24
START_SECONDS = 20


@dataclass
class OidcTestProvider:
    issuer: str
    process: subprocess.Popen
    log_path: Path
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10))

    def _control(self, method: str, path: str, body: dict | None = None) -> None:
        response = self.http.request(method, f"{self.issuer}/_test/{path}", json=body or {})
        assert response.status_code == 204, response.text

    def set_account(self, account: str, **claims) -> None:
        """Claims of the provider's account ``account`` (merged over sub/email/email_verified/name defaults)."""
        self._control("PUT", f"accounts/{account}", claims)

    def misbehave(self, mode: str) -> None:
        self._control("POST", "misbehave", {"mode": mode})

    def reset(self) -> None:
        self._control("POST", "reset")

    def config(self, key: str = "test", name: str = "Test-ID", **extra) -> dict:
        """An OIDC_PROVIDERS entry for this provider."""
        return {
            "key": key,
            "name": name,
            "issuer": self.issuer,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "scopes": ["openid", "email", "profile", "address"],
            **extra,
        }

    def stop(self) -> None:
        self.http.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, but CI is set: the OpenID Connect tests must run in CI", pytrace=False)
    pytest.skip(reason)


def start_provider(redirect_uris: list[str]) -> OidcTestProvider:
    node = shutil.which("node")
    if node is None:
        _unavailable("node is not installed (apt-get install nodejs npm)")
    if not (HERE / "node_modules" / "oidc-provider").is_dir():
        _unavailable("the test provider's packages are missing: npm ci --prefix tests/oidc_provider")
    clients = [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "redirect_uris": redirect_uris}]
    log_file = tempfile.NamedTemporaryFile(prefix="oidc-provider-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [node, "server.js"],
        cwd=HERE,
        env={**os.environ, "OIDC_TEST_CLIENTS": json.dumps(clients), "DEBUG": ""},
        stdout=subprocess.PIPE,
        stderr=log_file,
        text=True,
    )
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(START_SECONDS)
    if not line or not line[0].strip():
        process.kill()
        process.wait(timeout=10)
        log = Path(log_file.name).read_text(errors="replace")[-2000:]
        pytest.fail(f"the test OpenID provider did not start:\n{log}", pytrace=False)
    issuer = json.loads(line[0])["issuer"]
    assert issuer.startswith("http://127.0.0.1:"), issuer
    return OidcTestProvider(issuer=issuer, process=process, log_path=Path(log_file.name))


# --- playing the person at the provider -------------------------------------------------------------------

FORM_RE = re.compile(r'<form[^>]*action="([^"]+)"[^>]*method="post"[^>]*>(.*?)</form>', re.S | re.I)
HIDDEN_RE = re.compile(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', re.I)


def provider_login(
    provider: OidcTestProvider,
    auth_url: str,
    account: str,
    *,
    until: str = "http://testserver",
    abort: bool = False,
) -> str:
    """Sign in as ``account`` at the provider and consent; the URL the provider redirects back to."""
    with httpx.Client(timeout=10, follow_redirects=False) as browser:
        url = auth_url
        for _ in range(20):
            if url.startswith(until):
                return url
            response = browser.get(url)
            if response.is_redirect:
                url = urljoin(url, response.headers["location"])
                continue
            assert response.status_code == 200, f"{url}: {response.status_code} {response.text[:500]}"
            if abort:
                match = re.search(r'<a href="([^"]+/abort)"', response.text)
                assert match, response.text[:500]
                url = urljoin(url, unescape(match.group(1)))
                continue
            form = FORM_RE.search(response.text)
            assert form, f"no form at the provider: {response.text[:500]}"
            action, body = unescape(form.group(1)), form.group(2)
            data = {name: unescape(value) for name, value in HIDDEN_RE.findall(body)}
            if 'name="login"' in body:
                data.update(login=account, password="any password")
            posted = browser.post(urljoin(url, action), data=data)
            assert posted.is_redirect, f"{action}: {posted.status_code} {posted.text[:500]}"
            url = urljoin(url, posted.headers["location"])
    raise AssertionError("the provider did not send us back")
