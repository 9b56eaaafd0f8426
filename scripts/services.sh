#!/usr/bin/env bash
# Real services for the integration tests: a private PostgreSQL 15 and an Apache Kafka 4.x
# broker (KRaft, broker+controller in one JVM, jars from Maven Central), both on free loopback
# ports in a scratch directory. Source this file, then:
#   pg_start / pg_stop        -> exports GPUHEALTH_TEST_PG (a libpq conninfo)
#   kafka_start / kafka_stop  -> exports GPUHEALTH_TEST_KAFKA (bootstrap servers)
# Logs stay in $GH_SVC_DIR (printed) so a failing test can be read afterwards.
# GH_PG_EXTRA_CONF: more postgresql.conf lines for pg_start (the fleet benchmark sizes memory).

GH_ROOT=${GH_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
GH_KAFKA_VERSION=${GH_KAFKA_VERSION:-4.1.1}
GH_CACHE=${GPUHEALTH_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gpuhealth}
GH_SVC_DIR=${GH_SVC_DIR:-$(mktemp -d /tmp/gpuhealth-services.XXXXXX)}
chmod 755 "$GH_SVC_DIR"
export GH_SVC_DIR # a test that sources this file again finds the same services

svc_log() { echo "services: $*" >&2; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# ---------------------------------------------------------------- PostgreSQL
pg_bindir() {
  local d
  for d in "$(pg_config --bindir 2>/dev/null)" /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
  done
  return 1
}

# Runs a command as the unprivileged owner of the data directory (PostgreSQL refuses root).
pg_as() {
  if [ "$(id -u)" = 0 ]; then runuser -u "$GH_PG_USER" -- "$@"; else "$@"; fi
}

pg_start() {
  local bin; bin=$(pg_bindir) || { svc_log "PostgreSQL server binaries not found: install postgresql-15 (scripts/install-deps.sh --test)"; return 1; }
  GH_PG_DIR="$GH_SVC_DIR/pg"
  mkdir -p "$GH_PG_DIR"
  GH_PG_USER=$(id -un)
  if [ "$(id -u)" = 0 ]; then
    GH_PG_USER=postgres
    id postgres >/dev/null 2>&1 || GH_PG_USER=nobody
    chown "$GH_PG_USER" "$GH_PG_DIR"
  fi
  GH_PG_PORT=$(free_port)
  pg_as "$bin/initdb" -D "$GH_PG_DIR/data" -A trust -U postgres -E UTF8 --locale=C --no-sync \
    >"$GH_PG_DIR/initdb.log" 2>&1 || { svc_log "initdb failed:"; cat "$GH_PG_DIR/initdb.log" >&2; return 1; }
  # In the config file, not on the command line, so a plain "pg_ctl start" (a restart test)
  # comes back on the same port.
  cat >>"$GH_PG_DIR/data/postgresql.conf" <<CONF
port = $GH_PG_PORT
unix_socket_directories = '$GH_PG_DIR'
listen_addresses = '127.0.0.1'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
${GH_PG_EXTRA_CONF:-}
CONF
  pg_as "$bin/pg_ctl" -D "$GH_PG_DIR/data" -l "$GH_PG_DIR/postgresql.log" -w -t 60 start >/dev/null || { svc_log "PostgreSQL did not start:"; tail -20 "$GH_PG_DIR/postgresql.log" >&2; return 1; }
  psql -X -q -h 127.0.0.1 -p "$GH_PG_PORT" -U postgres -d postgres -c 'CREATE DATABASE gpuhealth_test' >/dev/null \
    || { svc_log "cannot create the test database"; return 1; }
  export GPUHEALTH_TEST_PG="host=127.0.0.1 port=$GH_PG_PORT user=postgres dbname=gpuhealth_test connect_timeout=5"
  export GH_PG_BIN="$bin" GH_PG_DIR GH_PG_PORT GH_PG_USER
  svc_log "PostgreSQL $(psql -X -At "$GPUHEALTH_TEST_PG" -c 'SHOW server_version') on 127.0.0.1:$GH_PG_PORT (log $GH_PG_DIR/postgresql.log)"
}

pg_stop() {
  [ -n "${GH_PG_DIR:-}" ] && [ -f "$GH_PG_DIR/data/postmaster.pid" ] || return 0
  pg_as "$GH_PG_BIN/pg_ctl" -D "$GH_PG_DIR/data" -m fast -w -t 30 stop >/dev/null 2>&1 || true
}

# ---------------------------------------------------------------- Kafka
kafka_fetch() {
  GH_KAFKA_LIBS="$GH_CACHE/kafka-$GH_KAFKA_VERSION/libs"
  if [ -f "$GH_KAFKA_LIBS/.complete" ]; then
    svc_log "Kafka $GH_KAFKA_VERSION jars cached in $GH_KAFKA_LIBS"
    return 0
  fi
  command -v mvn >/dev/null || { svc_log "Maven (mvn) is missing: install maven (scripts/install-deps.sh --test)"; return 1; }
  svc_log "fetching Kafka $GH_KAFKA_VERSION from Maven Central into $GH_KAFKA_LIBS"
  rm -rf "$GH_KAFKA_LIBS"; mkdir -p "$GH_KAFKA_LIBS"
  mvn -q -B -Dstyle.color=never -f "$GH_ROOT/tests/services/kafka-pom.xml" -Dkafka.version="$GH_KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$GH_KAFKA_LIBS" >&2 \
    || { svc_log "Maven could not fetch Kafka $GH_KAFKA_VERSION"; return 1; }
  ls "$GH_KAFKA_LIBS" | grep -q "kafka_2.13-$GH_KAFKA_VERSION.jar" || { svc_log "kafka_2.13 jar missing after fetch"; return 1; }
  touch "$GH_KAFKA_LIBS/.complete"
}

kafka_ready() { # a real Metadata request, not a TCP probe
  kcat -b "$1" -L -m 3 >/dev/null 2>&1
}

kafka_start() {
  kafka_fetch || return 1
  command -v java >/dev/null || { svc_log "java is missing: install default-jre-headless"; return 1; }
  command -v kcat >/dev/null || { svc_log "kcat is missing: install kcat"; return 1; }
  GH_KAFKA_DIR="$GH_SVC_DIR/kafka"
  mkdir -p "$GH_KAFKA_DIR"
  local bport cport; bport=$(free_port); cport=$(free_port)
  while [ "$cport" = "$bport" ]; do cport=$(free_port); done
  cat >"$GH_KAFKA_DIR/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$bport,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$bport
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$GH_KAFKA_DIR/data
num.partitions=4
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.cleaner.dedupe.buffer.size=33554432
log.flush.interval.messages=9223372036854775807
PROPS
  cat >"$GH_KAFKA_DIR/log4j2.properties" <<'PROPS'
status = warn
appender.console.type = Console
appender.console.name = CONSOLE
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = ${sys:kafka.root.level:-INFO}
rootLogger.appenderRef.console.ref = CONSOLE
logger.req.name = kafka.request.logger
logger.req.level = WARN
PROPS
  kafka_jopts
  local jopts=("${GH_KAFKA_JOPTS[@]}")
  java "${jopts[@]}" -Dkafka.root.level=WARN -cp "$GH_KAFKA_LIBS/*" kafka.tools.StorageTool format \
    -t MkU3OEVBNTcwNTJENDM2Qk -c "$GH_KAFKA_DIR/server.properties" >"$GH_KAFKA_DIR/format.log" 2>&1 \
    || { svc_log "kafka storage format failed:"; cat "$GH_KAFKA_DIR/format.log" >&2; return 1; }
  java "${jopts[@]}" -cp "$GH_KAFKA_LIBS/*" kafka.Kafka "$GH_KAFKA_DIR/server.properties" \
    >>"$GH_KAFKA_DIR/broker.log" 2>&1 &
  GH_KAFKA_PID=$!
  echo "$GH_KAFKA_PID" >"$GH_KAFKA_DIR/broker.pid"
  export GPUHEALTH_TEST_KAFKA="127.0.0.1:$bport"
  local i
  for i in $(seq 1 240); do
    kill -0 "$GH_KAFKA_PID" 2>/dev/null || { svc_log "Kafka exited during start:"; tail -30 "$GH_KAFKA_DIR/broker.log" >&2; return 1; }
    kafka_ready "$GPUHEALTH_TEST_KAFKA" && break
    sleep 0.5
  done
  kafka_ready "$GPUHEALTH_TEST_KAFKA" || { svc_log "Kafka not ready after 120 s"; tail -30 "$GH_KAFKA_DIR/broker.log" >&2; return 1; }
  local v; v=$(grep -m1 -o 'Kafka version: [^ ]*' "$GH_KAFKA_DIR/broker.log" | cut -d' ' -f3)
  export GH_KAFKA_PID GH_KAFKA_DIR GH_KAFKA_LIBS
  svc_log "Apache Kafka ${v:-$GH_KAFKA_VERSION} (KRaft) on $GPUHEALTH_TEST_KAFKA (log $GH_KAFKA_DIR/broker.log)"
}

# The JVM options of the broker, in GH_KAFKA_JOPTS (needs GH_KAFKA_DIR).
kafka_jopts() {
  GH_KAFKA_JOPTS=(-Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError
    -XX:TieredStopAtLevel=1 -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$GH_KAFKA_DIR/log4j2.properties" "-Dkafka.logs.dir=$GH_KAFKA_DIR/logs")
}

# The broker's pid: this shell's, else the pid file (a test in another process restarted it).
kafka_pid() {
  if [ -n "${GH_KAFKA_DIR:-}" ] && [ -f "$GH_KAFKA_DIR/broker.pid" ]; then cat "$GH_KAFKA_DIR/broker.pid"
  else echo "${GH_KAFKA_PID:-}"; fi
}

# Stops the broker (controlled shutdown, SIGKILL after 30 s). Works from any process that has
# GH_KAFKA_DIR, e.g. an outage test run by ctest.
kafka_stop() {
  local pid; pid=$(kafka_pid)
  [ -n "$pid" ] || return 0
  if kill -TERM "$pid" 2>/dev/null; then
    local i
    for i in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -f "${GH_KAFKA_DIR:-/nonexistent}/broker.pid"
  GH_KAFKA_PID=
}

# Restarts a stopped broker on the same ports and data (outage tests), and waits until it
# answers a metadata request. Returns non-zero if it does not come back within 120 s.
kafka_restart_same() {
  [ -n "${GH_KAFKA_DIR:-}" ] && [ -f "$GH_KAFKA_DIR/server.properties" ] || { svc_log "kafka_restart_same: no broker directory (GH_KAFKA_DIR)"; return 1; }
  GH_KAFKA_LIBS=${GH_KAFKA_LIBS:-$GH_CACHE/kafka-$GH_KAFKA_VERSION/libs}
  kafka_jopts
  # Started from a subshell, so the broker is not a child of this shell: a test's final
  # `wait` must not wait for it, and it outlives the test that restarted it. scripts/test.sh
  # stops it through the pid file.
  ( setsid java "${GH_KAFKA_JOPTS[@]}" -cp "$GH_KAFKA_LIBS/*" kafka.Kafka "$GH_KAFKA_DIR/server.properties" \
      >>"$GH_KAFKA_DIR/broker.log" 2>&1 </dev/null &
    echo $! >"$GH_KAFKA_DIR/broker.pid" )
  GH_KAFKA_PID=$(cat "$GH_KAFKA_DIR/broker.pid")
  local addr; addr=$(grep -o '^advertised.listeners=PLAINTEXT://[^,]*' "$GH_KAFKA_DIR/server.properties" | cut -d/ -f3)
  local i
  for i in $(seq 1 240); do
    kill -0 "$GH_KAFKA_PID" 2>/dev/null || { svc_log "Kafka exited during restart"; tail -30 "$GH_KAFKA_DIR/broker.log" >&2; return 1; }
    kafka_ready "$addr" && return 0
    sleep 0.5
  done
  svc_log "Kafka not ready 120 s after the restart"
  return 1
}

# Stops what is running and removes the scratch directory (logs included).
services_stop() {
  kafka_cluster_stop
  kafka_stop
  pg_stop
  case "$GH_SVC_DIR" in /tmp/gpuhealth-services.*) rm -rf "$GH_SVC_DIR" ;; esac
}

# ---------------------------------------------------------------- a 3-node Kafka cluster
# kafka_cluster_start: a replicated Apache Kafka 4.x cluster in KRaft mode on loopback for the
# fault suite (issue 23): three JVMs, each a broker and a controller (node ids 1..3; the three
# controllers are the static quorum, so any one may be the active controller), data under
# $GH_KC_DIR/N. Broker defaults: replication factor 3, min.insync.replicas=2, 4 partitions, the
# internal topics replicated 3 ways too. Exports GH_KC_BROKERS (bootstrap list) and GH_KC_DIR.
# kc_stop N (SIGTERM: controlled shutdown), kc_kill9 N, kc_start N (same ports and data),
# kc_pid N, kc_wait_up [N...], kc_active_controller, kafka_cluster_stop.
kafka_cluster_start() {
  kafka_fetch || return 1
  GH_KC_DIR="$GH_SVC_DIR/kcluster"
  kafka_cluster_stop
  rm -rf "$GH_KC_DIR" # a fresh cluster: a scratch directory
  mkdir -p "$GH_KC_DIR"
  local n voters="" bl="" bp=() cp=() p
  for n in 1 2 3; do
    p=$(free_port); while [[ " ${bp[*]} ${cp[*]} " == *" $p "* ]]; do p=$(free_port); done; bp[$n]=$p
    p=$(free_port); while [[ " ${bp[*]} ${cp[*]} " == *" $p "* ]]; do p=$(free_port); done; cp[$n]=$p
    voters+="${voters:+,}$n@127.0.0.1:${cp[$n]}"
    bl+="${bl:+,}127.0.0.1:${bp[$n]}"
  done
  for n in 1 2 3; do
    mkdir -p "$GH_KC_DIR/$n"
    cat >"$GH_KC_DIR/$n/server.properties" <<PROPS
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:${bp[$n]},CONTROLLER://127.0.0.1:${cp[$n]}
advertised.listeners=PLAINTEXT://127.0.0.1:${bp[$n]}
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$GH_KC_DIR/$n/data
num.partitions=4
default.replication.factor=3
min.insync.replicas=2
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
num.replica.fetchers=1
offsets.topic.replication.factor=3
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
unclean.leader.election.enable=false
log.cleaner.dedupe.buffer.size=16777216
log.flush.interval.messages=9223372036854775807
PROPS
    cp "$GH_KAFKA_DIR/log4j2.properties" "$GH_KC_DIR/$n/" 2>/dev/null || cat >"$GH_KC_DIR/$n/log4j2.properties" <<'PROPS'
status = warn
appender.console.type = Console
appender.console.name = CONSOLE
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = ${sys:kafka.root.level:-INFO}
rootLogger.appenderRef.console.ref = CONSOLE
logger.req.name = kafka.request.logger
logger.req.level = WARN
PROPS
  done
  local fp=()
  for n in 1 2 3; do
    kc_jopts "$n"
    java "${GH_KC_JOPTS[@]}" -Dkafka.root.level=WARN -cp "$GH_KAFKA_LIBS/*" kafka.tools.StorageTool format \
      -t NDNhZjY0ZTc0YjdkNDY2Mw -c "$GH_KC_DIR/$n/server.properties" >"$GH_KC_DIR/$n/format.log" 2>&1 &
    fp+=($!)
  done
  local rc=0; for p in "${fp[@]}"; do wait "$p" || rc=1; done
  [ $rc = 0 ] || { svc_log "kafka cluster: storage format failed:"; cat "$GH_KC_DIR"/*/format.log >&2; return 1; }
  export GH_KC_DIR GH_KC_BROKERS="$bl"
  for n in 1 2 3; do kc_start "$n" nowait || return 1; done
  kc_wait_up 1 2 3 || return 1
  svc_log "Kafka cluster (3 KRaft nodes, each broker + controller) on $GH_KC_BROKERS (logs $GH_KC_DIR/N/broker.log)"
}

kc_jopts() {
  GH_KC_JOPTS=(-Xms128m -Xmx384m -XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError -XX:TieredStopAtLevel=1
    -Djava.awt.headless=true "-Dlog4j2.configurationFile=$GH_KC_DIR/$1/log4j2.properties"
    "-Dkafka.logs.dir=$GH_KC_DIR/$1/logs")
}
kc_pid() { cat "$GH_KC_DIR/$1/pid" 2>/dev/null; }
kc_addr() { grep -o '^advertised.listeners=PLAINTEXT://[^,]*' "$GH_KC_DIR/$1/server.properties" | cut -d/ -f3; }
# kc_start N [nowait]: starts node N (not a child of this shell: see kafka_restart_same)
kc_start() {
  kc_jopts "$1"
  ( setsid java "${GH_KC_JOPTS[@]}" -cp "$GH_KAFKA_LIBS/*" kafka.Kafka "$GH_KC_DIR/$1/server.properties" \
      >>"$GH_KC_DIR/$1/broker.log" 2>&1 </dev/null &
    echo $! >"$GH_KC_DIR/$1/pid" )
  [ "${2:-}" = nowait ] || kc_wait_up "$1"
}
# kc_wait_up N...: until each node answers a metadata request listing all of the nodes given
kc_wait_up() {
  local i n ok
  for i in $(seq 1 360); do
    ok=1
    for n in "$@"; do
      kill -0 "$(kc_pid "$n")" 2>/dev/null || { svc_log "kafka node $n exited:"; tail -20 "$GH_KC_DIR/$n/broker.log" >&2; return 1; }
      [ "$(kcat -b "$(kc_addr "$n")" -L -m 3 2>/dev/null | grep -cE '^  broker [0-9]+ at')" -ge $# ] || ok=0
    done
    [ $ok = 1 ] && return 0
    sleep 0.5
  done
  svc_log "kafka nodes $* not up after 180 s"
  return 1
}
kc_stop() { # SIGTERM: controlled shutdown (SIGKILL after 60 s)
  local pid; pid=$(kc_pid "$1"); [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  local i; for i in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -KILL "$pid" 2>/dev/null; rm -f "$GH_KC_DIR/$1/pid"
}
kc_kill9() {
  local pid; pid=$(kc_pid "$1"); [ -n "$pid" ] || return 0
  kill -KILL "$pid" 2>/dev/null
  local i; for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$GH_KC_DIR/$1/pid"
}
# The node id of the active controller: the quorum leader of the newest epoch in the nodes'
# quorum-state files (KRaft's own record of the raft election)
kc_active_controller() {
  python3 - "$GH_KC_DIR" <<'PY'
import glob, json, sys
best = (-1, "")
for f in glob.glob(sys.argv[1] + "/*/data/__cluster_metadata-0/quorum-state"):
    try:
        d = json.load(open(f))
    except (OSError, ValueError):
        continue
    d = d.get("data", d)
    if d.get("leaderId", -1) >= 0 and d.get("leaderEpoch", -1) > best[0]:
        best = (d["leaderEpoch"], str(d["leaderId"]))
print(best[1])
PY
}
kafka_cluster_stop() { # also from another process than the one that started it (run.sh)
  local GH_KC_DIR=${GH_KC_DIR:-${GH_SVC_DIR:-/nonexistent}/kcluster}
  [ -d "$GH_KC_DIR" ] || return 0
  local n sp=(); for n in 1 2 3; do [ -f "$GH_KC_DIR/$n/pid" ] && kill -CONT "$(kc_pid "$n")" 2>/dev/null; kc_stop "$n" & sp+=($!); done
  for n in "${sp[@]}"; do wait "$n"; done
}
