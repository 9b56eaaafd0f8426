#include "tui.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <locale.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "console.h"
#include "core/log.h"
#include "core/signals.h"
#include "view/fake.h"
#include "viewdb/viewdb.h"
#include "pipeline/pipeline.h"

/* ---- the services' log goes to a file while the screen is ours */

static int mkdir_p(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		int rc = mkdir(path, 0700);
		*p = '/';
		if (rc && errno != EEXIST)
			return -errno;
	}
	if (mkdir(path, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

/* Points fd 2 at the console's log file ($GPUHEALTH_UI_LOG, else
 * $XDG_STATE_HOME/gpuhealth/console.log, else ~/.local/state/gpuhealth/console.log; /dev/null
 * when none can be opened). Returns the saved fd 2 (or -1), path in path. */
static int redirect_stderr(char *path, size_t len)
{
	const char *env = getenv("GPUHEALTH_UI_LOG");
	char dir[512] = "";
	if (env && env[0]) {
		snprintf(path, len, "%s", env);
	} else {
		const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
		if (xdg && xdg[0])
			snprintf(dir, sizeof(dir), "%s/gpuhealth", xdg);
		else if (home && home[0])
			snprintf(dir, sizeof(dir), "%s/.local/state/gpuhealth", home);
		if (dir[0] && mkdir_p(dir) == 0)
			snprintf(path, len, "%s/console.log", dir);
		else
			snprintf(path, len, "/dev/null");
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(path, len, "/dev/null");
		fd = open(path, O_WRONLY | O_CLOEXEC);
	}
	if (fd < 0)
		return -1;
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	close(fd);
	return saved;
}

static void restore_stderr(int saved)
{
	if (saved < 0)
		return;
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
}

static double refresh_of(const struct config *cfg)
{
	if (config_is_set(cfg, "refresh"))
		return config_double(cfg, "refresh");
	return (double)config_int(cfg, "delay") / 10.0;
}

/* ---- the real source: the embedded pipeline */

static void pl_copy_view(void *ctx, struct pipeline_view *out)
{
	pipeline_view(ctx, out);
}

static size_t pl_copy_gpus(void *ctx, struct fleet_gpu *out, size_t max)
{
	struct fleet *f = pipeline_fleet(ctx);
	return f ? fleet_snapshot(f, out, max) : 0;
}

static int pl_copy_processes(void *ctx, const char *key, struct fleet_process *out, size_t max)
{
	struct fleet *f = pipeline_fleet(ctx);
	return f ? fleet_processes(f, key, out, max) : -1;
}

/* What the pipeline had accepted and where it went, once it stopped: the line that says what
 * a q or a hangup may have left out (the in-process broker's events die with the console). */
static void log_stopped(struct pipeline *p)
{
	static struct pipeline_view v; /* large: not on the stack */
	pipeline_view(p, &v);
	const struct producer_stats *pr = &v.collector.producer;
	/* events the in-process cluster held that the sink never took: lost with it, counted */
	uint64_t untaken = 0;
	if (v.have_sink && v.in_process_broker && pr->delivered > v.sink.consumed)
		untaken = pr->delivered - v.sink.consumed;
	if (untaken)
		log_warn(
		    "console: %" PRIu64 " delivered events were still in the in-process broker "
		    "at the stop and are lost with it (the sink took %" PRIu64 " of %" PRIu64 ")",
		    untaken, v.sink.consumed, pr->delivered);
	log_info("console: stopped; events=%" PRIu64 " delivered=%" PRIu64 " dropped=%" PRIu64
	         " lost_at_stop=%" PRIu64 " sink_rows=%" PRIu64 " dlq=%" PRIu64,
	         v.collector.events, pr->delivered, pr->dropped, untaken, v.sink.rows_written,
	         v.sink.dead_letters);
}

/* The console runs in its own thread while the main thread starts the pipeline: the private
 * PostgreSQL is a child tied to the thread that starts it (PR_SET_PDEATHSIG), which must live
 * as long as the pipeline, and starting it can take seconds that the console shows. */
struct ui_thread {
	const struct view_source *src;
	const struct console_opts *co;
	int rc;
};

static void *ui_main(void *arg)
{
	struct ui_thread *u = arg;
	u->rc = console_run(u->src, u->co);
	return NULL;
}

/* A clean stop because the terminal hung up (SIGHUP, or EOF/EIO on it) exits 128 + SIGHUP,
 * as a shell reports a command that SIGHUP ended; q, SIGINT and SIGTERM exit 0 (the CLI
 * contract's clean stop); a failure keeps its 1. */
static int exit_status(int status)
{
	if (status == 0 && signals_stop_signal() == SIGHUP)
		return 128 + SIGHUP;
	return status;
}

static int pl_conninfo(void *arg, char *buf, size_t len)
{
	return pipeline_conninfo(arg, buf, len);
}

int tui_run(struct config *cfg)
{
	int status = 1;
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
		fprintf(stderr,
		        "gpuhealth: the console needs a terminal on standard input and output; "
		        "run 'gpuhealth --daemon' for the headless pipeline\n");
		return 2;
	}
	struct console_opts co = {
	    .refresh_s = refresh_of(cfg),
	    .unicode = !config_bool(cfg, "no-unicode"),
	    .color = !config_bool(cfg, "no-color"),
	    .mouse = !config_bool(cfg, "no-mouse"),
	    .duration_s = config_double(cfg, "duration"),
	    .stats_path = getenv("GPUHEALTH_UI_STATS"),
	    .utc = config_bool(cfg, "utc"),
	};
	const char *fake_env = getenv("GPUHEALTH_UI_FAKE");
	bool fake = fake_env && fake_env[0] && strcmp(fake_env, "0") != 0;
	char logpath[600];
	int saved = -1;
	/* the console's SIGHUP is its terminal hanging up (ssh dropped, tmux pane killed): stop in
	 * order like q, never reload (--daemon keeps SIGHUP as its reload); before the handlers,
	 * so that no SIGHUP is taken for a reload in between */
	signals_hup_stops();
	signals_install();
	/* Two malloc arenas instead of up to 8 per core: the console's process runs some 30
	 * threads that allocate little each; this keeps its resident memory down (issue #6:
	 * at most 32 MB). Before any thread starts. */
	mallopt(M_ARENA_MAX, 2);
	/* LC_CTYPE only (ncursesw and the UTF-8 test need it); LC_NUMERIC stays "C" for the
	 * services, which print numbers for machines. Before any thread starts. */
	setlocale(LC_CTYPE, "");

	if (fake) {
		struct fake *f = NULL;
		const char *ph = getenv("GPUHEALTH_UI_FAKE_PER_HOST");
		struct fake_opts fo = {.gpus = (size_t)config_int(cfg, "gpus"),
		                       .per_host = ph ? (size_t)strtoul(ph, NULL, 10) : 0,
		                       .step_s = 0.5};
		int rc = fake_create(&f, &fo);
		if (rc) {
			fprintf(stderr, "gpuhealth: cannot start the fake source: %s\n",
			        strerror(-rc));
			return 1;
		}
		struct view_source src = fake_source(f);
		co.source_name = "fake";
		rc = console_run(&src, &co);
		fake_destroy(f);
		return exit_status(rc ? 1 : 0);
	}

	struct pipeline *p = NULL;
	char err[512] = "";
	/* the console's own default period: something moving on the screen every 2 s (the
	 * collector and --daemon keep 10 s) */
	if (config_set_default(cfg, "interval", "2", err, sizeof(err)) != 0) {
		fprintf(stderr, "gpuhealth: %s\n", err);
		return 1;
	}
	int rc = pipeline_create(&p, cfg, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "gpuhealth: %s\n", err);
		return rc == -EINVAL ? 2 : 1;
	}
	/* q must end the console within 2 s even on a loaded node (a hangup within 3 s): the
	 * sink and the scorer get up to 1 s to take what the collector delivered to the
	 * in-process cluster, which dies with the console, before they commit what they hold;
	 * the wait ends as soon as they have it all (the daemon waits longer) */
	pipeline_set_drain(p, 1.0);
	log_set_timestamps(1); /* a log file: every line with its time */
	saved = redirect_stderr(logpath, sizeof(logpath));
	struct view_source src = {.ctx = p,
	                          .copy_view = pl_copy_view,
	                          .copy_gpus = pl_copy_gpus,
	                          .copy_processes = pl_copy_processes};
	/* a fleet database: the overview, the alerts and the history read it on a connection of
	 * their own, read-only (src/viewdb) */
	struct viewdb *vdb = NULL;
	if (config_str(cfg, "db")) {
		int vrc = viewdb_create(&vdb, config_str(cfg, "db"), co.refresh_s);
		if (vrc)
			log_error("console: cannot start the fleet database reader: %s",
			          strerror(-vrc));
		src.db = vdb;
	} else {
		/* the console's private PostgreSQL (once the pipeline has started it): the
		 * history's keys read this node's GPUs there; the overview and the alerts stay
		 * the live fleet's */
		int vrc = viewdb_create_deferred(&vdb, pl_conninfo, p, co.refresh_s);
		if (vrc)
			log_error("console: cannot start the history's database reader: %s",
			          strerror(-vrc));
	}
	src.hist_db = vdb;
	/* a fleet database: a read-only viewer's fleet table and GPU detail read the GPUs on
	 * screen only (src/viewdb, paged in SQL), and the pipeline's reader leaves its fleet empty
	 * (it loaded every host's GPUs every 2 s); the table reader connects only when asked */
	struct viewdb *tdb = NULL;
	if (config_str(cfg, "db")) {
		int vrc = viewdb_create_table(&tdb, config_str(cfg, "db"), co.refresh_s,
		                              config_double(cfg, "interval"));
		if (vrc)
			log_error("console: cannot start the fleet table's reader: %s",
			          strerror(-vrc));
		else
			pipeline_set_table_from_db(p, true);
	}
	src.table_db = tdb;
	struct ui_thread u = {&src, &co, 0};
	pthread_t th;
	int trc = pthread_create(&th, NULL, ui_main, &u);
	if (trc) {
		restore_stderr(saved);
		viewdb_destroy(tdb);
		viewdb_destroy(vdb);
		pipeline_destroy(p);
		fprintf(stderr, "gpuhealth: cannot start the console's thread: %s\n",
		        strerror(trc));
		return 1;
	}
	int src_rc = pipeline_start(p, err, sizeof(err));
	if (src_rc)
		log_error("console: the pipeline did not start: %s", err);
	pthread_join(th, NULL);
	if (signals_stop_signal() == SIGHUP)
		log_info("console: the terminal hung up (SIGHUP, or EOF/EIO on it): stopping");
	else if (signals_stop_signal())
		log_info("console: signal %d: stopping", signals_stop_signal());
	viewdb_destroy(tdb);
	viewdb_destroy(vdb);
	pipeline_stop(p);
	log_stopped(p);
	pipeline_destroy(p);
	restore_stderr(saved);
	if (src_rc) {
		fprintf(stderr, "gpuhealth: the pipeline did not start: %s (log: %s)\n", err,
		        logpath);
		status = 1;
	} else if (u.rc) {
		status = 1;
	} else {
		status = 0;
	}
	return exit_status(status);
}
