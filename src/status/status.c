/* status: see status.h. */
#include "status/status.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "collect/scrape.h"
#include "core/exitcode.h"
#include "collect/collector.h"
#include "collect/targets.h"
#include "core/log.h"
#include "core/textcell.h"
#include "core/timeutil.h"
#include "health/health_engine.h"
#include "health/rules.h"
#include "health/scorer.h"
#include "health/scorer_cmd.h"
#include "nvml/nvml.h"
#include "pipeline/pipeline.h"
#include "pipeline/privpg.h"
#include "store/pg.h"
#include "view/view.h"

#define OPEN_ALERTS_MAX "100000"

/* ---------------------------------------------------------------- JSON */

static json_t *num_or_null(double v)
{
	return isnan(v) || isinf(v) ? json_null() : json_real(v);
}

static json_t *field(const struct health_sample *s, enum hs_field f)
{
	return health_sample_has(s, f) ? num_or_null(s->v[f]) : json_null();
}

static json_t *count_field(const struct health_sample *s, enum hs_field f)
{
	return health_sample_has(s, f) ? json_integer((json_int_t)s->u[f]) : json_null();
}

static json_t *time_or_null(double t)
{
	char buf[40];
	if (!(t > 0) || time_format_rfc3339(t, buf, sizeof(buf)) != 0)
		return json_null();
	return json_string(buf);
}

/* "GPU-xxxx/3" -> uuid "GPU-xxxx", MIG instance 3 */
static void split_key(const char *key, char *uuid, size_t len, json_t **mig)
{
	const char *slash = strchr(key, '/');
	size_t n = slash ? (size_t)(slash - key) : strlen(key);
	snprintf(uuid, len, "%.*s", (int)n, key);
	*mig = slash ? json_integer(strtol(slash + 1, NULL, 10)) : json_null();
}

static json_t *clock_reasons(const struct health_sample *s)
{
	if (!health_sample_has(s, HS_CLOCK_REASONS))
		return json_null();
	char buf[256];
	json_t *names = json_array();
	uint64_t mask = s->u[HS_CLOCK_REASONS];
	if (mask) {
		view_clock_reasons(mask, buf, sizeof(buf));
		for (char *tok = buf, *sep; tok && *tok; tok = sep ? sep + 2 : NULL) {
			sep = strstr(tok, ", ");
			if (sep)
				*sep = '\0';
			json_array_append_new(names, json_string(tok));
		}
	}
	return json_pack("{s:I, s:o}", "raw", (json_int_t)mask, "names", names);
}

static json_t *health_json(const struct fleet_gpu *g)
{
	if (!g->have_health)
		return json_null();
	const struct health_result *h = &g->health;
	json_t *reasons = json_array();
	for (size_t i = 0; i < h->nreasons && i < HEALTH_MAX_REASONS; i++) {
		const struct health_reason *r = &h->reasons[i];
		json_array_append_new(reasons,
		                      json_pack("{s:s, s:s, s:s, s:s, s:s}", "code", r->code,
		                                "component", health_component_name(r->comp),
		                                "severity", health_status_name(r->sev), "remedy",
		                                health_action_name(r->remedy), "text", r->text));
	}
	json_t *comp = json_object();
	for (int c = 0; c < HC_COUNT; c++)
		json_object_set_new(comp, health_component_name((enum health_component)c),
		                    json_integer(h->comp[c]));
	json_t *costs = json_null();
	if (!isnan(g->cost[ACT_KEEP])) {
		costs = json_object();
		for (int a = 0; a < ACT_COUNT; a++)
			json_object_set_new(costs, health_action_name((enum health_action)a),
			                    num_or_null(g->cost[a]));
	}
	return json_pack("{s:s, s:i, s:o, s:o, s:s, s:o, s:o, s:o}", "status",
	                 health_status_name(h->status), "score", h->score, "time",
	                 time_or_null(h->time), "components", comp, "recommendation",
	                 health_action_name(g->action), "failure_probability",
	                 num_or_null(g->p_fail), "expected_costs", costs, "reasons", reasons);
}

static json_t *str_or_null(const char *v)
{
	return v[0] ? json_string(v) : json_null();
}

/* event-v1's "workload": null, or the namespace, pod and container (each a string or null) */
static json_t *workload_json(const struct fleet_gpu *g)
{
	if (!g->has_workload)
		return json_null();
	return json_pack("{s:o, s:o, s:o}", "namespace", str_or_null(g->wl_namespace), "pod",
	                 str_or_null(g->wl_pod), "container", str_or_null(g->wl_container));
}

static const char *proc_type_name(enum fleet_proc_type t)
{
	return t == FLEET_PROC_GRAPHICS ? "graphics"
	       : t == FLEET_PROC_BOTH   ? "compute+graphics"
	                                : "compute";
}

/* "processes" of every GPU of doc whose processes f knows (local GPUs through NVML). */
static int add_processes(json_t *doc, struct fleet *f)
{
	struct fleet_process pr[FLEET_PROCS_MAX];
	size_t i, j;
	json_t *h, *g;
	json_array_foreach(json_object_get(doc, "hosts"), i, h)
	{
		json_array_foreach(json_object_get(h, "gpus"), j, g)
		{
			const char *key = json_string_value(json_object_get(g, "key"));
			int n = key ? fleet_processes(f, key, pr, FLEET_PROCS_MAX) : -1;
			if (n < 0)
				continue;
			json_t *arr = json_array();
			if (!arr)
				return -ENOMEM;
			for (int k = 0; k < n && k < FLEET_PROCS_MAX; k++)
				json_array_append_new(
				    arr, json_pack("{s:I, s:s, s:o, s:o, s:o}", "pid",
				                   (json_int_t)pr[k].pid, "type",
				                   proc_type_name(pr[k].type), "used_memory_mib",
				                   num_or_null(pr[k].used_mib), "user",
				                   str_or_null(pr[k].user), "command",
				                   str_or_null(pr[k].command)));
			if (json_object_set_new(g, "processes", arr) != 0)
				return -ENOMEM;
		}
	}
	return 0;
}

static json_t *gpu_json(const struct fleet_gpu *g, double now)
{
	const struct health_sample *s = &g->last;
	char uuid[HS_KEY_MAX];
	json_t *mig = NULL;
	split_key(g->key, uuid, sizeof(uuid), &mig);
	json_t *xid_meaning = json_null();
	if (health_sample_has(s, HS_XID) && s->u[HS_XID])
		xid_meaning = json_string(view_xid_meaning((unsigned)s->u[HS_XID]));
	json_t *o = json_pack(
	    "{s:o, s:s, s:s, s:o, s:s, s:o, s:o, s:b}", "index",
	    g->index >= 0 ? json_integer(g->index) : json_null(), "key", g->key, "uuid", uuid,
	    "mig_instance", mig, "model", g->model, "time", time_or_null(g->last_seen), "age_s",
	    g->last_seen > 0 ? json_real(now - g->last_seen) : json_null(), "stale", g->stale);
	if (!o)
		return NULL;
	json_object_set_new(o, "temperature_c", field(s, HS_GPU_TEMP));
	json_object_set_new(o, "memory_temperature_c", field(s, HS_MEMORY_TEMP));
	json_object_set_new(o, "slowdown_temperature_c", field(s, HS_SLOWDOWN_TEMP));
	json_object_set_new(o, "power_w", field(s, HS_POWER));
	json_object_set_new(o, "power_limit_w", field(s, HS_POWER_LIMIT));
	json_object_set_new(o, "utilization_pct", field(s, HS_GPU_UTIL));
	json_object_set_new(o, "memory_used_mib", num_or_null(g->fb_used_mib));
	json_object_set_new(o, "memory_total_mib", num_or_null(g->fb_total_mib));
	json_object_set_new(o, "sm_clock_mhz", num_or_null(g->sm_clock_mhz));
	json_object_set_new(o, "memory_clock_mhz", num_or_null(g->mem_clock_mhz));
	json_object_set_new(o, "ecc_sbe_volatile_total", count_field(s, HS_SBE_VOL));
	json_object_set_new(o, "ecc_dbe_volatile_total", count_field(s, HS_DBE_VOL));
	json_object_set_new(o, "ecc_sbe_aggregate_total", count_field(s, HS_SBE_AGG));
	json_object_set_new(o, "ecc_dbe_aggregate_total", count_field(s, HS_DBE_AGG));
	json_object_set_new(o, "retired_pages_sbe", count_field(s, HS_RETIRED_SBE));
	json_object_set_new(o, "retired_pages_dbe", count_field(s, HS_RETIRED_DBE));
	json_object_set_new(o, "retired_pages_pending", count_field(s, HS_RETIRED_PENDING));
	json_object_set_new(o, "remapped_rows_correctable", count_field(s, HS_CORR_ROWS));
	json_object_set_new(o, "remapped_rows_uncorrectable", count_field(s, HS_UNCORR_ROWS));
	json_object_set_new(o, "row_remap_pending", count_field(s, HS_REMAP_PENDING));
	json_object_set_new(o, "row_remap_failure", count_field(s, HS_REMAP_FAILURE));
	json_object_set_new(o, "pcie_replay_total", count_field(s, HS_PCIE_REPLAY));
	json_object_set_new(o, "xid_last", count_field(s, HS_XID));
	json_object_set_new(o, "xid_meaning", xid_meaning);
	json_object_set_new(o, "clocks_event_reasons", clock_reasons(s));
	json_object_set_new(o, "workload", workload_json(g));
	/* filled by status_cmd_run for local GPUs (--nvml) whose driver reports them */
	json_object_set_new(o, "processes", json_null());
	json_object_set_new(o, "health", health_json(g));
	/* the alerts this process's own evaluation raised (scrape), as the scorer would store
	 * them (the same engine); the database's open alerts are added by status_json */
	json_t *al = json_array();
	for (size_t i = 0; i < g->nopen && i < FLEET_ALERT_KINDS; i++) {
		const struct fleet_alert *a = &g->open[i];
		char msg[512];
		health_engine_alert_message(msg, sizeof(msg), g->key, g->host, a->text);
		json_array_append_new(al, json_pack("{s:s, s:s, s:s, s:s, s:o}", "gpu_key", g->key,
		                                    "kind", a->kind, "severity",
		                                    health_status_name(a->severity), "message", msg,
		                                    "raised_at", time_or_null(a->time)));
	}
	json_object_set_new(o, "alerts", al);
	return o;
}

json_t *status_json(const struct fleet_gpu *gpus, size_t n, const char *source, double now,
                    json_t *alerts)
{
	json_t *doc = NULL, *hosts = json_array(), *by_key = json_object(), *host = NULL;
	size_t nhosts = 0, npass = 0, nwarn = 0, nfail = 0, nunknown = 0, nstale = 0;
	const char *cur = NULL;
	if (!hosts || !by_key)
		goto out;
	for (size_t i = 0; i < n; i++) {
		const struct fleet_gpu *g = &gpus[i];
		if (!cur || strcmp(cur, g->host) != 0) {
			host = json_pack("{s:s, s:[]}", "host", g->host, "gpus");
			if (!host || json_array_append_new(hosts, host) != 0)
				goto out;
			cur = g->host;
			nhosts++;
		}
		json_t *gj = gpu_json(g, now);
		if (!gj || json_array_append_new(json_object_get(host, "gpus"), gj) != 0)
			goto out;
		json_object_set(by_key, g->key, gj);
		if (!g->have_health)
			nunknown++;
		else if (g->health.status == HEALTH_FAIL)
			nfail++;
		else if (g->health.status == HEALTH_WARN)
			nwarn++;
		else
			npass++;
		nstale += g->stale;
	}
	size_t idx;
	json_t *a;
	json_array_foreach(alerts, idx, a)
	{
		json_t *gj =
		    json_object_get(by_key, json_string_value(json_object_get(a, "gpu_key")));
		if (gj)
			json_array_append(json_object_get(gj, "alerts"), a);
	}
	/* every open alert listed under its GPU: the database's and this evaluation's own */
	size_t nalerts = 0;
	const char *k;
	json_t *gj;
	json_object_foreach(by_key, k, gj) nalerts +=
	    json_array_size(json_object_get(gj, "alerts"));
	char when[40] = "";
	time_format_rfc3339(now, when, sizeof(when));
	doc = json_pack("{s:s, s:s, s:s, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:O}",
	                "schema", "gpuhealth.status/1", "generated_at", when, "source", source,
	                "summary", "hosts", (json_int_t)nhosts, "gpus", (json_int_t)n, "pass",
	                (json_int_t)npass, "warn", (json_int_t)nwarn, "fail", (json_int_t)nfail,
	                "unknown", (json_int_t)nunknown, "stale", (json_int_t)nstale, "open_alerts",
	                (json_int_t)nalerts, "hosts", hosts);
out:
	json_decref(hosts);
	json_decref(by_key);
	json_decref(alerts);
	return doc;
}

/* The last counters `gpuhealth --daemon` of this user wrote ($XDG_STATE_HOME/gpuhealth/
 * pipeline.json: its events, its losses by reason, its in-process broker's gate), or null. */
static json_t *read_pipeline_state(void)
{
	char dir[4096], path[4200];
	if (privpg_state_dir(dir, sizeof(dir)) != 0)
		return json_null();
	snprintf(path, sizeof(path), "%s/pipeline.json", dir);
	json_t *j = json_load_file(path, 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return json_null();
	}
	return j;
}

/* ---------------------------------------------------------------- table */

static void cell(char *buf, size_t len, const struct health_sample *s, enum hs_field f,
                 const char *fmt_unit)
{
	if (health_sample_has(s, f))
		snprintf(buf, len, "%.0f%s", s->v[f], fmt_unit);
	else
		snprintf(buf, len, "-");
}

/* Text from the network (a hostname, a model, a workload, a user) as a cell of the table: made
 * safe for a terminal (control characters and invalid UTF-8 as '?') and clipped and, with pad,
 * padded to cols display columns. status does not set the locale: it writes UTF-8, as the
 * labels are, and measures it as a UTF-8 terminal shows it (textcell's TEXTCELL_UTF8: a wide
 * CJK character is two columns, a combining mark none), whatever the process' locale. */
static const char *tcell(char *buf, size_t len, const char *text, int cols, bool pad)
{
	textcell_fit(TEXTCELL_UTF8, text, cols, pad, buf, len, NULL);
	return buf;
}

/* The workload as the table shows it: "namespace/pod" (or the one known), "container" alone
 * when only it is known; "-" for none. */
static void workload_text(const struct fleet_gpu *g, char *buf, size_t len)
{
	if (!g->has_workload)
		snprintf(buf, len, "-");
	else if (g->wl_namespace[0] && g->wl_pod[0])
		snprintf(buf, len, "%s/%s", g->wl_namespace, g->wl_pod);
	else
		snprintf(buf, len, "%s",
		         g->wl_pod[0]         ? g->wl_pod
		         : g->wl_namespace[0] ? g->wl_namespace
		                              : g->wl_container);
}

/* The processes of a local GPU under its row: PID, type, GPU memory, user, command. */
static void print_processes(FILE *o, struct fleet *f, const struct fleet_gpu *g)
{
	struct fleet_process pr[FLEET_PROCS_MAX];
	int n = fleet_processes(f, g->key, pr, FLEET_PROCS_MAX);
	if (n < 0)
		return;
	if (n == 0) {
		fprintf(o, "     no processes\n");
		return;
	}
	fprintf(o, "     %7s %-16s %9s %-12s %s\n", "PID", "TYPE", "GPU MEM", "USER", "COMMAND");
	for (int k = 0; k < n && k < FLEET_PROCS_MAX; k++) {
		char mem[24], user[sizeof(pr[k].user) + 12], cmd[sizeof(pr[k].command)];
		if (isnan(pr[k].used_mib))
			snprintf(mem, sizeof(mem), "-");
		else
			snprintf(mem, sizeof(mem), "%.0fMiB", pr[k].used_mib);
		fprintf(
		    o, "     %7u %-16s %9s %s %s\n", pr[k].pid, proc_type_name(pr[k].type), mem,
		    tcell(user, sizeof(user), pr[k].user[0] ? pr[k].user : "-", 12, true),
		    tcell(cmd, sizeof(cmd), pr[k].command[0] ? pr[k].command : "-", 100, false));
	}
	if (n > FLEET_PROCS_MAX)
		fprintf(o, "     (%d more)\n", n - FLEET_PROCS_MAX);
}

static void print_table(FILE *o, struct fleet *f, const struct fleet_gpu *gpus, size_t n,
                        const char *source, double now, size_t nalerts)
{
	const char *cur = NULL;
	size_t bad = 0;
	bool wl = false; /* the WORKLOAD column, when any GPU has one */
	for (size_t i = 0; i < n && !wl; i++)
		wl = gpus[i].has_workload;
	for (size_t i = 0; i < n; i++) {
		const struct fleet_gpu *g = &gpus[i];
		if (!cur || strcmp(cur, g->host) != 0) {
			char host[sizeof(g->host)];
			fprintf(o, "%s%s\n", cur ? "\n" : "",
			        tcell(host, sizeof(host), g->host[0] ? g->host : "(unknown host)",
			              INT32_MAX, false));
			fprintf(o, "%-4s %-16s %5s %11s %5s %11s %-6s %5s %-6s %7s  ", "GPU",
			        "MODEL", "TEMP", "POWER/LIM", "UTIL", "MEM", "HEALTH", "SCORE",
			        "ACTION", "P(FAIL)");
			if (wl)
				fprintf(o, "%-32s  ", "WORKLOAD");
			fprintf(o, "TOP REASON\n");
			cur = g->host;
		}
		const struct health_sample *s = &g->last;
		char idx[12], temp[12], pw[16], lim[12], pwl[28], util[12], mem[32], pf[12],
		    age[24];
		if (g->index >= 0)
			snprintf(idx, sizeof(idx), "%d", g->index);
		else
			snprintf(idx, sizeof(idx), "-");
		cell(temp, sizeof(temp), s, HS_GPU_TEMP, "C");
		cell(pw, sizeof(pw), s, HS_POWER, "");
		cell(lim, sizeof(lim), s, HS_POWER_LIMIT, "W");
		snprintf(pwl, sizeof(pwl), "%s/%s", pw, lim);
		cell(util, sizeof(util), s, HS_GPU_UTIL, "%");
		if (!isnan(g->fb_used_mib) && !isnan(g->fb_total_mib))
			snprintf(mem, sizeof(mem), "%.1f/%.0fG", g->fb_used_mib / 1024.0,
			         g->fb_total_mib / 1024.0);
		else
			snprintf(mem, sizeof(mem), "-");
		if (!isnan(g->p_fail))
			snprintf(pf, sizeof(pf), "%.1f%%", 100.0 * g->p_fail);
		else
			snprintf(pf, sizeof(pf), "-");
		const char *st = g->have_health ? health_status_name(g->health.status) : "?";
		const char *why =
		    g->have_health && g->health.nreasons ? g->health.reasons[0].text : "";
		char score[8] = "-";
		if (g->have_health)
			snprintf(score, sizeof(score), "%d", g->health.score);
		bad += g->have_health && g->health.status != HEALTH_PASS;
		char model[16 * 4 + 1];
		fprintf(o, "%-4s %s %5s %11s %5s %11s %-6s %5s %-6s %7s  ", idx,
		        tcell(model, sizeof(model), view_model_short(g->model), 16, true), temp,
		        pwl, util, mem, st, score,
		        g->have_health ? health_action_name(g->action) : "-", pf);
		if (wl) {
			char w[FLEET_NS_MAX + FLEET_POD_MAX + 2], cw[32 * 4 + 1];
			workload_text(g, w, sizeof(w));
			fprintf(o, "%s  ", tcell(cw, sizeof(cw), w, 32, true));
		}
		char whyc[HEALTH_REASON_TEXT];
		fprintf(o, "%s", tcell(whyc, sizeof(whyc), why, INT32_MAX, false));
		if (g->stale)
			fprintf(o, "  (stale: %s old)",
			        view_fmt_age(now - g->last_seen, age, sizeof(age)));
		fputc('\n', o);
		print_processes(o, f, g);
	}
	fprintf(o, "\n%zu GPU%s, %zu not healthy, %zu open alert%s (from %s)\n", n,
	        n == 1 ? "" : "s", bad, nalerts, nalerts == 1 ? "" : "s", source);
}

/* ---------------------------------------------------------------- sources */

static void tap(const json_t *event, void *ud)
{
	fleet_ingest_event(ud, event);
}

/* --nvml: this machine's GPUs read once, in dcgm-exporter's text, as the collector's local
 * source (as `collector --nvml`) */
struct nvml_read {
	struct nvml *n;
	struct render_opts opts;
	char hostname[256];
};

static int nvml_read(void *ud, struct strbuf *body, char *err, size_t errlen)
{
	struct nvml_read *r = ud;
	return nvml_read_exposition(r->n, &r->opts, time_now(), body, err, errlen);
}

/* One scrape of every target (or, with nr, one read of the local GPUs) into f. Returns 0, or
 * -EIO when every target failed. */
static int from_scrape(const struct config *cfg, struct targets *tg, struct nvml_read *nr,
                       struct fleet *f, char *err, size_t errlen)
{
	struct collector_local local = {"nvml", nvml_read, nr};
	struct collector *c = NULL;
	FILE *null = fopen("/dev/null", "w");
	int rc = -EIO;
	if (!null) {
		snprintf(err, errlen, "cannot open /dev/null: %s", strerror(errno));
		goto out;
	}
	struct collector_options o = {
	    .local = nr ? &local : NULL,
	    .targets = (const char *const *)tg->urls,
	    .ntargets = tg->n,
	    .interval_s = 10,
	    .timeout_s = config_double(cfg, "scrape-timeout"),
	    .max_body = (size_t)config_int(cfg, "max-body"),
	    .gzip = scrape_gzip_from_config(cfg),
	    .threads = (unsigned)config_int(cfg, "scrape-threads"),
	    .once = true,
	    .out = null,
	    .tap = tap,
	    .tap_ud = f,
	};
	rc = collector_create(&c, &o, err, errlen);
	if (rc)
		goto out;
	rc = collector_start(c);
	if (rc) {
		snprintf(err, errlen, "cannot start the scrape: %s", strerror(-rc));
		goto out;
	}
	struct collector_stats st;
	for (;;) {
		collector_stats(c, &st);
		if (st.done)
			break;
		usleep(20000);
	}
	collector_stop(c);
	/* the local GPUs' processes, as the last read listed them */
	for (size_t d = 0; nr && d < nvml_gpu_devices(nr->n); d++) {
		const struct fleet_process *pr;
		int np = nvml_device_processes(nr->n, d, &pr);
		fleet_set_processes(f, nvml_device_uuid(nr->n, d), pr, np);
	}
	struct scrape_target_stats ts[64];
	size_t nt = collector_targets(c, ts, 64);
	for (size_t i = 0; i < nt && i < 64; i++)
		if (ts[i].ok == 0)
			log_warn("status: %s: %s", ts[i].url,
			         ts[i].last_error[0] ? ts[i].last_error : "no answer");
	if (nr && st.scrapes_ok == 0) {
		snprintf(err, errlen, "the local GPUs could not be read (see the messages above)");
		rc = -EIO;
	} else if (st.scrapes_ok == 0) {
		snprintf(err, errlen,
		         "no target answered (%zu tried; see the messages above): check the URLs "
		         "and that the exporters run",
		         tg->n);
		rc = -EIO;
	}
out:
	collector_destroy(c);
	if (null)
		fclose(null);
	return rc;
}

/* The open alerts as JSON objects with their gpu_key. */
static json_t *open_alerts(PGconn *c, char *err, size_t errlen)
{
	PGresult *r =
	    pg_exec_params(c,
	                   "SELECT gpu_key, kind, severity, message, "
	                   "extract(epoch FROM raised_at) FROM alerts WHERE cleared_at IS NULL "
	                   "ORDER BY raised_at DESC LIMIT $1::int",
	                   1, (const char *const[]){OPEN_ALERTS_MAX});
	json_t *arr = NULL;
	if (!pg_tuples_ok(r)) {
		snprintf(err, errlen, "reading the open alerts: %s", pg_conn_error(c));
		err[strcspn(err, "\n")] = '\0';
		goto out;
	}
	arr = json_array();
	for (int i = 0; arr && i < pg_rows(r); i++)
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:o}", "gpu_key",
		                                     pg_text(r, i, 0), "kind", pg_text(r, i, 1),
		                                     "severity", pg_text(r, i, 2), "message",
		                                     pg_text(r, i, 3), "raised_at",
		                                     time_or_null(pg_double(r, i, 4))));
out:
	pg_clear(r);
	return arr;
}

/* One bigint from a query, or JSON null (no such table at an older schema, NULL, error). */
static json_t *count_or_null(PGconn *c, const char *sql)
{
	PGresult *r = pg_exec_simple(c, sql);
	json_t *v = pg_tuples_ok(r) && pg_rows(r) == 1 && !pg_null(r, 0, 0)
	                ? json_integer(pg_int(r, 0, 0))
	                : json_null();
	pg_clear(r);
	return v;
}

static json_t *in_table(PGconn *c)
{
	json_t *has = count_or_null(c, "SELECT count(*) FROM pg_class WHERE oid = "
	                               "to_regclass('dead_letters')");
	bool yes = json_integer_value(has) == 1;
	json_decref(has);
	return yes ? count_or_null(c, "SELECT count(*) FROM dead_letters") : json_null();
}

/* The pipeline's dead letters: counted by the sinks that reported in the last day (each since
 * its start, from pipeline_stats), and those in the dead_letters table (the ones the dead-letter
 * topic refused). */
static json_t *dead_letters_json(PGconn *c)
{
	return json_pack(
	    "{s:o, s:o}", "counted_by_sinks_last_day",
	    count_or_null(c, "SELECT sum(dead_letters) FROM (SELECT DISTINCT ON (instance) "
	                     "dead_letters FROM pipeline_stats WHERE service = 'sink' AND time > "
	                     "now() - interval '1 day' ORDER BY instance, time DESC) x"),
	    "in_table", in_table(c));
}

static int from_database(const char *conninfo, struct fleet *f, json_t **alerts, json_t **dead,
                         char *err, size_t errlen)
{
	PGconn *c = pg_connect(conninfo, "gpuhealth-status", err, errlen);
	int rc = -EIO;
	if (!c)
		goto out;
	rc = pipeline_read_fleet_db(c, f, err, errlen);
	if (rc)
		goto out;
	*alerts = open_alerts(c, err, errlen);
	rc = *alerts ? 0 : -EIO;
	if (!rc)
		*dead = dead_letters_json(c);
out:
	if (c)
		pg_close(c);
	return rc;
}

static bool libpq_env_set(void)
{
	static const char *const vars[] = {"PGHOST",    "PGHOSTADDR", "PGDATABASE",
	                                   "PGSERVICE", "PGPORT",     "PGUSER"};
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		if (getenv(vars[i]) && *getenv(vars[i]))
			return true;
	return false;
}

int status_cmd_run(struct config *cfg)
{
	int status = CLI_EXIT_FAILURE, rc;
	char err[1024] = "";
	struct targets tg;
	struct fleet *f = NULL;
	struct fleet_gpu *gpus = NULL;
	json_t *alerts = NULL, *doc = NULL, *dead = NULL;
	struct nvml_read nr = {0};
	targets_init(&tg);
	for (size_t i = 0; i < config_list_len(cfg, "target"); i++)
		if (targets_add(&tg, config_list_at(cfg, "target", i), "--target", err,
		                sizeof(err))) {
			fprintf(stderr, "gpuhealth status: %s\n", err);
			status = CLI_EXIT_USAGE;
			goto out;
		}
	const char *file = config_str(cfg, "targets-file");
	if (file && targets_load_file(&tg, file, err, sizeof(err))) {
		fprintf(stderr, "gpuhealth status: %s\n", err);
		status = CLI_EXIT_USAGE;
		goto out;
	}
	const char *db = config_str(cfg, "db");
	bool nvml = config_bool(cfg, "nvml");
	if (nvml && (tg.n || db)) {
		fprintf(stderr, "gpuhealth status: --nvml reads this machine's GPUs; --target, "
		                "--targets-file and --db are other sources: give one of them\n");
		status = CLI_EXIT_USAGE;
		goto out;
	}
	if (!tg.n && !db && !nvml && !libpq_env_set()) {
		fprintf(stderr,
		        "gpuhealth status: no source: give --db CONNINFO (DATABASE_URL, or "
		        "libpq's PGHOST/PGDATABASE/...) to read the fleet database, --target "
		        "URL to scrape exporters now, or --nvml to read this machine's GPUs\n");
		status = CLI_EXIT_USAGE;
		goto out;
	}
	if (nvml) {
		rc = nvml_open(&nr.n, config_str(cfg, "nvml-library"), err, sizeof(err));
		if (rc) {
			fprintf(stderr, "gpuhealth status: --nvml: %s\n", err);
			goto out;
		}
		if (gethostname(nr.hostname, sizeof(nr.hostname) - 1) != 0)
			snprintf(nr.hostname, sizeof(nr.hostname), "localhost");
		nr.opts = (struct render_opts){.hostname = nr.hostname, .host_label = "hostname"};
	}
	struct scorer_options so;
	scorer_cmd_options(cfg, &so);
	struct fleet_opts fo = {.interval_s = config_double(cfg, "interval"),
	                        .horizon_h = so.horizon_h,
	                        .econ = &so.econ,
	                        .risk_level = so.risk_level,
	                        .raise_after = so.raise_after,
	                        .clear_after = so.clear_after,
	                        .missing_intervals = so.missing_intervals};
	if ((rc = fleet_create(&f, &fo)) != 0) {
		fprintf(stderr, "gpuhealth status: %s\n", strerror(-rc));
		goto out;
	}
	const char *source = nvml ? "nvml" : tg.n ? "scrape" : "database";
	if (tg.n || nvml)
		rc = from_scrape(cfg, &tg, nvml ? &nr : NULL, f, err, sizeof(err));
	else
		rc = from_database(db, f, &alerts, &dead, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "gpuhealth status: %s\n", err);
		goto out;
	}
	if (!alerts) { /* scrape: the alerts this one evaluation raised, per GPU */
		alerts = json_array();
	}
	struct fleet_stats fst;
	fleet_stats(f, &fst);
	size_t cap = fst.gpus ? fst.gpus : 1;
	gpus = calloc(cap, sizeof(*gpus));
	if (!gpus || !alerts) {
		fprintf(stderr, "gpuhealth status: out of memory\n");
		goto out;
	}
	size_t n = fleet_snapshot(f, gpus, cap);
	if (n > cap)
		n = cap; /* nothing is added after the sources are read */
	double now = time_now();
	size_t nalerts = json_array_size(alerts);
	for (size_t i = 0; i < n; i++) /* alerts this evaluation raised (scrape) */
		nalerts += gpus[i].nopen;
	if (config_bool(cfg, "json")) {
		doc = status_json(gpus, n, source, now, alerts);
		alerts = NULL;   /* stolen */
		if (doc && dead) /* the database's: the dead letters of the pipeline */
			json_object_set(doc, "dead_letters", dead);
		if (doc) /* the daemon's counters and losses, when one ran for this user */
			json_object_set_new(doc, "pipeline", read_pipeline_state());
		if (doc && add_processes(doc, f) != 0) {
			fprintf(stderr, "gpuhealth status: out of memory\n");
			goto out;
		}
		if (!doc ||
		    json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(10)) != 0) {
			fprintf(stderr, "gpuhealth status: cannot write the JSON document\n");
			goto out;
		}
		fputc('\n', stdout);
	} else {
		print_table(stdout, f, gpus, n, source, now, nalerts);
	}
	if (fflush(stdout) != 0) {
		fprintf(stderr, "gpuhealth status: writing to standard output: %s\n",
		        strerror(errno));
		goto out;
	}
	status = CLI_EXIT_OK;
out:
	json_decref(doc);
	json_decref(alerts);
	json_decref(dead);
	free(gpus);
	fleet_destroy(f);
	nvml_close(nr.n); /* after the collector that read through it */
	targets_free(&tg);
	return status;
}
