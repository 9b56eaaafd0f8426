#!/usr/bin/env bash
# docker/docker-compose.yml: accepted by `docker compose config` or `docker-compose config`
# (which validates it against the Compose schema and resolves every variable), and holding the
# deployment's rules: every long-running service has a healthcheck and a restart policy, start
# order goes by health, the sink waits for the one-shot migration to succeed, the gpuhealth
# services are configured by environment only, data lives in named volumes, images are pinned.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
compose_file="$root/docker/docker-compose.yml"
fails=0 passes=0
ok()  { passes=$((passes+1)); }
bad() { echo "FAIL: $*" >&2; fails=$((fails+1)); }
tmp=$(mktemp -d /tmp/gh-compose.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

if docker compose version >/dev/null 2>&1; then tool=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then tool=(docker-compose)
else echo "FAIL: neither 'docker compose' nor 'docker-compose' is installed (scripts/install-deps.sh --test installs docker-compose)" >&2; exit 1; fi

# with and without the example .env: both must resolve
(cd "$root/docker" && "${tool[@]}" -f "$compose_file" config >"$tmp/resolved.yml" 2>"$tmp/err") \
  && ok || bad "${tool[*]} config rejects docker-compose.yml: $(cat "$tmp/err")"
[ -s "$tmp/err" ] && grep -qi 'warn' "$tmp/err" && bad "${tool[*]} config warns: $(cat "$tmp/err")"
(cd "$root/docker" && "${tool[@]}" -f "$compose_file" --env-file "$root/docker/.env.example" config >"$tmp/resolved-env.yml" 2>"$tmp/err2") \
  && ok || bad "${tool[*]} config with .env.example fails: $(cat "$tmp/err2")"
grep -q 'change-me-reader' "$tmp/resolved-env.yml" && ok || bad ".env.example's passwords do not reach the resolved file"

# and a broken file is refused, so the check above can fail
sed 's/condition: service_completed_successfully/condition: service_finished/' "$compose_file" >"$root/docker/.compose-broken-$$.yml"
if (cd "$root/docker" && "${tool[@]}" -f ".compose-broken-$$.yml" config >/dev/null 2>&1); then bad "${tool[*]} config accepted a bad depends_on condition: it checks nothing"; else ok; fi
rm -f "$root/docker/.compose-broken-$$.yml"

/usr/bin/python3 - "$tmp/resolved.yml" "$compose_file" "$root/src/store/migrate.h" <<'PY' || fails=$((fails+1))
import re, sys, yaml
resolved = yaml.safe_load(open(sys.argv[1]))
raw = yaml.safe_load(open(sys.argv[2]))
svcs = resolved["services"]
errs = []
want = {"kafka", "timescaledb", "grafana", "migrate", "mock-dcgm", "collector", "sink", "scorer", "api"}
if set(svcs) != want:
    errs.append(f"services are {sorted(svcs)}, want {sorted(want)}")
gh = {"migrate", "mock-dcgm", "collector", "sink", "scorer", "api"}
for name, s in svcs.items():
    img = s.get("image", "")
    if name in gh:
        if s.get("build", {}).get("dockerfile") != "docker/Dockerfile":
            errs.append(f"{name}: not built from docker/Dockerfile")
        cmd = s.get("command") or []
        if not cmd or cmd[0] not in ("db", "mock-dcgm", "collector", "sink", "scorer", "api"):
            errs.append(f"{name}: command {cmd} is no gpuhealth subcommand")
        if any(a.startswith("-") for a in cmd):
            errs.append(f"{name}: options on the command line {cmd}: configure by environment only")
        for v in s.get("volumes", []):
            src = v.get("source", "") if isinstance(v, dict) else v.split(":")[0]
            if src.startswith("/") or src.startswith("."):
                errs.append(f"{name}: bind mount {v}: gpuhealth services take no files")
    elif ":" not in img or img.endswith(":latest"):
        errs.append(f"{name}: image '{img}' is not pinned to a version")
    if name == "migrate":
        if s.get("restart", "no") != "no":
            errs.append("migrate: a one-shot must not restart")
        continue
    if "healthcheck" not in s:
        errs.append(f"{name}: no healthcheck")
    if s.get("restart") not in ("unless-stopped", "always", "on-failure"):
        errs.append(f"{name}: restart policy {s.get('restart')}")
    for dep, d in (s.get("depends_on") or {}).items():
        if not isinstance(d, dict) or d.get("condition") not in ("service_healthy", "service_completed_successfully"):
            errs.append(f"{name}: depends_on {dep} without a health/completion condition")
        elif d["condition"] == "service_completed_successfully" and dep != "migrate":
            errs.append(f"{name}: waits for {dep} to complete, but only migrate is a one-shot")
def cond(svc, dep):
    return ((svcs[svc].get("depends_on") or {}).get(dep) or {}).get("condition")
for svc, dep, c in [("sink", "migrate", "service_completed_successfully"),
                    ("sink", "kafka", "service_healthy"),
                    ("scorer", "migrate", "service_completed_successfully"),
                    ("api", "migrate", "service_completed_successfully"),
                    ("migrate", "timescaledb", "service_healthy"),
                    ("collector", "kafka", "service_healthy")]:
    if cond(svc, dep) != c:
        errs.append(f"{svc} must depend on {dep} with {c} (has {cond(svc, dep)})")
img = svcs["timescaledb"]["image"]
# Timescale's image, pinned to an exact version that db migrate accepts (the minimum is
# MIGRATE_TIMESCALEDB_MIN in src/store/migrate.h), on a current PostgreSQL major (16-18:
# TimescaleDB 2.29.0 dropped 15)
hdr = open(sys.argv[3]).read()
mm = re.search(r'#define MIGRATE_TIMESCALEDB_MIN "(\d+)\.(\d+)\.(\d+)"', hdr)
if not mm:
    errs.append("MIGRATE_TIMESCALEDB_MIN not found in src/store/migrate.h")
minimum = tuple(map(int, mm.groups())) if mm else (99, 0, 0)
m = re.fullmatch(r"timescale/timescaledb:(\d+)\.(\d+)\.(\d+)-pg(\d+)", img)
if not m:
    errs.append(f"timescaledb: image {img} is not Timescale's pinned to an exact version (timescale/timescaledb:X.Y.Z-pgN)")
else:
    ver, major = tuple(map(int, m.groups()[:3])), int(m.group(4))
    if ver < minimum:
        errs.append(f"timescaledb: image {img} is older than {'.'.join(map(str, minimum))}, which db migrate refuses")
    if not 16 <= major <= 18:
        errs.append(f"timescaledb: image {img} runs PostgreSQL {major}, want a current major, 16 to 18")
    # where the image keeps its data: PostgreSQL 18's images declare the volume at
    # /var/lib/postgresql (PGDATA /var/lib/postgresql/18/docker); a named volume mounted
    # elsewhere would leave the database in an anonymous volume, lost with the container
    want_at = "/var/lib/postgresql" if major >= 18 else "/var/lib/postgresql/data"
    at = []  # the targets of named volumes (docker compose: long form; docker-compose 1.x: short)
    for v in svcs["timescaledb"].get("volumes", []):
        if isinstance(v, dict):
            if v.get("type") == "volume":
                at.append(v.get("target"))
        elif not v.startswith(("/", ".")):
            at.append(v.split(":")[1])
    if at != [want_at]:
        errs.append(f"timescaledb: named volume mounted at {at}, want one at {want_at} for PostgreSQL {major}")
if not svcs["kafka"]["image"].startswith("apache/kafka:4"):
    errs.append("kafka: want Apache's Kafka 4 image (KRaft)")
if "broker,controller" not in str(svcs["kafka"]["environment"].get("KAFKA_PROCESS_ROLES")):
    errs.append("kafka: not in KRaft mode (KAFKA_PROCESS_ROLES)")
named = set(raw.get("volumes") or {})
for want_vol in ("kafka-data", "tsdb-pg18-data", "grafana-data"):
    if want_vol not in named:
        errs.append(f"no named volume {want_vol}")
# every password comes from the environment
text = open(sys.argv[2]).read()
for line in text.splitlines():
    if "PASSWORD" in line and ":" in line and "${" not in line and not line.strip().startswith("#"):
        errs.append(f"a password not taken from the environment: {line.strip()}")
for e in errs:
    print("FAIL:", e, file=sys.stderr)
print(f"compose rules: {len(errs)} problems")
sys.exit(1 if errs else 0)
PY
echo "$passes passed, $fails failed (checked with: $("${tool[@]}" version 2>/dev/null | head -1))"
[ $fails = 0 ]
