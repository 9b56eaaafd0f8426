#include "health/alerts.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"

struct state {
	char *id; /* "key\x1fkind", owned */
	enum health_status open;  /* HEALTH_PASS: no open alert */
	enum health_status cand;  /* least severity of the current worse streak */
	int worse_n, healthy_n;
	int clear_run;         /* healthy samples needed to clear now */
	uint64_t steps;        /* evaluations seen */
	uint64_t cleared_step; /* when the last clear happened; 0: never */
};

struct alerts {
	struct alerts_opts o;
	struct state *slots;
	size_t cap, n, nopen;
};

const char *alert_action_name(enum alert_action a)
{
	switch (a) {
	case ALERT_NONE: return "none";
	case ALERT_RAISE: return "raise";
	case ALERT_ESCALATE: return "escalate";
	case ALERT_CLEAR: return "clear";
	}
	return "?";
}

int alerts_create(struct alerts **out, const struct alerts_opts *opts)
{
	struct alerts *a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->o.raise_after = opts && opts->raise_after > 0 ? opts->raise_after : ALERTS_RAISE_AFTER;
	a->o.clear_after = opts && opts->clear_after > 0 ? opts->clear_after : ALERTS_CLEAR_AFTER;
	*out = a; /* caller owns: alerts_destroy */
	return 0;
}

void alerts_destroy(struct alerts *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->cap; i++)
		free(a->slots[i].id);
	free(a->slots);
	free(a);
}

static uint64_t hash_id(const char *k)
{
	return hash_fnv1a64_str_more(HASH_FNV1A64_GH_BASIS, k); /* FNV-1a, our basis */
}

static int make_id(const char *key, const char *kind, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s\x1f%s", key, kind);
	return n < 0 || (size_t)n >= len ? -EINVAL : 0;
}

static struct state *find(const struct alerts *a, const char *id)
{
	if (!a->cap)
		return NULL;
	for (size_t j = hash_id(id) & (a->cap - 1); a->slots[j].id; j = (j + 1) & (a->cap - 1))
		if (strcmp(a->slots[j].id, id) == 0)
			return &a->slots[j];
	return NULL;
}

static struct state *get(struct alerts *a, const char *id)
{
	struct state *s = find(a, id);
	if (s)
		return s;
	if ((a->n + 1) * 10 > a->cap * 7) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		struct state *slots = calloc(cap, sizeof(*slots));
		if (!slots)
			return NULL;
		for (size_t i = 0; i < a->cap; i++) {
			if (!a->slots[i].id)
				continue;
			size_t j = hash_id(a->slots[i].id) & (cap - 1);
			while (slots[j].id)
				j = (j + 1) & (cap - 1);
			slots[j] = a->slots[i];
		}
		free(a->slots);
		a->slots = slots;
		a->cap = cap;
	}
	size_t j = hash_id(id) & (a->cap - 1);
	while (a->slots[j].id)
		j = (j + 1) & (a->cap - 1);
	s = &a->slots[j];
	if (!(s->id = strdup(id)))
		return NULL;
	a->n++;
	return s;
}

int alerts_step(struct alerts *a, const char *key, const char *kind, enum health_status sev,
		bool immediate, enum alert_action *action, enum health_status *open_sev)
{
	char id[HS_KEY_MAX + 64];
	*action = ALERT_NONE;
	if (make_id(key, kind, id, sizeof(id)))
		return -EINVAL;
	struct state *s = find(a, id);
	if (!s && sev == HEALTH_PASS) { /* nothing open, nothing to do: keep no state */
		*open_sev = HEALTH_PASS;
		return 0;
	}
	if (!s && !(s = get(a, id)))
		return -ENOMEM;
	s->steps++;
	if (!s->clear_run)
		s->clear_run = a->o.clear_after;
	if (sev > s->open) {
		s->healthy_n = 0;
		s->cand = s->worse_n ? (sev < s->cand ? sev : s->cand) : sev;
		s->worse_n++;
		if (immediate || s->worse_n >= a->o.raise_after) {
			enum health_status to = immediate ? sev : s->cand;
			*action = s->open == HEALTH_PASS ? ALERT_RAISE : ALERT_ESCALATE;
			if (s->open == HEALTH_PASS) {
				a->nopen++;
				/* flap damping */
				if (s->cleared_step &&
				    s->steps - s->cleared_step <= (uint64_t)ALERTS_FLAP_WINDOW * (uint64_t)s->clear_run) {
					int max = a->o.clear_after * ALERTS_FLAP_MAX_RUN;
					s->clear_run = s->clear_run > max / ALERTS_FLAP_FACTOR
							       ? max
							       : s->clear_run * ALERTS_FLAP_FACTOR;
				} else {
					s->clear_run = a->o.clear_after;
				}
			}
			s->open = to;
			s->worse_n = 0;
		}
	} else {
		s->worse_n = 0;
		if (s->open != HEALTH_PASS && sev == HEALTH_PASS) {
			if (++s->healthy_n >= s->clear_run) {
				*action = ALERT_CLEAR;
				s->open = HEALTH_PASS;
				s->healthy_n = 0;
				s->cleared_step = s->steps;
				a->nopen--;
			}
		} else {
			s->healthy_n = 0;
		}
	}
	*open_sev = s->open;
	return 0;
}

int alerts_restore(struct alerts *a, const char *key, const char *kind, enum health_status sev)
{
	char id[HS_KEY_MAX + 64];
	if (make_id(key, kind, id, sizeof(id)) || sev == HEALTH_PASS)
		return -EINVAL;
	struct state *s = get(a, id);
	if (!s)
		return -ENOMEM;
	if (s->open == HEALTH_PASS)
		a->nopen++;
	s->open = sev;
	s->worse_n = s->healthy_n = 0;
	return 0;
}

enum health_status alerts_open(const struct alerts *a, const char *key, const char *kind)
{
	char id[HS_KEY_MAX + 64];
	if (make_id(key, kind, id, sizeof(id)))
		return HEALTH_PASS;
	const struct state *s = find(a, id);
	return s ? s->open : HEALTH_PASS;
}

size_t alerts_open_count(const struct alerts *a) { return a->nopen; }
