#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bus/kafka_conf.h"
#include "collect/scrape.h"
#include "collect/shard.h"
#include "core/log.h"
#include "store/pg.h"
#include "version.h"

#define M_SIM    (CLI_MOCK | CLI_TUI | CLI_DAEMON)
#define M_SCRAPE (CLI_COLLECTOR | CLI_TUI | CLI_DAEMON)
#define M_KAFKA  (CLI_COLLECTOR | CLI_SINK | CLI_SCORER | CLI_TUI | CLI_DAEMON | CLI_KAFKA)
#define M_DBASE  (CLI_SINK | CLI_SCORER | CLI_STATUS | CLI_DB | CLI_API | CLI_TUI | CLI_DAEMON)
#define M_HEALTH (CLI_SCORER | CLI_TUI | CLI_DAEMON)
#define M_ECON   (CLI_SCORER | CLI_STATUS | CLI_API | CLI_TUI | CLI_DAEMON)
#define M_NVML   (CLI_MOCK | CLI_COLLECTOR | CLI_TUI | CLI_DAEMON | CLI_STATUS)
#define M_ALL    0x3ffu
#define NORANGE  1, 0

/* The one table: --help, the man page test and the config file all follow it. */
static const struct config_option options[] = {
    /* simulation and exporter */
    {"gpus", 0, "MOCK_GPUS", CONFIG_INT, "8", "N",
     "simulated GPUs (at most 1024: what one collector scrape takes)", M_SIM, 1, 1024, NULL, 0},
    {"model", 0, "MOCK_MODEL", CONFIG_STR, "A100-SXM4-80GB", "NAME",
     "GPU model: A100-SXM4-80GB, H100-SXM5-80GB, H200", M_SIM, NORANGE, NULL, 0},
    {"seed", 0, "MOCK_SEED", CONFIG_INT, "1", "N", "seed of the deterministic simulation", M_SIM, 0,
     4294967295.0, NULL, 0},
    {"speed", 0, "MOCK_SPEED", CONFIG_DOUBLE, "1", "X", "simulated seconds per real second", M_SIM,
     0.001, 100000, NULL, 0},
    {"inject", 0, "MOCK_INJECT", CONFIG_LIST, NULL, "SPEC",
     "inject a fault, e.g. gpu=3,fault=dbe,at=30s (repeatable; ';' separates them in the "
     "environment)",
     M_SIM, NORANGE, ";", 0},
    {"listen", 0, "LISTEN_ADDR", CONFIG_STR, NULL, "HOST:PORT",
     "address to serve on (mock-dcgm default :9400, api :8080; the console picks a free "
     "loopback port)",
     M_SIM | CLI_API, NORANGE, NULL, 0},
    {"poll-interval", 0, "POLL_INTERVAL", CONFIG_DURATION, "10", "S",
     "simulated seconds between value updates", M_SIM, 0.001, 86400, NULL, 0},
    {"host-label", 0, "MOCK_HOST_LABEL", CONFIG_STR, "hostname", "NAME",
     "spelling of the host label: hostname (current dcgm-exporter) or Hostname (older)", M_SIM,
     NORANGE, NULL, 0},
    {"hostname", 0, "MOCK_HOSTNAME", CONFIG_STR, NULL, "NAME",
     "value of the host label (default: this machine's host name)", M_SIM, NORANGE, NULL, 0},
    {"k8s", 0, "MOCK_K8S", CONFIG_BOOL, NULL, NULL,
     "label each simulated GPU's series with the Kubernetes pod, namespace and container that "
     "hold it, as dcgm-exporter's pod mapping does (a new pod each workload cycle, none while "
     "idle)",
     M_SIM, NORANGE, NULL, 0},
    /* real GPUs through NVML (src/nvml) */
    {"nvml", 0, NULL, CONFIG_BOOL, NULL, NULL,
     "read this machine's GPUs through NVML (libnvidia-ml.so.1) instead of simulating them or "
     "scraping targets",
     M_NVML, NORANGE, NULL, 0},
    {"nvml-library", 0, "NVML_LIBRARY", CONFIG_STR, NULL, "PATH",
     "the NVML library --nvml loads (default: libnvidia-ml.so.1 from the library search path)",
     M_NVML, NORANGE, NULL, 0},
    /* issue #25: a console or daemon with --db on a machine without GPUs is a read-only viewer */
    {"simulate", 0, NULL, CONFIG_BOOL, NULL, NULL,
     "simulate GPUs (and write them to --db) even when --db is given and this machine has no "
     "GPUs, where the console is otherwise a read-only viewer of the fleet database",
     CLI_TUI | CLI_DAEMON, NORANGE, NULL, 0},
    {"utc", 0, NULL, CONFIG_BOOL, NULL, NULL, "console: times in UTC instead of local time",
     CLI_TUI, NORANGE, NULL, 0},
    /* collector */
    {"target", 0, "SCRAPE_TARGETS", CONFIG_LIST, NULL, "URL",
     "an exporter's /metrics URL (repeatable; comma-separated in the environment)",
     M_SCRAPE | CLI_STATUS, NORANGE, ",", 0},
    {"interval", 0, "COLLECTION_INTERVAL", CONFIG_DURATION, "10", "S",
     "scrape period (the console's default: 2; the scorer: the expected time between "
     "samples of a GPU)",
     M_SCRAPE | CLI_SCORER | CLI_STATUS, 0.01, 86400, NULL, 0},
    {"cluster", 0, "CLUSTER", CONFIG_STR, NULL, "NAME", "cluster name added to every event",
     M_SCRAPE, NORANGE, NULL, 0},
    {"datacenter", 0, "DATACENTER", CONFIG_STR, NULL, "NAME", "datacenter added to every event",
     M_SCRAPE, NORANGE, NULL, 0},
    {"rack", 0, "RACK", CONFIG_STR, NULL, "NAME", "rack added to every event", M_SCRAPE, NORANGE,
     NULL, 0},
    {"output", 0, NULL, CONFIG_STR, NULL, "-",
     "write the events as JSON lines to stdout ('-') instead of Kafka", CLI_COLLECTOR, NORANGE,
     NULL, 0},
    {"once", 0, NULL, CONFIG_BOOL, NULL, NULL,
     "scrape every target once, deliver the events, then exit (1 if any target failed)",
     CLI_COLLECTOR, NORANGE, NULL, 0},
    {"targets-file", 0, "SCRAPE_TARGETS_FILE", CONFIG_STR, NULL, "FILE",
     "more targets, one URL per line ('#' comments); re-read on SIGHUP", M_SCRAPE | CLI_STATUS,
     NORANGE, NULL, 0},
    {"file-sd", 0, "SCRAPE_FILE_SD", CONFIG_LIST, NULL, "PATH",
     "targets from a Prometheus file_sd file (JSON, or YAML when named .yml/.yaml; repeatable; "
     "comma-separated in the environment); re-read when it changes and on SIGHUP",
     M_SCRAPE, NORANGE, ",", 0},
    {"http-sd", 0, "SCRAPE_HTTP_SD", CONFIG_LIST, NULL, "URL",
     "targets from a Prometheus http_sd endpoint, polled every --sd-refresh (repeatable)", M_SCRAPE,
     NORANGE, ",", 0},
    {"dns-sd", 0, "SCRAPE_DNS_SD", CONFIG_LIST, NULL, "NAME",
     "targets from the SRV records of NAME (or A/AAAA with --dns-sd-port), again at each TTL's "
     "end (repeatable)",
     M_SCRAPE, NORANGE, ",", 0},
    {"dns-sd-port", 0, "SCRAPE_DNS_SD_PORT", CONFIG_INT, "0", "PORT",
     "--dns-sd asks for A/AAAA records and scrapes this port (default 0: SRV records)", M_SCRAPE, 0,
     65535, NULL, 0},
    {"dns-server", 0, "SCRAPE_DNS_SERVER", CONFIG_STR, NULL, "IP:PORT",
     "the DNS server --dns-sd asks (default: the system's resolver, /etc/resolv.conf)", M_SCRAPE,
     NORANGE, NULL, 0},
    {"sd-refresh", 0, "SCRAPE_SD_REFRESH", CONFIG_DURATION, "60", "S",
     "how often --http-sd is polled (its request times out after the smaller of this and 10 s)",
     M_SCRAPE, 0.1, 86400, NULL, 0},
    {"shard", 0, "SHARD", CONFIG_STR, NULL, "I/N",
     "scrape only this collector's shard of the targets: those whose URL's hash (MD5, as "
     "Prometheus' hashmod) modulo N is I (0 <= I < N); N collectors over one list scrape each "
     "target once, and a changed list is split again",
     M_SCRAPE, NORANGE, NULL, 0},
    {"scrape-timeout", 0, "SCRAPE_TIMEOUT", CONFIG_DURATION, "5", "S",
     "longest time one scrape may take", M_SCRAPE | CLI_STATUS, 0.01, 3600, NULL, 0},
    {"max-body", 0, "SCRAPE_MAX_BODY", CONFIG_INT, "16777216", "BYTES",
     "largest decoded scrape body; bigger transfers are aborted and counted", M_SCRAPE | CLI_STATUS,
     1024, 1073741824, NULL, 0},
    {"scrape-gzip", 0, "SCRAPE_GZIP", CONFIG_STR, "auto", "WHEN",
     "ask exporters for gzip bodies: auto (not on loopback, where it only costs CPU), always or "
     "never",
     M_SCRAPE | CLI_STATUS, NORANGE, NULL, 0},
    {"scrape-threads", 0, "SCRAPE_THREADS", CONFIG_INT, NULL, "N",
     "threads that scrape and parse, sharing the targets (default: one per online CPU, no more "
     "than the targets at start unless discovery is used; a number given is used as given)",
     M_SCRAPE | CLI_STATUS, 1, 64, NULL, 0},
    {"buffer-events", 0, "BUFFER_EVENTS", CONFIG_INT, "100000", "N",
     "events kept in memory while Kafka is away (beyond librdkafka's own queue)", M_SCRAPE, 1,
     100000000, NULL, 0},
    {"spool-dir", 0, "SPOOL_DIR", CONFIG_STR, NULL, "DIR",
     "spill events past --buffer-events to files here, and keep undelivered events across "
     "restarts (default: no spool)",
     M_SCRAPE, NORANGE, NULL, 0},
    {"spool-max", 0, "SPOOL_MAX_MB", CONFIG_INT, "1024", "MIB",
     "disk bound of the spool; past it the oldest events are dropped and counted", M_SCRAPE, 1,
     1048576, NULL, 0},
    {"buffer-hours", 0, "BUFFER_HOURS", CONFIG_DOUBLE, "1", "H",
     "console and --daemon with the in-process broker: while the sink is behind (the database "
     "away), keep up to this many hours of the fleet's events in memory (at least "
     "--buffer-events) instead of giving the broker more than it can keep",
     CLI_TUI | CLI_DAEMON, 0, 8760, NULL, 0},
    {"buffer-max", 0, "BUFFER_MAX_MB", CONFIG_INT, "1024", "MIB",
     "console and --daemon: memory bound of the events held back; past it (and past --spool-max "
     "with --spool-dir) the oldest are dropped and counted",
     CLI_TUI | CLI_DAEMON, 1, 1048576, NULL, 0},
    {"metrics-listen", 0, "METRICS_LISTEN", CONFIG_STR, NULL, "HOST:PORT",
     "serve Prometheus text on /metrics (default: off): the collector's own health; the "
     "scorer's own counters and each GPU's health score, status, failure probability and "
     "recommended action",
     CLI_COLLECTOR | CLI_SCORER, NORANGE, NULL, 0},
    /* Kafka */
    {"brokers", 0, "KAFKA_BOOTSTRAP_SERVERS", CONFIG_STR, NULL, "LIST",
     "Kafka bootstrap servers (absent: the console and --daemon start an in-process broker)",
     M_KAFKA, NORANGE, NULL, 0},
    {"topic", 0, "KAFKA_TOPIC", CONFIG_STR, "gpu-metrics-raw", "NAME", "topic of the sample events",
     M_KAFKA, NORANGE, NULL, 0},
    {"X", 'X', NULL, CONFIG_LIST, NULL, "KEY=VALUE",
     "any librdkafka property (security.protocol, sasl.*, ssl.*, ...); repeatable", M_KAFKA,
     NORANGE, NULL, 0},
    {"group", 0, "KAFKA_GROUP_ID", CONFIG_STR, "gpuhealth-sink", "NAME",
     "consumer group; sinks in one group share the partitions", CLI_SINK | CLI_DAEMON | CLI_TUI,
     NORANGE, NULL, 0},
    {"dlq-topic", 0, "KAFKA_DLQ_TOPIC", CONFIG_STR, "gpu-metrics-dlq", "NAME",
     "dead-letter topic for events the sink rejects", CLI_SINK | CLI_DAEMON | CLI_TUI | CLI_KAFKA,
     NORANGE, NULL, 0},
    {"partitions", 0, "KAFKA_PARTITIONS", CONFIG_INT, "4", "N",
     "kafka init: partitions of a topic it creates", CLI_KAFKA, 1, 100000, NULL, 0},
    {"replication-factor", 0, "KAFKA_REPLICATION_FACTOR", CONFIG_INT, "3", "N",
     "kafka init: replicas of each partition of a topic it creates (at most the brokers)",
     CLI_KAFKA, 1, 32, NULL, 0},
    {"min-insync", 0, "KAFKA_MIN_INSYNC", CONFIG_INT, "2", "N",
     "kafka init: min.insync.replicas of a topic it creates (a write waits for this many "
     "replicas)",
     CLI_KAFKA, 1, 32, NULL, 0},
    /* database */
    {"db", 0, "DATABASE_URL", CONFIG_STR, NULL, "CONNINFO",
     "PostgreSQL conninfo or URI (else libpq's PG* variables; the console and --daemon start a "
     "private server)",
     M_DBASE, NORANGE, NULL, 0},
    {"batch-size", 0, "BATCH_SIZE", CONFIG_INT, "5000", "N",
     "rows per database transaction (upper bound)", CLI_SINK | CLI_SCORER | CLI_TUI | CLI_DAEMON, 1,
     1000000, NULL, 0},
    {"batch-timeout", 0, "BATCH_TIMEOUT", CONFIG_DURATION, "5", "S",
     "longest wait before a partial batch is written", CLI_SINK | CLI_SCORER | CLI_TUI | CLI_DAEMON,
     0.001, 3600, NULL, 0},
    {"max-clock-skew", 0, "MAX_CLOCK_SKEW", CONFIG_DURATION, "5m", "S",
     "events timed further ahead of this host's clock are dead letters (sink and scorer)",
     CLI_SINK | CLI_SCORER | CLI_TUI | CLI_DAEMON, 0.001, 86400, NULL, 0},
    {"schema-version", 0, NULL, CONFIG_INT, "0", "N",
     "migrate only up to schema version N (0: the newest)", CLI_DB, 0, 1000, NULL, 0},
    {"retention", 0, "RETENTION", CONFIG_DURATION, NULL, "S",
     "keep raw samples this long, e.g. 14d; stored in the database and kept by later migrates "
     "without it (a new database starts at 7d)",
     CLI_DB, 3600, 1e10, NULL, 0},
    {"compress-after", 0, "COMPRESS_AFTER", CONFIG_DURATION, NULL, "S",
     "TimescaleDB: compress samples older than this; stored and kept like --retention (a new "
     "database starts at 1h)",
     CLI_DB, 60, 1e10, NULL, 0},
    {"storage", 0, "STORAGE", CONFIG_STR, "auto", "KIND",
     "auto (TimescaleDB when available, preloaded and >= 2.18.1, else native partitions), "
     "timescaledb (fail unless it can be used) or partitioned",
     CLI_DB, NORANGE, NULL, 0},
    {"maintenance-interval", 0, "MAINTENANCE_INTERVAL", CONFIG_DURATION, "10m", "S",
     "how often the sink creates partitions ahead and drops expired ones",
     CLI_SINK | CLI_DAEMON | CLI_TUI, 1, 86400, NULL, 0},
    {"max-client-connections", 0, "API_MAX_CLIENT_CONNECTIONS", CONFIG_INT, "32", "N",
     "connections one client address may hold open at once; more are closed as they arrive",
     CLI_API, 1, 256, NULL, 0},
    {"stats-interval", 0, "STATS_INTERVAL", CONFIG_DURATION, "10", "S",
     "log a one-line summary this often (0: never)",
     CLI_SINK | CLI_COLLECTOR | CLI_SCORER | CLI_MOCK | CLI_DAEMON | CLI_API, 0, 86400, NULL, 0},
    /* health scorer */
    {"scorer-group", 0, "SCORER_GROUP_ID", CONFIG_STR, "gpuhealth-scorer", "NAME",
     "the scorer's consumer group on the sample topic", M_HEALTH, NORANGE, NULL, 0},
    {"alerts-topic", 0, "ALERTS_TOPIC", CONFIG_STR, "gpu-health-alerts", "NAME",
     "Kafka topic of raised and cleared alerts ('' for none)", M_HEALTH | CLI_KAFKA, NORANGE, NULL,
     0},
    {"webhook", 0, "ALERT_WEBHOOK_URL", CONFIG_STR, NULL, "URL",
     "POST every raised and cleared alert as JSON to this URL", M_HEALTH, NORANGE, NULL, 0},
    {"webhook-timeout", 0, "WEBHOOK_TIMEOUT", CONFIG_DURATION, "5", "S",
     "time limit of one webhook attempt", M_HEALTH, 0.001, 600, NULL, 0},
    {"webhook-retries", 0, "WEBHOOK_RETRIES", CONFIG_INT, "3", "N",
     "webhook attempts after the first, with exponential backoff", M_HEALTH, 0, 100, NULL, 0},
    {"alertmanager", 0, "ALERTMANAGER_URL", CONFIG_LIST, NULL, "URL",
     "post alerts to this Prometheus Alertmanager (v2 API), e.g. http://alertmanager:9093 "
     "(repeatable: every member of an HA pair; comma-separated in the environment)",
     M_HEALTH, NORANGE, ",", 0},
    {"alertmanager-resend", 0, "ALERTMANAGER_RESEND", CONFIG_DURATION, "60", "S",
     "send firing alerts to Alertmanager again this often", M_HEALTH, 0.1, 86400, NULL, 0},
    {"api-url", 0, "GPUHEALTH_API_URL", CONFIG_STR, NULL, "URL",
     "base URL of 'gpuhealth api' for links in alerts (Alertmanager's generatorURL)", M_HEALTH,
     NORANGE, NULL, 0},
    {"missing-intervals", 0, "MISSING_INTERVALS", CONFIG_INT, "3", "K",
     "a GPU silent for more than K intervals while its host reports fell off the bus", M_HEALTH, 1,
     1000, NULL, 0},
    {"alert-raise-after", 0, "ALERT_RAISE_AFTER", CONFIG_INT, "3", "N",
     "raise an alert after N consecutive worse samples (fail-class events: at once)", M_HEALTH, 1,
     1000, NULL, 0},
    {"alert-clear-after", 0, "ALERT_CLEAR_AFTER", CONFIG_INT, "6", "N",
     "clear an alert after N consecutive healthy samples", M_HEALTH, 1, 1000, NULL, 0},
    {"horizon", 0, "PREDICT_HORIZON", CONFIG_DURATION, "24h", "S",
     "horizon of the failure prediction", M_HEALTH | CLI_STATUS, 60, 1e8, NULL, 0},
    {"health-row-interval", 0, "HEALTH_ROW_INTERVAL", CONFIG_DURATION, "60", "S",
     "write a GPU's health and prediction rows when its status, recommendation or score band "
     "(tens) changes, else at most once per S (0: every sample)",
     M_HEALTH & ~CLI_STATUS, 0, 86400, NULL, 0},
    {"risk-alert", 0, "RISK_ALERT_LEVEL", CONFIG_DOUBLE, "0.5", "P",
     "failure probability that raises a failure_risk alert", M_HEALTH | CLI_STATUS, 0.001, 1, NULL,
     0},
    {"gpu-hour-value", 0, "GPU_HOUR_VALUE", CONFIG_DOUBLE, "2.5", "X",
     "value of one GPU-hour, for the recommendation", M_ECON, 0, 1e9, NULL, 0},
    {"rma-cost", 0, "RMA_COST", CONFIG_DOUBLE, "1500", "X",
     "direct cost of an RMA (logistics, labour, spare)", M_ECON, 0, 1e12, NULL, 0},
    {"checkpoint-interval", 0, "CHECKPOINT_INTERVAL", CONFIG_DURATION, "1h", "S",
     "how often the jobs checkpoint", M_ECON, 1, 1e8, NULL, 0},
    {"restart-time", 0, "RESTART_TIME", CONFIG_DURATION, "15m", "S",
     "time to restart a job from its checkpoint", M_ECON, 0, 1e8, NULL, 0},
    {"job-gpus", 0, "JOB_GPUS", CONFIG_INT, "8", "N",
     "GPUs of the job that a GPU failure interrupts", M_ECON, 1, 1000000, NULL, 0},
    {"gpus-per-node", 0, "GPUS_PER_NODE", CONFIG_INT, "8", "N", "GPUs idled by a node reboot",
     M_ECON, 1, 1024, NULL, 0},
    {"drain-downtime", 0, "DRAIN_DOWNTIME", CONFIG_DURATION, "4h", "S",
     "time a drained GPU stays out of service", M_ECON, 0, 1e9, NULL, 0},
    {"reset-downtime", 0, "RESET_DOWNTIME", CONFIG_DURATION, "6m", "S", "downtime of a GPU reset",
     M_ECON, 0, 1e9, NULL, 0},
    {"reboot-downtime", 0, "REBOOT_DOWNTIME", CONFIG_DURATION, "15m", "S",
     "downtime of a node reboot", M_ECON, 0, 1e9, NULL, 0},
    {"rma-downtime", 0, "RMA_DOWNTIME", CONFIG_DURATION, "7d", "S",
     "time until an RMA'd GPU is replaced", M_ECON, 0, 1e10, NULL, 0},
    {"service-life", 0, "SERVICE_LIFE", CONFIG_DURATION, "730d", "S",
     "remaining service life of a GPU (what a fault no action repairs costs)", M_ECON, 3600, 1e10,
     NULL, 0},
    {"residual-risk", 0, "RESIDUAL_RISK", CONFIG_DOUBLE, "0.2", "P",
     "share of the failure risk left after a reset or reboot", M_ECON, 0, 1, NULL, 0},
    /* status */
    {"json", 0, NULL, CONFIG_BOOL, NULL, NULL, "print JSON instead of a table", CLI_STATUS, NORANGE,
     NULL, 0},
    /* console */
    {"refresh", 0, "GPUHEALTH_REFRESH", CONFIG_DURATION, NULL, "S",
     "console: seconds between screen updates, e.g. 0.5 or 2s (overrides --delay)", CLI_TUI, 0.05,
     60, NULL, 0},
    {"delay", 0, NULL, CONFIG_INT, "10", "N",
     "console: tenths of a second between screen updates, as in htop", CLI_TUI, 1, 600, NULL, 0},
    {"no-unicode", 'U', NULL, CONFIG_BOOL, NULL, NULL,
     "console: ASCII only (also when the locale is not UTF-8)", CLI_TUI, NORANGE, NULL, 0},
    {"no-mouse", 'M', NULL, CONFIG_BOOL, NULL, NULL,
     "console: leave the mouse to the terminal (no click to select, no wheel)", CLI_TUI, NORANGE,
     NULL, 0},
    /* everywhere */
    {"duration", 0, NULL, CONFIG_DURATION, NULL, "S", "run S seconds, then stop cleanly (exit 0)",
     M_ALL & ~(CLI_STATUS | CLI_DB | CLI_KAFKA), 0, 1e9, NULL, 0},
    {"config", 'c', "GPUHEALTH_CONFIG", CONFIG_STR, NULL, "FILE",
     "key = value file with the long option names as keys", M_ALL, NORANGE, NULL, 0},
    {"log-level", 0, "LOG_LEVEL", CONFIG_STR, "info", "L", "error, warn, info or debug", M_ALL,
     NORANGE, NULL, 0},
    {"no-color", 'C', "NO_COLOR", CONFIG_BOOL, NULL, NULL, "no colours in the console", M_ALL,
     NORANGE, NULL, CONFIG_F_ENV_NONEMPTY},
    {"help", 'h', NULL, CONFIG_BOOL, NULL, NULL, "show this help and exit", M_ALL, NORANGE, NULL,
     0},
    {"version", 'V', NULL, CONFIG_BOOL, NULL, NULL, "show the version and exit", M_ALL, NORANGE,
     NULL, 0},
};

static const struct {
	enum cli_mode mode;
	const char *name;
	const char *summary;
	const char *usage;
} modes[] = {
    {CLI_TUI, "tui", "the interactive console (the default when stdout is a terminal)",
     "gpuhealth [tui] [OPTIONS]"},
    {CLI_DAEMON, "daemon", "the console's pipeline with no screen (also: gpuhealth --daemon)",
     "gpuhealth --daemon [OPTIONS]"},
    {CLI_MOCK, "mock-dcgm", "simulated GPUs behind a dcgm-exporter compatible /metrics",
     "gpuhealth mock-dcgm [OPTIONS]"},
    {CLI_COLLECTOR, "collector", "scrape exporters, publish sample events to Kafka",
     "gpuhealth collector [OPTIONS]"},
    {CLI_SINK, "sink", "consume sample events, write them to PostgreSQL/TimescaleDB",
     "gpuhealth sink [OPTIONS]"},
    {CLI_SCORER, "scorer", "health scores, failure predictions and alerts",
     "gpuhealth scorer [OPTIONS]"},
    {CLI_STATUS, "status", "one-shot fleet status, then exit",
     "gpuhealth status [--json] [OPTIONS]"},
    {CLI_DB, "db", "database administration: 'db migrate' creates or upgrades the schema",
     "gpuhealth db migrate [OPTIONS]"},
    {CLI_API, "api", "the read-only HTTP JSON API over the database", "gpuhealth api [OPTIONS]"},
    {CLI_KAFKA, "kafka",
     "Kafka administration: 'kafka init' creates the topics (replication factor 3, "
     "min.insync.replicas=2 by default) or says how existing ones differ",
     "gpuhealth kafka init [OPTIONS]"},
};

const struct config_option *cli_options(size_t *n)
{
	*n = sizeof(options) / sizeof(options[0]);
	return options;
}

const char *cli_mode_name(enum cli_mode mode)
{
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (modes[i].mode == mode)
			return modes[i].name;
	return "?";
}

const char *cli_mode_summary(enum cli_mode mode)
{
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (modes[i].mode == mode)
			return modes[i].summary;
	return "";
}

static int find_mode(const char *word, enum cli_mode *out)
{
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (strcmp(word, modes[i].name) == 0) {
			*out = modes[i].mode;
			return 0;
		}
	return -ENOENT;
}

void cli_print_version(FILE *out)
{
	fprintf(out, "gpuhealth %s\n", GPUHEALTH_VERSION);
}

void cli_print_help(FILE *out, enum cli_mode mode)
{
	size_t i;
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (modes[i].mode == mode)
			break;
	if (i == sizeof(modes) / sizeof(modes[0]))
		return;
	fprintf(out, "Usage: %s\n", modes[i].usage);
	if (mode == CLI_TUI) {
		fputs("       gpuhealth COMMAND [OPTIONS]\n\n"
		      "GPU fleet health monitor: simulated or real GPUs -> collector -> Kafka -> "
		      "sink ->\n"
		      "PostgreSQL, with health scores and an interactive console.\n\nCommands:\n",
		      out);
		for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++)
			fprintf(out, "  %-11s %s\n", modes[m].name, modes[m].summary);
		fputs("\n'gpuhealth COMMAND --help' lists the options of one command.\n\n"
		      "Options of the console:\n",
		      out);
	} else {
		fprintf(out, "%s.\n\nOptions:\n", modes[i].summary);
	}
	for (size_t k = 0; k < sizeof(options) / sizeof(options[0]); k++) {
		const struct config_option *o = &options[k];
		if (!(o->modes & mode))
			continue;
		char lhs[64];
		if (o->name[1] == '\0')
			snprintf(lhs, sizeof(lhs), "-%c %s", o->short_name, o->arg ? o->arg : "");
		else if (o->short_name)
			snprintf(lhs, sizeof(lhs), "-%c, --%s%s%s", o->short_name, o->name,
			         o->arg ? " " : "", o->arg ? o->arg : "");
		else
			snprintf(lhs, sizeof(lhs), "    --%s%s%s", o->name, o->arg ? " " : "",
			         o->arg ? o->arg : "");
		fprintf(out, "  %-28s %s", lhs, o->help);
		if (o->def && o->type != CONFIG_BOOL)
			fprintf(out, " (default %s)", o->def);
		if (o->env)
			fprintf(out, " [env %s]", o->env);
		fputc('\n', out);
	}
	fputs("\nExit status: 0 success or clean stop, 1 runtime failure, 2 bad usage.\n"
	      "See gpuhealth(1) for details.\n",
	      out);
}

enum cli_action cli_load(int argc, char **argv, const char *(*getenv_fn)(const char *),
                         int stdout_is_tty, enum cli_mode *mode_out, struct config **cfg_out,
                         char *err, size_t errlen)
{
	enum cli_action act = CLI_USAGE_ERROR;
	struct config *cfg = NULL;
	char **rest = NULL;
	enum cli_mode mode = CLI_TUI;
	int first = 1; /* argv[0] is the program */
	bool explicit_mode = false;

	if (argc > 1 && argv[1][0] != '-') {
		if (find_mode(argv[1], &mode) != 0) {
			snprintf(
			    err, errlen,
			    "unknown command '%s'; commands are tui, daemon, mock-dcgm, collector, "
			    "sink, scorer, status, db, api (see 'gpuhealth --help')",
			    argv[1]);
			goto out;
		}
		explicit_mode = true;
		first = 2;
	}
	/* --daemon anywhere selects the headless mode, as the contract spells it. */
	rest = calloc((size_t)argc + 1, sizeof(*rest));
	if (!rest) {
		snprintf(err, errlen, "out of memory");
		act = CLI_FAILURE;
		goto out;
	}
	int nrest = 0;
	for (int i = first; i < argc; i++) {
		if (strcmp(argv[i], "--daemon") == 0 || strcmp(argv[i], "-d") == 0) {
			if (explicit_mode && mode != CLI_DAEMON && mode != CLI_TUI) {
				snprintf(err, errlen,
				         "'--daemon' cannot be combined with '%s'; "
				         "run 'gpuhealth --daemon' or 'gpuhealth %s' alone",
				         cli_mode_name(mode), cli_mode_name(mode));
				goto out;
			}
			mode = CLI_DAEMON;
			explicit_mode = true;
			continue;
		}
		rest[nrest++] = argv[i];
	}

	size_t n;
	const struct config_option *table = cli_options(&n);
	int rc = config_create(&cfg, table, n, mode, cli_mode_name(mode));
	if (rc) {
		snprintf(err, errlen, "cannot set up the configuration: %s", strerror(-rc));
		act = CLI_FAILURE;
		goto out;
	}
	if (config_parse_args(cfg, nrest, rest, err, errlen) != 0)
		goto out;
	if (config_bool(cfg, "help")) {
		act = CLI_SHOW_HELP;
		goto done;
	}
	if (config_bool(cfg, "version")) {
		act = CLI_SHOW_VERSION;
		goto done;
	}
	/* "gpuhealth --log-level debug sink": the command must come first. */
	if (!explicit_mode && config_positional_count(cfg) > 0) {
		enum cli_mode m;
		const char *word = config_positional(cfg, 0);
		if (find_mode(word, &m) == 0 || strcmp(word, "--daemon") == 0) {
			snprintf(err, errlen,
			         "the command '%s' must come before its options: 'gpuhealth %s "
			         "[OPTIONS]'",
			         word, word);
			goto out;
		}
	}
	if (!explicit_mode && !stdout_is_tty) {
		snprintf(err, errlen,
		         "standard output is not a terminal, so the console cannot start; "
		         "run 'gpuhealth --daemon' for the headless pipeline, or name a command "
		         "(see 'gpuhealth --help')");
		goto out;
	}
	if (config_load_env(cfg, getenv_fn, err, errlen) != 0)
		goto out;
	const char *file = config_str(cfg, "config");
	if (file) {
		rc = config_load_file(cfg, file, err, errlen);
		if (rc) /* a file the user named that is missing or wrong: bad usage */
			goto out;
	}
	enum log_level lvl;
	const char *level = config_str(cfg, "log-level");
	if (log_level_parse(level, &lvl) != 0) {
		snprintf(err, errlen,
		         "%s: '%s' is not a log level (use error, warn, info or debug)",
		         config_source_of(cfg, "log-level") == CONFIG_SRC_ENV ? "LOG_LEVEL"
		                                                              : "--log-level",
		         level);
		goto out;
	}
	const char *gzw = config_str(cfg, "scrape-gzip");
	if (gzw && scrape_gzip_parse(gzw, NULL) != 0) {
		snprintf(err, errlen, "%s: '%s' is not auto, always or never",
		         config_source_of(cfg, "scrape-gzip") == CONFIG_SRC_ENV ? "SCRAPE_GZIP"
		                                                                : "--scrape-gzip",
		         gzw);
		goto out;
	}
	const char *shs = config_str(cfg, "shard");
	struct shard sh;
	if (shs) {
		const char *who = config_source_of(cfg, "shard") == CONFIG_SRC_ENV ? "SHARD"
		                  : config_source_of(cfg, "shard") == CONFIG_SRC_FILE
		                      ? "shard (config file)"
		                      : "--shard";
		if (shard_parse(shs, who, &sh, err, errlen) != 0)
			goto out;
	}
	if (mode == CLI_COLLECTOR && config_str(cfg, "output") &&
	    strcmp(config_str(cfg, "output"), "-") != 0) {
		snprintf(err, errlen, "--output: only '-' (standard output) is supported, got '%s'",
		         config_str(cfg, "output"));
		goto out;
	}
	/* Positional words: only 'db' takes one (the action). */
	size_t npos = config_positional_count(cfg);
	if (mode == CLI_KAFKA) {
		if (npos != 1 || strcmp(config_positional(cfg, 0), "init") != 0) {
			snprintf(err, errlen,
			         "'gpuhealth kafka' needs an action: 'gpuhealth kafka init'%s%s%s",
			         npos ? " (got '" : "", npos ? config_positional(cfg, 0) : "",
			         npos ? "')" : "");
			goto out;
		}
	} else if (mode == CLI_DB) {
		if (npos != 1 || strcmp(config_positional(cfg, 0), "migrate") != 0) {
			snprintf(err, errlen,
			         "'gpuhealth db' needs an action: 'gpuhealth db migrate'%s%s%s",
			         npos ? " (got '" : "", npos ? config_positional(cfg, 0) : "",
			         npos ? "')" : "");
			goto out;
		}
	} else if (npos) {
		snprintf(err, errlen,
		         "unexpected argument '%s' for '%s'; see 'gpuhealth %s --help'",
		         config_positional(cfg, 0), cli_mode_name(mode), cli_mode_name(mode));
		goto out;
	}
	act = CLI_RUN;
done:
	*mode_out = mode;
	*cfg_out = cfg; /* caller owns */
	cfg = NULL;
out:
	config_destroy(cfg);
	free(rest);
	return act;
}

/* True when a URL has credentials before its host (scheme://user[:password]@host). */
static bool url_has_userinfo(const char *url)
{
	const char *a = url ? strstr(url, "://") : NULL;
	if (!a)
		return false;
	a += 3;
	size_t n = strcspn(a, "/?#");
	return memchr(a, '@', n) != NULL;
}

int cli_warn_exposed_secrets(const struct config *cfg)
{
	int n = 0;
	const char *db = config_str(cfg, "db");
	if (config_source_of(cfg, "db") == CONFIG_SRC_FLAG && pg_conninfo_has_password(db)) {
		log_warn("--db holds a password, and the command line is visible to every user of "
		         "this host (ps, /proc/PID/cmdline); keep it off the command line: in "
		         "~/.pgpass or the file PGPASSFILE names, in PGPASSWORD or DATABASE_URL in "
		         "the environment, or as 'db = ...' in the config file (-c FILE)");
		n++;
	}
	if (config_source_of(cfg, "X") == CONFIG_SRC_FLAG) {
		for (size_t i = 0; i < config_list_len(cfg, "X"); i++) {
			const char *kv = config_list_at(cfg, "X", i);
			const char *eq = strchr(kv, '=');
			if (!eq || !kafka_conf_secret_key(kv, (size_t)(eq - kv)))
				continue;
			log_warn(
			    "-X %.*s=... is a secret, and the command line is visible to every "
			    "user of this host (ps, /proc/PID/cmdline); give it as 'X = %.*s=...' "
			    "in the config file (-c FILE) instead",
			    (int)(eq - kv), kv, (int)(eq - kv), kv);
			n++;
		}
	}
	/* the URLs that may carry user:password@, and where to give them instead */
	static const struct {
		const char *name;
		bool list;
		const char *instead;
	} urls[] = {
	    {"target", true,
	     "in SCRAPE_TARGETS in the environment, in --targets-file, or as 'target = ...' in "
	     "the config file (-c FILE)"},
	    {"webhook", false,
	     "in ALERT_WEBHOOK_URL in the environment or as 'webhook = ...' in the config file "
	     "(-c FILE)"},
	    {"alertmanager", true,
	     "in ALERTMANAGER_URL in the environment or as 'alertmanager = ...' in the config "
	     "file (-c FILE)"},
	};
	for (size_t u = 0; u < sizeof(urls) / sizeof(urls[0]); u++) {
		if (config_source_of(cfg, urls[u].name) != CONFIG_SRC_FLAG)
			continue;
		size_t len = urls[u].list ? config_list_len(cfg, urls[u].name) : 1;
		for (size_t i = 0; i < len; i++) {
			const char *url = urls[u].list ? config_list_at(cfg, urls[u].name, i)
			                               : config_str(cfg, urls[u].name);
			if (!url_has_userinfo(url))
				continue;
			log_warn("--%s holds credentials (user:password@), and the command line is "
			         "visible to every user of this host (ps, /proc/PID/cmdline); give "
			         "the URL %s instead",
			         urls[u].name, urls[u].instead);
			n++;
			break; /* one warning per option */
		}
	}
	return n;
}
