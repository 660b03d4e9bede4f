#!/usr/bin/env bash
# The monitoring files checked offline (deploy/monitoring/): the stacks'
# Prometheus configurations parse, the rules load,
# their promtool unit tests pass and cover every alert firing and silent,
# every runbook link lands on a heading of docs/operations.md, and every
# query of the dashboard parses (as a rule, by promtool) and names only
# recording rules that exist. Installs Debian's prometheus (for promtool)
# and PyYAML when missing. Whether a running daemon exports every metric
# named here is tests/monitoring.rs, in the workspace's suite.
#
#   scripts/monitoring.sh check
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

install() {
  if ! command -v promtool >/dev/null; then
    echo "monitoring: installing Debian's prometheus (for promtool)"
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get -o Acquire::Retries=3 update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends prometheus >/dev/null
    # Debian's package starts nothing without systemd; stop it where it did.
    $sudo systemctl disable --now prometheus prometheus-node-exporter >/dev/null 2>&1 || true
  fi
  python3 -c 'import yaml' 2>/dev/null || python3 -m pip install -q --disable-pip-version-check pyyaml
}

check() {
  install
  local dir=deploy/monitoring scratch
  for config in "$dir"/prometheus.*.yml; do
    promtool check config --syntax-only "$config" >/dev/null
  done
  promtool check rules "$dir/aishad.rules.yml"
  promtool test rules "$dir/aishad.rules.test.yml"
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' RETURN
  python3 - "$dir" "$scratch/dashboard.rules.yml" <<'PY'
import json, re, sys, yaml
folder, out = sys.argv[1], sys.argv[2]
rules = yaml.safe_load(open(f"{folder}/aishad.rules.yml"))
all_rules = [r for g in rules["groups"] for r in g["rules"]]
recorded = {r["record"] for r in all_rules if "record" in r}
alerts = [r for r in all_rules if "alert" in r]
problems = []
# Every alert says how bad, what, where to look, and how to fix.
doc = open("docs/operations.md").read()
anchors = {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-") for h in re.findall(r"^#+ (.*)$", doc, re.M)}
for a in alerts:
    if a.get("labels", {}).get("severity") not in ("critical", "warning"):
        problems.append(f"{a['alert']}: severity must be critical or warning")
    for key in ("summary", "description", "runbook_url"):
        if not a.get("annotations", {}).get(key):
            problems.append(f"{a['alert']}: no {key}")
    anchor = a.get("annotations", {}).get("runbook_url", "#").split("#", 1)[1]
    if anchor not in anchors:
        problems.append(f"{a['alert']}: runbook {anchor!r} is no heading of docs/operations.md")
# Every alert is tested firing and silent.
tests = yaml.safe_load(open(f"{folder}/aishad.rules.test.yml"))["tests"]
seen = {}
for t in tests:
    for case in t.get("alert_rule_test", []):
        seen.setdefault(case["alertname"], set()).add(bool(case.get("exp_alerts")))
for a in alerts:
    if seen.get(a["alert"]) != {True, False}:
        problems.append(f"{a['alert']}: needs a test where it fires and one where it stays silent")
# Every dashboard query parses (promtool reads them as rules) and names only rules that exist.
dashboard = json.load(open(f"{folder}/dashboard.json"))
exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
for e in exprs:
    for name in re.findall(r"\baishad:[a-z0-9_:]+", e):
        if name not in recorded:
            problems.append(f"dashboard names {name}, which no recording rule makes")
rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
if rows != ["Intake", "Queue", "Outside APIs", "Money", "Process"]:
    problems.append(f"dashboard rows: {rows}")
yaml.safe_dump({"groups": [{"name": "dashboard", "rules": [{"record": f"dashboard:query_{i}", "expr": e} for i, e in enumerate(exprs)]}]}, open(out, "w"))
if problems:
    print("\n".join(problems))
    sys.exit(1)
print(f"monitoring: {len(alerts)} alerts with runbooks, each tested firing and silent; {len(exprs)} dashboard queries")
PY
  promtool check rules "$scratch/dashboard.rules.yml" >/dev/null
  echo "monitoring: rules, their tests and the dashboard's queries ok (promtool $(promtool --version 2>&1 | awk 'NR==1 {print $3}'))"
}

case "${1:-check}" in
  check) check ;;
  *) echo "usage: $0 check" >&2; exit 64 ;;
esac
