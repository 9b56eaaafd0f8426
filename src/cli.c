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
#include "cli_options.def"
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
	/* Positional words: only 'db' and 'kafka' take one (the action). */
	size_t npos = config_positional_count(cfg);
	const char *action = mode == CLI_KAFKA ? "init" : mode == CLI_DB ? "migrate" : NULL;
	if (action) {
		if (npos != 1 || strcmp(config_positional(cfg, 0), action) != 0) {
			snprintf(
			    err, errlen, "'gpuhealth %s' needs an action: 'gpuhealth %s %s'%s%s%s",
			    cli_mode_name(mode), cli_mode_name(mode), action, npos ? " (got '" : "",
			    npos ? config_positional(cfg, 0) : "", npos ? "')" : "");
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
