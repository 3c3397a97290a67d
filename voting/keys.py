"""The platform's Ed25519 signing key for tree heads.

The key lives in a file outside the repository: ``AUDIT_KEY_FILE`` if set, otherwise
``DATA_DIR/keys/audit-ed25519.pem`` (computed in one place, ``key_path``). It is generated on first use
(PKCS#8 PEM, file mode 0600, directory 0700) and reused afterwards; the key id is the SHA-256 of the raw
32-byte public key, in hex. Losing the file means later heads carry a new key id; keep it in the backups.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

DEFAULT_RELATIVE = Path("keys") / "audit-ed25519.pem"


class AuditKeyError(RuntimeError):
    """The key file exists but cannot be used (unreadable, not an Ed25519 private key)."""


def key_path(settings: Any) -> Path:
    """The one place that decides where the signing key lives."""
    configured = str(getattr(settings, "audit_key_file", "") or "").strip()
    if configured:
        return Path(configured)
    return Path(settings.data_dir) / DEFAULT_RELATIVE


def key_id_of(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_pem(data: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    key_id: str
    path: Path

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def public_pem(self) -> bytes:
        return public_pem(self.public)

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            self.public.verify(signature, message)
        except InvalidSignature:
            return False
        return True


_lock = threading.Lock()
_cache: dict[Path, tuple[float, SigningKey]] = {}
_configured: Path | None = None


def _write_new(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.chmod(path.parent, 0o700)
    except OSError:  # pragma: no cover - a directory we do not own: the file mode still protects the key
        pass
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # O_EXCL: two workers starting at once never overwrite each other's fresh key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    os.chmod(path, 0o600)


def load_or_create(path: Path) -> SigningKey:
    """The key at ``path``, generated (mode 0600) if the file does not exist yet."""
    path = Path(path)
    with _lock:
        if not path.exists():
            _write_new(path)
        mtime = path.stat().st_mtime
        cached = _cache.get(path)
        if cached and cached[0] == mtime:
            return cached[1]
        try:
            private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise AuditKeyError(f"cannot read the audit signing key {path}: {exc}") from exc
        if not isinstance(private, Ed25519PrivateKey):
            raise AuditKeyError(f"{path} is not an Ed25519 private key")
        key = SigningKey(private, key_id_of(private.public_key()), path)
        _cache[path] = (mtime, key)
        return key


def configure(settings: Any) -> Path:
    """Remember the key path of this deployment (called once by the app factory and the CLI)."""
    global _configured
    _configured = key_path(settings)
    return _configured


def signing_key() -> SigningKey:
    """The deployment's key (see ``configure``; falls back to the settings from the environment).

    Every ballot's receipt signs with it: the file is looked at again (a replaced key is picked up) at most
    once per ``RECHECK_SECONDS``."""
    global _recent
    path = _configured
    if path is None:
        from app.settings import Settings

        path = configure(Settings.from_env())
    recent = _recent
    now = time.monotonic()
    if recent is not None and recent[0] == path and now - recent[1] < RECHECK_SECONDS:
        return recent[2]
    key = load_or_create(path)
    _recent = (path, now, key)
    return key


RECHECK_SECONDS = 1.0
_recent: tuple[Path, float, SigningKey] | None = None


def public_info(key: SigningKey) -> dict[str, str]:
    """What the results page and the well-known URL publish about the key."""
    return {"algorithm": "Ed25519", "key_id": key.key_id, "public_key_pem": key.public_pem.decode("ascii")}
