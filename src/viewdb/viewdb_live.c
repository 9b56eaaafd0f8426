#include "viewdb/viewdb.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet/fleet.h"
#include "view/view.h"
#include "viewdb/viewdb_int.h"

/* ------------------------------------------------------------------ live (no database) */

size_t viewdb_live_alerts(const struct fleet_gpu *gpus, size_t n, struct viewdb_alert *out,
                          size_t max)
{
	size_t k = 0;
	for (size_t i = 0; i < n && k < max; i++) {
		const struct fleet_gpu *g = &gpus[i];
		for (size_t a = 0; a < g->nalerts && k < max; a++) {
			const struct fleet_alert *fa = &g->alerts[a];
			if (fa->cleared)
				continue;
			/* the newest state of each kind only: an older raise of a cleared kind is
			 * not open (alerts[] is most recent first) */
			bool newer = false;
			for (size_t b = 0; b < a; b++)
				newer |= strcmp(g->alerts[b].kind, fa->kind) == 0;
			if (newer)
				continue;
			struct viewdb_alert *o = &out[k++];
			memset(o, 0, sizeof(*o));
			snprintf(o->key, sizeof(o->key), "%s", g->key);
			snprintf(o->host, sizeof(o->host), "%s", g->host);
			o->index = g->index;
			snprintf(o->kind, sizeof(o->kind), "%s", fa->kind);
			o->severity = fa->severity;
			snprintf(o->text, sizeof(o->text), "%s", fa->text);
			o->since = fa->time;
		}
	}
	qsort(out, k, sizeof(*out), viewdb_alert_cmp);
	return k;
}

size_t viewdb_live_overview(const struct fleet_gpu *gpus, size_t n, enum viewdb_level level,
                            const char *const *path, const char *filter, struct viewdb_node *out,
                            size_t max)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const struct fleet_gpu *g = &gpus[i];
		if (filter && *filter && !view_filter_match(g, filter))
			continue;
		/* the live fleet has no cluster, datacenter or rack: "-" at each */
		bool in = true;
		for (int l = 0; l < (int)level && l < VDB_HOST; l++)
			in &= path && path[l] && strcmp(path[l], "-") == 0;
		if (!in)
			continue;
		const char *name = level == VDB_HOST ? (g->host[0] ? g->host : "-") : "-";
		size_t j = 0;
		while (j < k && strcmp(out[j].name, name) != 0)
			j++;
		if (j == k) {
			if (k == max)
				continue;
			memset(&out[k], 0, sizeof(out[k]));
			snprintf(out[k].name, sizeof(out[k].name), "%s", name);
			out[k].hottest_c = NAN;
			out[k].p_fail_max = NAN;
			k++;
		}
		struct viewdb_node *o = &out[j];
		o->gpus++;
		if (g->have_health) {
			if (g->health.status == HEALTH_FAIL)
				o->fail++;
			else if (g->health.status == HEALTH_WARN)
				o->warn++;
			else
				o->pass++;
		}
		if (health_sample_has(&g->last, HS_GPU_TEMP)) {
			double t = g->last.v[HS_GPU_TEMP];
			if (isnan(o->hottest_c) || t > o->hottest_c) {
				o->hottest_c = t;
				snprintf(o->hottest, sizeof(o->hottest), "%.60s/%d", g->host,
				         g->index);
			}
		}
		if (!isnan(g->p_fail) && (isnan(o->p_fail_max) || g->p_fail > o->p_fail_max))
			o->p_fail_max = g->p_fail;
		if (o->strip_n < VIEWDB_STRIP) {
			o->strip[o->strip_n++] =
			    viewdb_health_letter(g->have_health, g->health.status);
			o->strip[o->strip_n] = '\0';
		}
	}
	return k;
}
