#include "collect/events.h"

#include "core/fields.h"

#include <errno.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Blank sentinels of dcgm-exporter (event-v1: DCGM_INT64_BLANK .. +15, DCGM_FP64_BLANK). */
#define BLANK_INT_MIN UINT64_C(9223372036854775792)
#define BLANK_FP_MIN  140737488355328.0
/* Longest identity label value kept (decoded), with its NUL. */
#define LABEL_TEXT_MAX 1024

/* The labels that name a GPU, in one table: where each goes in the event. */
enum ident {
	ID_UUID,
	ID_GPU_UUID, /* NVLink series */
	ID_MIG_ID,
	ID_MIG_PROFILE,
	ID_INDEX,
	ID_MODEL,
	ID_MODEL2, /* NVLink series */
	ID_PCI,
	ID_DEVICE,
	ID_HOST,
	ID_HOST_OLD,
	ID_DRIVER,
	ID_N
};
#define I(name)                                                                                    \
	{                                                                                          \
		name, sizeof(name) - 1                                                             \
	}
static const struct {
	const char *name;
	size_t len;
} ident_label[ID_N] = {
    [ID_UUID] = I("UUID"),         [ID_GPU_UUID] = I("gpu_uuid"),
    [ID_MIG_ID] = I("GPU_I_ID"),   [ID_MIG_PROFILE] = I("GPU_I_PROFILE"),
    [ID_INDEX] = I("gpu"),         [ID_MODEL] = I("modelName"),
    [ID_MODEL2] = I("model_name"), [ID_PCI] = I("pci_bus_id"),
    [ID_DEVICE] = I("device"),     [ID_HOST] = I("hostname"),
    [ID_HOST_OLD] = I("Hostname"), [ID_DRIVER] = I("DCGM_FI_DRIVER_VERSION"),
};

/* Fields of the event filled from labels: bit per field. */
enum fill {
	F_HOST = 1u << 0,
	F_INDEX = 1u << 1,
	F_MODEL = 1u << 2,
	F_PCI = 1u << 3,
	F_DEVICE = 1u << 4,
	F_DRIVER = 1u << 5,
	F_MIG_PROFILE = 1u << 6,
	F_MIG_ID = 1u << 7,
};

struct gpu_event {
	char key[EVENTS_KEY_MAX];
	size_t keylen;
	json_t *root;    /* owned */
	json_t *gpu;     /* borrowed from root */
	json_t *metrics; /* borrowed from root */
	json_t *extra;   /* borrowed from root */
	unsigned filled; /* enum fill bits */
};

struct events {
	char *cluster, *datacenter, *rack; /* owned copies, NULL when unset */
	char time[EVENTS_TIME_LEN];
	bool begun;
	struct gpu_event *gpus;
	size_t n, cap;
	struct events_stats st;
};

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static void c_locale_init(void)
{
	c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

const char *events_skip_str(enum events_skip why)
{
	switch (why) {
	case EVENTS_SKIP_NO_UUID: return "no UUID label: cannot be put on a GPU";
	case EVENTS_SKIP_BAD_KEY: return "UUID or GPU_I_ID label unusable";
	case EVENTS_SKIP_DUPLICATE: return "field already set for this GPU (first kept)";
	case EVENTS_SKIP_TOO_MANY_GPUS: return "more GPUs than the limit";
	}
	return "unknown";
}

static char *dup_or_null(const char *s)
{
	return (s && *s) ? strdup(s) : NULL;
}

int events_create(struct events **out, const struct events_enrich *en)
{
	struct events *ev = calloc(1, sizeof(*ev));
	if (!ev)
		return -ENOMEM;
	if (en) {
		ev->cluster = dup_or_null(en->cluster);
		ev->datacenter = dup_or_null(en->datacenter);
		ev->rack = dup_or_null(en->rack);
		if ((en->cluster && *en->cluster && !ev->cluster) ||
		    (en->datacenter && *en->datacenter && !ev->datacenter) ||
		    (en->rack && *en->rack && !ev->rack)) {
			events_destroy(ev);
			return -ENOMEM;
		}
	}
	*out = ev; /* the caller owns ev */
	return 0;
}

static void drop_events(struct events *ev)
{
	for (size_t i = 0; i < ev->n; i++)
		json_decref(ev->gpus[i].root);
	ev->n = 0;
}

void events_destroy(struct events *ev)
{
	if (!ev)
		return;
	drop_events(ev);
	free(ev->gpus);
	free(ev->cluster);
	free(ev->datacenter);
	free(ev->rack);
	free(ev);
}

static bool time_valid(const char *t)
{
	static const char pat[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	if (!t || strlen(t) != sizeof(pat) - 1)
		return false;
	for (size_t i = 0; pat[i]; i++) {
		if (pat[i] == 'd' ? (t[i] < '0' || t[i] > '9') : t[i] != pat[i])
			return false;
	}
	return true;
}

int events_begin(struct events *ev, const char *time)
{
	if (!ev || !time_valid(time))
		return -EINVAL;
	drop_events(ev);
	memset(&ev->st, 0, sizeof(ev->st));
	memcpy(ev->time, time, EVENTS_TIME_LEN);
	ev->begun = true;
	return 0;
}

int events_format_time(const struct timespec *ts, char out[EVENTS_TIME_LEN])
{
	struct tm tm;
	char date[24];
	if (!ts || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000L || !gmtime_r(&ts->tv_sec, &tm))
		return -EINVAL;
	if (tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999 ||
	    strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) != 19)
		return -EINVAL;
	unsigned ms = (unsigned)(ts->tv_nsec / 1000000L);
	memcpy(out, date, 19);
	out[19] = '.';
	out[20] = (char)('0' + ms / 100);
	out[21] = (char)('0' + ms / 10 % 10);
	out[22] = (char)('0' + ms % 10);
	out[23] = 'Z';
	out[24] = '\0';
	return 0;
}

static void skipped(struct events *ev, const struct prom_sample *s, enum events_skip why)
{
	struct events_stats *st = &ev->st;
	switch (why) {
	case EVENTS_SKIP_NO_UUID: st->no_uuid++; break;
	case EVENTS_SKIP_BAD_KEY: st->bad_key++; break;
	case EVENTS_SKIP_DUPLICATE: st->duplicates++; break;
	case EVENTS_SKIP_TOO_MANY_GPUS: st->too_many_gpus++; break;
	}
	if (st->nskipped < EVENTS_SKIPPED_RECORDED) {
		struct events_skipped *k = &st->skipped[st->nskipped++];
		size_t n = s->name.len < sizeof(k->name) - 1 ? s->name.len : sizeof(k->name) - 1;
		k->line = s->line;
		k->reason = why;
		memcpy(k->name, s->name.ptr, n);
		k->name[n] = '\0';
	}
}

/* A label value as decoded text in buf; false when it does not fit. */
static bool label_text(const struct prom_label *l, char *buf, size_t size, size_t *len)
{
	if (!l->escaped) {
		if (l->value.len >= size)
			return false;
		memcpy(buf, l->value.ptr, l->value.len);
		buf[l->value.len] = '\0';
		*len = l->value.len;
		return true;
	}
	return prom_unescape(l->value, buf, size, len) == 0;
}

/* A JSON string of a label value, or NULL (counted) when it is too long, not UTF-8, or holds
 * a NUL byte (which PostgreSQL's jsonb and every C consumer would choke on). */
static json_t *label_string(struct events *ev, const struct prom_label *l)
{
	char buf[LABEL_TEXT_MAX];
	size_t len;
	json_t *j = NULL;
	if (label_text(l, buf, sizeof(buf), &len) && !memchr(buf, '\0', len))
		j = json_stringn(buf, len);
	if (!j)
		ev->st.bad_labels++;
	return j;
}

/* A JSON integer of a label value written as a whole number, or NULL (counted). */
static json_t *label_integer(struct events *ev, const struct prom_label *l)
{
	int64_t v = 0;
	const char *p = l->value.ptr;
	size_t n = l->value.len;
	if (n == 0 || n > 18 || l->escaped)
		goto bad;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			goto bad;
		v = v * 10 + (p[i] - '0');
	}
	return json_integer(v);
bad:
	ev->st.bad_labels++;
	return NULL;
}

/* Sets obj.key to j (stolen) unless j is NULL. Returns 0 or -ENOMEM. */
static int set_stolen(json_t *obj, const char *key, json_t *j)
{
	if (!j)
		return 0;
	return json_object_set_new(obj, key, j) == 0 ? 0 : -ENOMEM;
}

/* Fills the identity fields of g that are still null from the labels of one sample. */
static int fill_ident(struct events *ev, struct gpu_event *g, const struct prom_label *id[ID_N])
{
	int rc = 0;
	const struct prom_label *host = id[ID_HOST] ? id[ID_HOST] : id[ID_HOST_OLD];
	const struct prom_label *model = id[ID_MODEL] ? id[ID_MODEL] : id[ID_MODEL2];
	const bool mig = id[ID_MIG_ID] && id[ID_MIG_ID]->value.len > 0;

	if (!(g->filled & F_HOST) && host) {
		g->filled |= F_HOST;
		rc = set_stolen(g->root, "hostname", label_string(ev, host));
	}
	if (!rc && !(g->filled & F_INDEX) && id[ID_INDEX]) {
		g->filled |= F_INDEX;
		rc = set_stolen(g->gpu, "index", label_integer(ev, id[ID_INDEX]));
	}
	if (!rc && !(g->filled & F_MODEL) && model) {
		g->filled |= F_MODEL;
		rc = set_stolen(g->gpu, "model", label_string(ev, model));
	}
	if (!rc && !(g->filled & F_PCI) && id[ID_PCI]) {
		g->filled |= F_PCI;
		rc = set_stolen(g->gpu, "pci_bus_id", label_string(ev, id[ID_PCI]));
	}
	if (!rc && !(g->filled & F_DEVICE) && id[ID_DEVICE]) {
		g->filled |= F_DEVICE;
		rc = set_stolen(g->gpu, "device", label_string(ev, id[ID_DEVICE]));
	}
	if (!rc && !(g->filled & F_DRIVER) && id[ID_DRIVER]) {
		g->filled |= F_DRIVER;
		rc = set_stolen(g->gpu, "driver_version", label_string(ev, id[ID_DRIVER]));
	}
	if (!rc && mig && !(g->filled & F_MIG_PROFILE) && id[ID_MIG_PROFILE]) {
		g->filled |= F_MIG_PROFILE;
		rc = set_stolen(g->gpu, "mig_profile", label_string(ev, id[ID_MIG_PROFILE]));
	}
	if (!rc && mig && !(g->filled & F_MIG_ID)) {
		g->filled |= F_MIG_ID;
		rc = set_stolen(g->gpu, "mig_instance", label_integer(ev, id[ID_MIG_ID]));
	}
	return rc;
}

static json_t *opt_string(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* A new event for key, with every field of the contract in order, identity fields null. */
static int new_event(struct events *ev, const char *key, size_t keylen, const char *uuid,
                     struct gpu_event **out)
{
	struct gpu_event *g;
	json_t *root = NULL, *gpu = NULL, *metrics = NULL, *extra = NULL;
	int rc = -ENOMEM;

	if (ev->n == ev->cap) {
		size_t cap = ev->cap ? ev->cap * 2 : 8;
		struct gpu_event *p = realloc(ev->gpus, cap * sizeof(*p));
		if (!p)
			goto fail;
		ev->gpus = p;
		ev->cap = cap;
	}
	root = json_object();
	gpu = json_object();
	metrics = json_object();
	extra = json_object();
	if (!root || !gpu || !metrics || !extra)
		goto fail;
	if (json_object_set_new(root, "schema_version", json_integer(EVENTS_SCHEMA_VERSION)) ||
	    json_object_set_new(root, "time", json_string(ev->time)) ||
	    json_object_set_new(root, "hostname", json_null()) ||
	    json_object_set_new(root, "cluster", opt_string(ev->cluster)) ||
	    json_object_set_new(root, "datacenter", opt_string(ev->datacenter)) ||
	    json_object_set_new(root, "rack", opt_string(ev->rack)) ||
	    json_object_set_new(gpu, "index", json_null()) ||
	    json_object_set_new(gpu, "uuid", json_string(uuid)) ||
	    json_object_set_new(gpu, "model", json_null()) ||
	    json_object_set_new(gpu, "pci_bus_id", json_null()) ||
	    json_object_set_new(gpu, "device", json_null()) ||
	    json_object_set_new(gpu, "driver_version", json_null()) ||
	    json_object_set_new(gpu, "mig_profile", json_null()) ||
	    json_object_set_new(gpu, "mig_instance", json_null()))
		goto fail;
	/* root takes the three sub-objects; the borrowed pointers stay valid while root lives */
	if (json_object_set(root, "gpu", gpu) || json_object_set(root, "metrics", metrics) ||
	    json_object_set(root, "extra", extra))
		goto fail;
	g = &ev->gpus[ev->n++];
	memcpy(g->key, key, keylen + 1);
	g->keylen = keylen;
	g->root = root;
	g->gpu = gpu;
	g->metrics = metrics;
	g->extra = extra;
	g->filled = 0;
	json_decref(gpu);
	json_decref(metrics);
	json_decref(extra);
	*out = g;
	return 0;
fail:
	json_decref(root);
	json_decref(gpu);
	json_decref(metrics);
	json_decref(extra);
	return rc;
}

/* The JSON of a sample value per event v1; NULL only when out of memory. */
static json_t *value_json(struct events *ev, const struct prom_value *v)
{
	switch (v->form) {
	case PROM_FORM_SPECIAL: ev->st.nonfinite++; return json_null();
	case PROM_FORM_INT:
		if (v->exact && v->negative)
			return json_integer(v->i64);
		if (v->exact && v->u64 >= BLANK_INT_MIN && v->u64 <= (uint64_t)INT64_MAX) {
			ev->st.blank++;
			return json_null();
		}
		if (v->exact && v->u64 <= (uint64_t)INT64_MAX)
			return json_integer(v->i64);
		break; /* beyond 64 bits: a real */
	case PROM_FORM_FLOAT: break;
	}
	if (!isfinite(v->d)) {
		ev->st.nonfinite++;
		return json_null();
	}
	if (v->form == PROM_FORM_FLOAT && v->d >= BLANK_FP_MIN) {
		ev->st.blank++;
		return json_null();
	}
	if (v->form == PROM_FORM_INT)
		ev->st.inexact++;
	return json_real(v->d);
}

int events_add(struct events *ev, const struct prom_sample *s)
{
	const struct prom_label *id[ID_N] = {NULL};
	const struct prom_label *uuid_l;
	struct gpu_event *g = NULL;
	char key[EVENTS_KEY_MAX];
	size_t keylen = 0, idlen;
	const struct field_def *kf; /* a known field of event v1 (core/fields), or NULL */
	json_t *val, *obj;
	int rc = 0;

	if (!ev || !s || !ev->begun)
		return -EINVAL;
	ev->st.samples++;
	if (s->name.len <= 8 || memcmp(s->name.ptr, "DCGM_FI_", 8) != 0) {
		ev->st.not_dcgm++;
		return 0;
	}
	for (size_t i = 0; i < s->nlabels; i++) {
		const struct prom_slice ln = s->labels[i].name;
		for (size_t k = 0; k < ID_N; k++)
			if (ln.len == ident_label[k].len &&
			    memcmp(ln.ptr, ident_label[k].name, ln.len) == 0) {
				id[k] = &s->labels[i];
				break;
			}
	}
	uuid_l = id[ID_UUID] ? id[ID_UUID] : id[ID_GPU_UUID];
	if (!uuid_l || uuid_l->value.len == 0) {
		skipped(ev, s, EVENTS_SKIP_NO_UUID);
		return 0;
	}
	if (!label_text(uuid_l, key, sizeof(key), &keylen)) {
		skipped(ev, s, EVENTS_SKIP_BAD_KEY);
		return 0;
	}
	idlen = keylen;
	if (id[ID_MIG_ID] && id[ID_MIG_ID]->value.len > 0) {
		size_t ml;
		if (keylen + 2 > sizeof(key) ||
		    !label_text(id[ID_MIG_ID], key + keylen + 1, sizeof(key) - keylen - 1, &ml)) {
			skipped(ev, s, EVENTS_SKIP_BAD_KEY);
			return 0;
		}
		key[keylen] = '/';
		keylen += 1 + ml;
	}
	for (size_t i = ev->n; i-- > 0;)
		if (ev->gpus[i].keylen == keylen && memcmp(ev->gpus[i].key, key, keylen) == 0) {
			g = &ev->gpus[i];
			break;
		}
	if (!g) {
		char uuid[EVENTS_KEY_MAX];
		json_t *probe;
		if (ev->n >= EVENTS_MAX_GPUS) {
			skipped(ev, s, EVENTS_SKIP_TOO_MANY_GPUS);
			return 0;
		}
		memcpy(uuid, key, idlen);
		uuid[idlen] = '\0';
		/* the key must be valid UTF-8 for the JSON uuid field, and hold no NUL */
		probe = json_stringn(key, keylen);
		if (!probe || memchr(key, '\0', keylen)) {
			json_decref(probe);
			skipped(ev, s, EVENTS_SKIP_BAD_KEY);
			return 0;
		}
		json_decref(probe);
		rc = new_event(ev, key, keylen, uuid, &g);
		if (rc)
			goto out;
	}
	rc = fill_ident(ev, g, id);
	if (rc)
		goto out;

	kf = fields_by_dcgm(s->name.ptr, s->name.len);
	obj = kf ? g->metrics : g->extra;
	if (kf ? json_object_get(obj, kf->key) != NULL
	       : json_object_getn(obj, s->name.ptr, s->name.len) != NULL) {
		skipped(ev, s, EVENTS_SKIP_DUPLICATE);
		goto out;
	}
	val = value_json(ev, &s->value);
	if (!val) {
		rc = -ENOMEM;
		goto out;
	}
	/* the object takes val, also on failure */
	if (kf ? json_object_set_new(obj, kf->key, val)
	       : json_object_setn_new(obj, s->name.ptr, s->name.len, val)) {
		rc = -ENOMEM;
		goto out;
	}
	if (kf)
		ev->st.metrics++;
	else
		ev->st.extra++;
out:
	return rc;
}

int events_prom_cb(const struct prom_sample *s, void *ud)
{
	return events_add(ud, s);
}

size_t events_count(const struct events *ev)
{
	return ev->n;
}

const char *events_key(const struct events *ev, size_t i)
{
	return i < ev->n ? ev->gpus[i].key : NULL;
}

const json_t *events_json(const struct events *ev, size_t i)
{
	return i < ev->n ? ev->gpus[i].root : NULL;
}

const struct events_stats *events_stats(const struct events *ev)
{
	return &ev->st;
}

/* ---- rendering: compact JSON into a bounded buffer */

struct writer {
	char *buf;
	size_t size;
	size_t len; /* what the whole text needs, also past size */
};

static void put(struct writer *w, const char *s, size_t n)
{
	if (w->len < w->size) {
		size_t room = w->size - w->len;
		memcpy(w->buf + w->len, s, n < room ? n : room);
	}
	w->len += n;
}

static void put_string(struct writer *w, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t run = 0;
	put(w, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[6];
		size_t el = 2;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		put(w, s + run, i - run);
		run = i + 1;
		esc[0] = '\\';
		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			el = 6;
		}
		put(w, esc, el);
	}
	put(w, s + run, n - run);
	put(w, "\"", 1);
}

/* The shortest %.Ng (N = 15..17) that reads back to d, with ".0" added to whole numbers.
 * The caller has switched this thread to the C locale (a '.' whatever LC_NUMERIC says). */
static void put_real(struct writer *w, double d)
{
	char tmp[40];
	int n = 0;
	for (int prec = 15; prec <= 17; prec++) {
		n = snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
		if (n <= 0 || (size_t)n >= sizeof(tmp) - 2)
			break;
		if (strtod(tmp, NULL) == d)
			break;
	}
	if (n <= 0 || (size_t)n >= sizeof(tmp) - 2) {
		put(w, "null", 4); /* cannot happen for a finite double */
		return;
	}
	if (!strpbrk(tmp, ".eE")) {
		tmp[n++] = '.';
		tmp[n++] = '0';
	}
	put(w, tmp, (size_t)n);
}

static int put_json(struct writer *w, const json_t *j, int depth)
{
	char tmp[32];
	int n;
	const char *k;
	json_t *v;
	bool first = true;

	if (depth > 64)
		return -EINVAL;
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		put(w, "{", 1);
		json_object_foreach((json_t *)j, k, v)
		{
			if (!first)
				put(w, ",", 1);
			first = false;
			put_string(w, k, strlen(k));
			put(w, ":", 1);
			if (put_json(w, v, depth + 1))
				return -EINVAL;
		}
		put(w, "}", 1);
		return 0;
	case JSON_ARRAY:
		put(w, "[", 1);
		for (size_t i = 0; i < json_array_size(j); i++) {
			if (i)
				put(w, ",", 1);
			if (put_json(w, json_array_get(j, i), depth + 1))
				return -EINVAL;
		}
		put(w, "]", 1);
		return 0;
	case JSON_STRING: put_string(w, json_string_value(j), json_string_length(j)); return 0;
	case JSON_INTEGER:
		n = snprintf(tmp, sizeof(tmp), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
		put(w, tmp, (size_t)n);
		return 0;
	case JSON_REAL: put_real(w, json_real_value(j)); return 0;
	case JSON_TRUE: put(w, "true", 4); return 0;
	case JSON_FALSE: put(w, "false", 5); return 0;
	case JSON_NULL: put(w, "null", 4); return 0;
	}
	return -EINVAL;
}

int events_render_json(const json_t *j, char *buf, size_t size, size_t *len)
{
	struct writer w = {buf, size, 0};
	locale_t old = (locale_t)0;
	int rc;
	if (!j || !len || (!buf && size > 0))
		return -EINVAL;
	pthread_once(&c_locale_once, c_locale_init);
	if (c_locale != (locale_t)0)
		old = uselocale(c_locale);
	rc = put_json(&w, j, 0);
	if (old != (locale_t)0)
		uselocale(old);
	if (rc)
		return rc;
	*len = w.len;
	if (w.len >= size) {
		if (size > 0)
			buf[size - 1] = '\0';
		return -ENOSPC;
	}
	buf[w.len] = '\0';
	return 0;
}

int events_render(const struct events *ev, size_t i, char *buf, size_t size, size_t *len)
{
	if (!ev || i >= ev->n)
		return -EINVAL;
	return events_render_json(ev->gpus[i].root, buf, size, len);
}
