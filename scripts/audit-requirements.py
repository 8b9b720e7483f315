"""Check the pinned requirements (requirements.txt) for known vulnerabilities with pip-audit.

Exit 1 when a pinned version has a known vulnerability that is not explained in ``EXPLAINED`` (and in
the README's "Deploying in public"). When the vulnerability service cannot be reached (offline, or a
package index without PyPI's JSON API), say so plainly and exit 0: the check was not made, and the
message says that it was not.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Vulnerability id -> why it does not affect captioner. Keep the README's list the same.
EXPLAINED: dict[str, str] = {}


def run_pip_audit(service: str) -> tuple[dict | None, str]:
    """pip-audit's JSON report using ``service`` (pypi or osv), or None and why not."""
    command = [sys.executable, "-m", "pip_audit", "--requirement", str(ROOT / "requirements.txt"), "--no-deps",
               "--disable-pip", "--format", "json", "--progress-spinner", "off", "--vulnerability-service", service]
    for vulnerability in EXPLAINED:
        command += ["--ignore-vuln", vulnerability]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        report = json.loads(done.stdout)
    except (OSError, subprocess.TimeoutExpired) as error:
        return None, str(error)
    except ValueError:
        return None, (done.stderr.strip().splitlines() or ["no output"])[-1]
    packages = report.get("dependencies", [])
    if packages and all(p.get("skip_reason") for p in packages):
        return None, f"all {len(packages)} packages skipped, e.g. {packages[0]['skip_reason']!r}"
    return report, ""


def main() -> int:
    failures = []
    for service in ("pypi", "osv"):
        report, why = run_pip_audit(service)
        if report is not None:
            break
        failures.append(f"{service}: {why}")
    else:
        print("audit: no vulnerability service could be reached (" + "; ".join(failures) + "); "
              "the pinned requirements were NOT checked")
        return 0
    packages = report.get("dependencies", [])
    skipped = [p for p in packages if p.get("skip_reason")]
    found = [(p["name"], p["version"], v) for p in packages for v in p.get("vulns", [])]
    for name, version, vulnerability in found:
        fixed = ", ".join(vulnerability.get("fix_versions") or []) or "no fixed version yet"
        print(f"audit: {name} {version}: {vulnerability['id']} (fixed in: {fixed}): "
              f"{(vulnerability.get('description') or '').splitlines()[0][:200] if vulnerability.get('description') else ''}")
    checked = len(packages) - len(skipped)
    note = f" ({len(skipped)} could not be checked: {', '.join(p['name'] for p in skipped)})" if skipped else ""
    if found:
        print(f"audit: {len(found)} known vulnerabilities in the pinned requirements: upgrade the pins, or explain "
              "each in scripts/audit-requirements.py and the README")
        return 1
    print(f"audit: no known vulnerabilities in {checked} pinned packages{note}"
          + (f"; explained and ignored: {', '.join(EXPLAINED)}" if EXPLAINED else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
