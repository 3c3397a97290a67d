#!/usr/bin/env bash
# Refresh vendored front-end assets from the npm registry at pinned versions (with their licences).
set -euo pipefail
HTMX_VERSION=2.0.11
AXE_VERSION=4.14.1
root="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm pack --silent "htmx.org@${HTMX_VERSION}" "axe-core@${AXE_VERSION}" >/dev/null
mkdir h a
tar xzf "htmx.org-${HTMX_VERSION}.tgz" -C h
tar xzf "axe-core-${AXE_VERSION}.tgz" -C a
install -D -m 644 h/package/dist/htmx.min.js "$root/app/static/vendor/htmx/htmx.min.js"
install -D -m 644 h/package/LICENSE "$root/app/static/vendor/htmx/LICENSE"
install -D -m 644 a/package/axe.min.js "$root/tests/browser/vendor/axe-core/axe.min.js"
install -D -m 644 a/package/LICENSE "$root/tests/browser/vendor/axe-core/LICENSE"
install -D -m 644 a/package/LICENSE-3RD-PARTY.txt "$root/tests/browser/vendor/axe-core/LICENSE-3RD-PARTY.txt"
echo "vendored htmx.org ${HTMX_VERSION} and axe-core ${AXE_VERSION}"
