#!/usr/bin/env bash
# pip-audit of the installed environment against PyPI's vulnerability data (ASVS V15.2.1).
# A known vulnerability fails (exit 1); PyPI out of reach only warns, so CI is not flaky without network.
set -uo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT
.venv/bin/pip-audit --local --skip-editable --vulnerability-service pypi --progress-spinner off \
  --format json --output "$out" 2>"$err"
rc=$?
if [ -s "$out" ] && .venv/bin/python - "$out" <<'PY'
import json, sys
deps = json.load(open(sys.argv[1]))["dependencies"]
bad = [d for d in deps if d.get("vulns")]
for d in bad:
    print(f"VULNERABLE {d['name']} {d['version']}: " + ", ".join(
        f"{v['id']} (fixed in {', '.join(v.get('fix_versions') or ['?'])})" for v in d["vulns"]))
print(f"pip-audit: {len(deps)} packages checked, {len(bad)} with known vulnerabilities")
sys.exit(1 if bad else 0)
PY
then
  exit 0
elif [ -s "$out" ]; then
  exit 1
fi
if [ "$rc" -ne 0 ] && grep -qiE "connection|timed? ?out|resolve|network|unreachable|ServiceError|HTTPError|SSL" "$err"; then
  echo "WARNING: pip-audit could not reach PyPI's vulnerability service; dependencies NOT audited:" >&2
  tail -n 3 "$err" >&2
  exit 0
fi
cat "$err" >&2
exit "$rc"
