#include "health/prom_samples.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fields.h"

struct prom_samples {
	struct health_sample *s;
	size_t n, max;
	size_t last; /* the GPU of the previous sample: dcgm-exporter groups by family, so the
		      * next GPU is usually last + 1 */
	size_t dropped;
	double time;
	int field_of[64]; /* fields.h index -> hs_field, or -1 */
	size_t nfields;
	/* the family of the previous sample (samples of a family come together) */
	char fam[128];
	size_t famlen;
	int famf;
};

int prom_samples_create(struct prom_samples **out, size_t max_gpus)
{
	struct prom_samples *ps = calloc(1, sizeof(*ps));
	if (!ps || !(ps->s = calloc(max_gpus ? max_gpus : 1, sizeof(*ps->s)))) {
		free(ps);
		return -ENOMEM;
	}
	ps->max = max_gpus;
	const struct field_def *all = fields_all(&ps->nfields);
	for (size_t i = 0; i < ps->nfields && i < 64; i++) {
		ps->field_of[i] = -1;
		for (int f = 0; f < HS_COUNT; f++)
			if (strcmp(all[i].key, health_sample_field_name((enum hs_field)f)) == 0)
				ps->field_of[i] = f;
	}
	*out = ps; /* caller owns: prom_samples_destroy */
	return 0;
}

void prom_samples_destroy(struct prom_samples *ps)
{
	if (!ps)
		return;
	free(ps->s);
	free(ps);
}

void prom_samples_begin(struct prom_samples *ps, double time)
{
	ps->n = ps->last = ps->dropped = 0;
	ps->famlen = 0;
	ps->time = time;
}

size_t prom_samples_count(const struct prom_samples *ps) { return ps->n; }
const struct health_sample *prom_samples_get(const struct prom_samples *ps, size_t i)
{
	return i < ps->n ? &ps->s[i] : NULL;
}
size_t prom_samples_dropped(const struct prom_samples *ps) { return ps->dropped; }

static void copy_label(char *dst, size_t cap, const struct prom_label *l)
{
	if (!l) {
		dst[0] = '\0';
		return;
	}
	if (prom_unescape(l->value, dst, cap, NULL))
		dst[0] = '\0';
}

static struct health_sample *gpu_for(struct prom_samples *ps, const struct prom_sample *s)
{
	const struct prom_label *uuid = prom_sample_label(s, "UUID");
	if (!uuid)
		uuid = prom_sample_label(s, "gpu_uuid");
	if (!uuid || !uuid->value.len)
		return NULL;
	const struct prom_label *mig = prom_sample_label(s, "GPU_I_ID");
	char key[HS_KEY_MAX];
	size_t klen = 0;
	if (uuid->escaped || uuid->value.len >= sizeof(key))
		copy_label(key, sizeof(key), uuid);
	else {
		memcpy(key, uuid->value.ptr, uuid->value.len);
		key[uuid->value.len] = '\0';
	}
	klen = strlen(key);
	if (mig && mig->value.len) {
		char m[32];
		copy_label(m, sizeof(m), mig);
		int w = snprintf(key + klen, sizeof(key) - klen, "/%s", m);
		klen = w > 0 && (size_t)w < sizeof(key) - klen ? klen + (size_t)w : strlen(key);
	}
	for (size_t k = 0; k < ps->n; k++) {
		size_t i = (ps->last + 1 + k) % ps->n;
		if (memcmp(ps->s[i].key, key, klen + 1) == 0) {
			ps->last = i;
			return &ps->s[i];
		}
	}
	if (ps->n == ps->max)
		return NULL;
	struct health_sample *h = &ps->s[ps->n];
	memset(h, 0, sizeof(*h));
	snprintf(h->key, sizeof(h->key), "%s", key);
	h->time = ps->time;
	h->index = -1;
	const struct prom_label *host = prom_sample_label(s, "hostname");
	copy_label(h->host, sizeof(h->host), host ? host : prom_sample_label(s, "Hostname"));
	const struct prom_label *model = prom_sample_label(s, "modelName");
	copy_label(h->model, sizeof(h->model), model ? model : prom_sample_label(s, "model_name"));
	const struct prom_label *idx = prom_sample_label(s, "gpu");
	if (idx && idx->value.len && idx->value.len < 10) {
		int v = 0;
		size_t j = 0;
		for (; j < idx->value.len && idx->value.ptr[j] >= '0' && idx->value.ptr[j] <= '9'; j++)
			v = v * 10 + (idx->value.ptr[j] - '0');
		if (j == idx->value.len)
			h->index = v;
	}
	ps->last = ps->n;
	return &ps->s[ps->n++];
}

int prom_samples_cb(const struct prom_sample *s, void *ud)
{
	struct prom_samples *ps = ud;
	if (s->name.len < 8 || memcmp(s->name.ptr, "DCGM_FI_", 8) != 0)
		return 0;
	int f = -1;
	if (ps->famlen && s->name.len == ps->famlen && memcmp(s->name.ptr, ps->fam, ps->famlen) == 0) {
		f = ps->famf;
	} else {
		const struct field_def *def = fields_by_dcgm(s->name.ptr, s->name.len);
		if (def) {
			size_t i = fields_index(def);
			f = i < 64 ? ps->field_of[i] : -1;
		} else if (prom_slice_eq(s->name, "DCGM_FI_DEV_GPU_MAX_OP_TEMP")) {
			f = HS_MAX_OP_TEMP;
		}
		if (s->name.len < sizeof(ps->fam)) {
			memcpy(ps->fam, s->name.ptr, s->name.len);
			ps->famlen = s->name.len;
			ps->famf = f;
		}
	}
	if (f < 0)
		return 0;
	struct health_sample *h = gpu_for(ps, s);
	if (!h) {
		ps->dropped++;
		return 0;
	}
	if (h->valid >> f & 1u) /* a second series of the field: the first is kept */
		return 0;
	const struct prom_value *v = &s->value;
	if (v->form == PROM_FORM_SPECIAL)
		return 0;
	if (v->form == PROM_FORM_INT) {
		if (v->exact && !v->negative && v->u64 >= 9223372036854775792ull &&
		    v->u64 <= 9223372036854775807ull)
			return 0; /* DCGM int blank */
		if (v->exact && !v->negative) {
			h->v[f] = (double)v->u64;
			h->u[f] = v->u64;
			h->valid |= 1u << f;
			return 0;
		}
	} else if (v->d >= 140737488355328.0) {
		return 0; /* DCGM FP64 blank */
	}
	health_sample_set(h, (enum hs_field)f, v->d);
	return 0;
}
