#include "exporter/render.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Names, types and help as dcgm-exporter's etc/default-counters.csv and
 * dcp-metrics-included.csv write them (the opt-in ones from their commented-out lines): the
 * rows of core/fields.def. */
static const struct {
	const char *name, *type, *help;
} fields[SIM_F_COUNT] = {
#define GH_FIELD(id, dcgm, alias, key, kind, unit, ptype, help, pos, ev, hs, hsid)                 \
	[SIM_F_##id] = {dcgm, ptype, help},
#include "core/fields.def"
#undef GH_FIELD
};

const char *render_field_name(enum sim_field field)
{
	return (unsigned)field < SIM_F_COUNT ? fields[field].name : NULL;
}

const char *render_field_type(enum sim_field field)
{
	return (unsigned)field < SIM_F_COUNT ? fields[field].type : NULL;
}

/* NVIDIA's XID catalog. */
static const struct {
	unsigned xid;
	const char *msg;
} xid_msgs[] = {
    {13, "Graphics Engine Exception"},
    {31, "GPU memory page fault"},
    {32, "Invalid or corrupted push buffer stream"},
    {38, "Driver firmware error"},
    {43, "GPU stopped processing"},
    {45, "Preemptive cleanup, due to previous errors"},
    {48, "Double Bit ECC Error"},
    {61, "Internal micro-controller breakpoint/warning"},
    {62, "Internal micro-controller halt"},
    {63, "ECC page retirement or row remapping recording event"},
    {64, "ECC page retirement or row remapper recording failure"},
    {74, "NVLINK Error"},
    {79, "GPU has fallen off the bus"},
    {92, "High single-bit ECC error rate"},
    {94, "Contained ECC error"},
    {95, "Uncontained ECC error"},
    {119, "GSP RPC Timeout"},
    {120, "GSP Error"},
    {140, "Unrecovered ECC Error"},
};

const char *render_xid_message(unsigned xid)
{
	for (size_t i = 0; i < sizeof(xid_msgs) / sizeof(xid_msgs[0]); i++)
		if (xid_msgs[i].xid == xid)
			return xid_msgs[i].msg;
	return "Unknown Error";
}

/* ---- a bounded writer */

struct out {
	char *p, *end;
	bool full;
};

static void put(struct out *o, const char *s, size_t n)
{
	if (o->full || (size_t)(o->end - o->p) < n) {
		o->full = true;
		return;
	}
	memcpy(o->p, s, n);
	o->p += n;
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

/* A label value, escaped as the exposition format requires. */
static void put_escaped(struct out *o, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			put(o, "\\\\", 2);
		else if (*s == '"')
			put(o, "\\\"", 2);
		else if (*s == '\n')
			put(o, "\\n", 2);
		else
			put(o, s, 1);
	}
}

static void put_u64(struct out *o, uint64_t v)
{
	char tmp[24];
	int i = (int)sizeof(tmp);
	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	put(o, tmp + i, sizeof(tmp) - (size_t)i);
}

/* %f, as dcgm-exporter prints FP64 values: six decimals. */
static void put_f(struct out *o, double v)
{
	if (!isfinite(v) || fabs(v) >= 1e12) {
		char tmp[400];
		int n = snprintf(tmp, sizeof(tmp), "%f", v);
		put(o, tmp, n > 0 ? (size_t)n : 0);
		return;
	}
	if (v < 0) {
		put(o, "-", 1);
		v = -v;
	}
	uint64_t scaled = (uint64_t)llround(v * 1e6);
	put_u64(o, scaled / 1000000u);
	char frac[7];
	uint64_t r = scaled % 1000000u;
	for (int i = 5; i >= 0; i--) {
		frac[1 + i] = (char)('0' + r % 10);
		r /= 10;
	}
	frac[0] = '.';
	put(o, frac, sizeof(frac));
}

/* One label: NAME="VALUE (escaped), opening the set with { when first, else after the
 * previous value's closing quote and a comma; the caller closes the last value's quote. */
static void put_label(struct out *o, bool first, const char *name, const char *value)
{
	puts_(o, first ? "{" : "\",");
	puts_(o, name);
	puts_(o, "=\"");
	put_escaped(o, value);
}

static void put_labels(struct out *o, const struct sim_gpu *g, const struct render_opts *opts)
{
	char idx[16];
	snprintf(idx, sizeof(idx), "%u", g->index);
	put_label(o, true, "gpu", idx);
	put_label(o, false, "UUID", g->uuid);
	put_label(o, false, "pci_bus_id", g->pci_bus_id);
	put_label(o, false, "device", g->device);
	put_label(o, false, "modelName", g->model_name[0] ? g->model_name : opts->model_name);
	if (g->mig_profile[0]) { /* dcgm-exporter's MIG labels come after modelName */
		char gi[16];
		snprintf(gi, sizeof(gi), "%u", g->mig_instance);
		put_label(o, false, "GPU_I_PROFILE", g->mig_profile);
		put_label(o, false, "GPU_I_ID", gi);
	}
	put_label(o, false, opts->host_label, opts->hostname);
	put_label(o, false, "DCGM_FI_DRIVER_VERSION", opts->driver_version);
	if (opts->k8s) { /* dcgm-exporter's pod mapping, in its order */
		put_label(o, false, "container", g->container);
		put_label(o, false, "namespace", g->pod_namespace);
		put_label(o, false, "pod", g->pod);
	}
	puts_(o, "\"");
}

size_t render_bound(size_t n_gpus, const struct render_opts *opts)
{
	size_t label =
	    256 + strlen(opts->host_label) +
	    2 * (strlen(opts->hostname) + strlen(opts->driver_version) + strlen(opts->model_name)) +
	    2 * (sizeof(((struct sim_gpu *)0)->model_name) +
	         sizeof(((struct sim_gpu *)0)->mig_profile)) +
	    64 /* GPU_I_PROFILE, GPU_I_ID */ +
	    2 * (sizeof(((struct sim_gpu *)0)->pod) + sizeof(((struct sim_gpu *)0)->pod_namespace) +
	         sizeof(((struct sim_gpu *)0)->container)) +
	    64 /* container, namespace, pod */;
	size_t per_sample = 64 + label + 160 /* err_code, err_msg */ + 400 /* value */ + 4;
	size_t per_family = 2 * 64 + 512;
	return SIM_F_COUNT * per_family + n_gpus * SIM_F_COUNT * per_sample + 1;
}

int render_exposition(const struct sim_gpu *gpus, size_t n, const struct render_opts *opts,
                      char *buf, size_t cap, size_t *len)
{
	if (cap == 0)
		return -ENOSPC;
	struct out o = {buf, buf + cap - 1, false}; /* room for the NUL */
	/* Each GPU's label block is escaped once, then copied from where it first landed in buf
	 * (one allocation per render; without it every sample escapes its labels again). */
	struct span {
		size_t off, len;
	} *labels = calloc(n ? n : 1, sizeof(*labels));

	for (unsigned f = 0; f < SIM_F_COUNT && !o.full; f++) {
		uint64_t bit = 1ull << f;
		size_t i;
		for (i = 0; i < n; i++)
			if (gpus[i].present && (gpus[i].valid & bit))
				break;
		if (i == n)
			continue; /* no GPU reports it: no family, as dcgm-exporter */
		puts_(&o, "# HELP ");
		puts_(&o, fields[f].name);
		puts_(&o, " ");
		puts_(&o, fields[f].help);
		puts_(&o, "\n# TYPE ");
		puts_(&o, fields[f].name);
		puts_(&o, " ");
		puts_(&o, fields[f].type);
		puts_(&o, "\n");
		size_t name_len = strlen(fields[f].name);
		bool is_float = sim_field_is_float((enum sim_field)f);
		for (; i < n && !o.full; i++) {
			const struct sim_gpu *g = &gpus[i];
			if (!g->present || !(g->valid & bit))
				continue;
			put(&o, fields[f].name, name_len);
			if (labels && labels[i].len) {
				put(&o, buf + labels[i].off, labels[i].len);
			} else {
				char *lab = o.p;
				put_labels(&o, g, opts);
				if (labels && !o.full) {
					labels[i].off = (size_t)(lab - buf);
					labels[i].len = (size_t)(o.p - lab);
				}
			}
			if (f == SIM_F_XID) {
				char code[16];
				snprintf(code, sizeof(code), "%u", (unsigned)g->u[f]);
				puts_(&o, ",err_code=\"");
				puts_(&o, code);
				puts_(&o, "\",err_msg=\"");
				put_escaped(&o, render_xid_message((unsigned)g->u[f]));
				puts_(&o, "\"");
			}
			put(&o, "} ", 2);
			if (is_float)
				put_f(&o, g->f[f]);
			else
				put_u64(&o, g->u[f]);
			put(&o, "\n", 1);
		}
	}
	free(labels);
	if (o.full)
		return -ENOSPC;
	*o.p = '\0';
	*len = (size_t)(o.p - buf);
	return 0;
}
