#include "core/config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/textfile.h"

struct value {
	enum config_source src;
	bool has;
	char *text; /* owned; STR/INT/DOUBLE/DURATION/BOOL */
	int64_t i;
	double d;
	bool b;
	char **items; /* owned; LIST */
	size_t nitems;
};

struct config {
	const struct config_option *table;
	size_t n;
	unsigned mode;
	const char *mode_name;
	struct value *values;
	char **pos;
	size_t npos;
};

static void errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* How to name an option in a message, as the user wrote it. */
static void describe(const struct config_option *o, enum config_source src, char *buf, size_t len)
{
	if (src == CONFIG_SRC_ENV && o->env)
		snprintf(buf, len, "%s", o->env);
	else if (src == CONFIG_SRC_FILE)
		snprintf(buf, len, "config key '%s'", o->name);
	else if (o->name[1] == '\0' && o->short_name)
		snprintf(buf, len, "-%c", o->short_name);
	else
		snprintf(buf, len, "--%s", o->name);
}

int config_parse_duration(const char *text, double *seconds)
{
	if (!text || !*text)
		return -EINVAL;
	char *end = NULL;
	errno = 0;
	double v = strtod(text, &end);
	if (errno || end == text || !isfinite(v) || v < 0)
		return -EINVAL;
	double mul = 1;
	if (*end == '\0' || strcmp(end, "s") == 0)
		mul = 1;
	else if (strcmp(end, "ms") == 0)
		mul = 0.001;
	else if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
		mul = 60;
	else if (strcmp(end, "h") == 0)
		mul = 3600;
	else if (strcmp(end, "d") == 0)
		mul = 86400;
	else
		return -EINVAL;
	*seconds = v * mul;
	return 0;
}

static int parse_bool_text(const char *t, bool *out)
{
	static const char *const yes[] = {"1", "true", "yes", "on"};
	static const char *const no[] = {"0", "false", "no", "off", ""};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (strcasecmp(t, yes[i]) == 0) {
			*out = true;
			return 0;
		}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (strcasecmp(t, no[i]) == 0) {
			*out = false;
			return 0;
		}
	return -EINVAL;
}

static bool has_range(const struct config_option *o) { return o->min <= o->max; }

/* Converts and range-checks text into v (which is left unchanged on error). */
static int convert(const struct config_option *o, enum config_source src, const char *text,
		   struct value *v, char *err, size_t errlen)
{
	char who[96];
	describe(o, src, who, sizeof(who));
	switch (o->type) {
	case CONFIG_INT: {
		char *end = NULL;
		errno = 0;
		long long x = strtoll(text, &end, 10);
		if (errno || end == text || *end != '\0') {
			errf(err, errlen, "%s: '%s' is not a whole number (e.g. %s%s%s)", who, text, who,
			     src == CONFIG_SRC_ENV ? "=" : " ", o->def ? o->def : "1");
			return -EINVAL;
		}
		if (has_range(o) && ((double)x < o->min || (double)x > o->max)) {
			errf(err, errlen, "%s: %s is out of range (use %.0f to %.0f)", who, text, o->min,
			     o->max);
			return -EINVAL;
		}
		v->i = x;
		v->d = (double)x;
		break;
	}
	case CONFIG_DOUBLE:
	case CONFIG_DURATION: {
		double x;
		if (o->type == CONFIG_DURATION) {
			if (config_parse_duration(text, &x) != 0) {
				errf(err, errlen,
				     "%s: '%s' is not a duration (give seconds, e.g. 10 or 2.5, or a unit: "
				     "500ms, 10s, 5m, 1h, 7d)",
				     who, text);
				return -EINVAL;
			}
		} else {
			char *end = NULL;
			errno = 0;
			x = strtod(text, &end);
			if (errno || end == text || *end != '\0' || !isfinite(x)) {
				errf(err, errlen, "%s: '%s' is not a number (e.g. %s%s%s)", who, text, who,
				     src == CONFIG_SRC_ENV ? "=" : " ", o->def ? o->def : "1");
				return -EINVAL;
			}
		}
		if (has_range(o) && (x < o->min || x > o->max)) {
			errf(err, errlen, "%s: %s is out of range (use %g to %g)", who, text, o->min, o->max);
			return -EINVAL;
		}
		v->d = x;
		v->i = (int64_t)x;
		break;
	}
	case CONFIG_BOOL: {
		bool b;
		if ((o->flags & CONFIG_F_ENV_NONEMPTY) && src == CONFIG_SRC_ENV) {
			b = text[0] != '\0';
		} else if (parse_bool_text(text, &b) != 0) {
			errf(err, errlen, "%s: '%s' is not a yes/no value (use true or false)", who, text);
			return -EINVAL;
		}
		v->b = b;
		break;
	}
	case CONFIG_STR:
	case CONFIG_LIST:
		break;
	}
	return 0;
}

static void value_clear(struct value *v)
{
	free(v->text);
	for (size_t i = 0; i < v->nitems; i++)
		free(v->items[i]);
	free(v->items);
	memset(v, 0, sizeof(*v));
}

/* Sets one value from a source, honouring precedence. Lists: a higher source replaces what a
 * lower one gave, the same source appends. */
static int set_value(struct config *cfg, size_t idx, enum config_source src, const char *text,
		     char *err, size_t errlen)
{
	const struct config_option *o = &cfg->table[idx];
	struct value *cur = &cfg->values[idx];
	if (cur->has && cur->src > src)
		return 0;
	if (o->type == CONFIG_LIST) {
		if (cur->has && cur->src < src)
			value_clear(cur);
		char **grown = realloc(cur->items, (cur->nitems + 1) * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		cur->items = grown;
		cur->items[cur->nitems] = strdup(text);
		if (!cur->items[cur->nitems])
			return -ENOMEM;
		cur->nitems++;
		cur->has = true;
		cur->src = src;
		return 0;
	}
	struct value nv = *cur;
	int rc = convert(o, src, text, &nv, err, errlen);
	if (rc)
		return rc;
	char *copy = strdup(text);
	if (!copy)
		return -ENOMEM;
	free(cur->text);
	*cur = nv;
	cur->text = copy;
	cur->has = true;
	cur->src = src;
	return 0;
}

void config_destroy(struct config *cfg)
{
	if (!cfg)
		return;
	if (cfg->values)
		for (size_t i = 0; i < cfg->n; i++)
			value_clear(&cfg->values[i]);
	free(cfg->values);
	for (size_t i = 0; i < cfg->npos; i++)
		free(cfg->pos[i]);
	free(cfg->pos);
	free(cfg);
}

int config_create(struct config **out, const struct config_option *table, size_t n,
		  unsigned mode, const char *mode_name)
{
	int rc = -ENOMEM;
	struct config *cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		goto out;
	cfg->table = table;
	cfg->n = n;
	cfg->mode = mode;
	cfg->mode_name = mode_name;
	cfg->values = calloc(n ? n : 1, sizeof(*cfg->values));
	if (!cfg->values)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (!table[i].def || !(table[i].modes & mode))
			continue;
		char err[256];
		rc = set_value(cfg, i, CONFIG_SRC_DEFAULT, table[i].def, err, sizeof(err));
		if (rc) /* a bad default is a bug in the table */
			goto out;
		cfg->values[i].has = true;
	}
	*out = cfg; /* caller owns */
	cfg = NULL;
	rc = 0;
out:
	config_destroy(cfg);
	return rc;
}

static long find_long(const struct config *cfg, const char *name, size_t len)
{
	for (size_t i = 0; i < cfg->n; i++)
		if (strlen(cfg->table[i].name) == len && strncmp(cfg->table[i].name, name, len) == 0)
			return (long)i;
	return -1;
}

static long find_short(const struct config *cfg, char c)
{
	for (size_t i = 0; i < cfg->n; i++)
		if (cfg->table[i].short_name == c)
			return (long)i;
	return -1;
}

static void modes_hint(const struct config *cfg, char *err, size_t errlen, const char *arg)
{
	errf(err, errlen, "option '%s' does not apply to '%s'; see 'gpuhealth %s --help' for its options",
	     arg, cfg->mode_name, cfg->mode_name);
}

int config_parse_args(struct config *cfg, int argc, char **argv, char *err, size_t errlen)
{
	bool only_pos = false;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		long idx = -1;
		const char *inline_val = NULL;
		if (only_pos || a[0] != '-' || a[1] == '\0') {
			char **grown = realloc(cfg->pos, (cfg->npos + 1) * sizeof(*grown));
			if (!grown)
				return -ENOMEM;
			cfg->pos = grown;
			if (!(cfg->pos[cfg->npos] = strdup(a)))
				return -ENOMEM;
			cfg->npos++;
			continue;
		}
		if (strcmp(a, "--") == 0) {
			only_pos = true;
			continue;
		}
		if (a[1] == '-') {
			const char *name = a + 2;
			const char *eq = strchr(name, '=');
			size_t len = eq ? (size_t)(eq - name) : strlen(name);
			idx = find_long(cfg, name, len);
			if (eq)
				inline_val = eq + 1;
		} else {
			idx = find_short(cfg, a[1]);
			if (a[2] != '\0')
				inline_val = a + 2;
		}
		/* the option as named, without a value written into it ("--db=URL", "-Xk=v"):
		 * that value may be a password */
		char opt[64];
		snprintf(opt, sizeof(opt), "%.*s", a[1] == '-' ? (int)(2 + strcspn(a + 2, "=")) : 2,
			 a);
		if (idx < 0) {
			errf(err, errlen, "unknown option '%s'; see 'gpuhealth %s --help'", opt,
			     cfg->mode_name);
			return -EINVAL;
		}
		const struct config_option *o = &cfg->table[idx];
		if (!(o->modes & cfg->mode)) {
			modes_hint(cfg, err, errlen, opt);
			return -EINVAL;
		}
		const char *val;
		if (o->type == CONFIG_BOOL) {
			val = inline_val ? inline_val : "true";
		} else if (inline_val) {
			val = inline_val;
		} else if (i + 1 < argc) {
			val = argv[++i];
		} else {
			errf(err, errlen, "option '%s' needs a value (%s %s)", a, a, o->arg ? o->arg : "VALUE");
			return -EINVAL;
		}
		int rc = set_value(cfg, (size_t)idx, CONFIG_SRC_FLAG, val, err, errlen);
		if (rc)
			return rc;
	}
	return 0;
}

/* Splits text on any of seps, trimming blanks; empty items are skipped. */
static int set_list_from(struct config *cfg, size_t idx, enum config_source src, const char *text,
			 const char *seps, char *err, size_t errlen)
{
	char *copy = strdup(text);
	if (!copy)
		return -ENOMEM;
	int rc = 0;
	char *save = NULL;
	for (char *tok = strtok_r(copy, seps, &save); tok; tok = strtok_r(NULL, seps, &save)) {
		while (*tok == ' ' || *tok == '\t')
			tok++;
		size_t l = strlen(tok);
		while (l && (tok[l - 1] == ' ' || tok[l - 1] == '\t'))
			tok[--l] = '\0';
		if (!*tok)
			continue;
		rc = set_value(cfg, idx, src, tok, err, errlen);
		if (rc)
			break;
	}
	free(copy);
	return rc;
}

int config_load_env(struct config *cfg, const char *(*getenv_fn)(const char *name), char *err,
		    size_t errlen)
{
	for (size_t i = 0; i < cfg->n; i++) {
		const struct config_option *o = &cfg->table[i];
		if (!o->env || !(o->modes & cfg->mode))
			continue;
		const char *v = getenv_fn(o->env);
		if (!v)
			continue;
		int rc;
		if (o->type == CONFIG_LIST)
			rc = set_list_from(cfg, i, CONFIG_SRC_ENV, v, o->env_sep ? o->env_sep : ",", err,
					   errlen);
		else if (*v == '\0' && !(o->flags & CONFIG_F_ENV_NONEMPTY))
			continue; /* VAR= means unset, as shells and compose files use it */
		else
			rc = set_value(cfg, i, CONFIG_SRC_ENV, v, err, errlen);
		if (rc)
			return rc;
	}
	return 0;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t l = strlen(s);
	while (l && (s[l - 1] == ' ' || s[l - 1] == '\t' || s[l - 1] == '\r' || s[l - 1] == '\n'))
		s[--l] = '\0';
	return s;
}

int config_load_file(struct config *cfg, const char *path, char *err, size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	char suberr[512];
	int rc = textfile_read(path, CONFIG_FILE_MAX_BYTES, CONFIG_FILE_MAX_LINE, &text, &len,
	                       suberr, sizeof(suberr));
	if (rc) {
		errf(err, errlen, "config file %s (check --config / GPUHEALTH_CONFIG)", suberr);
		return rc;
	}
	char line[CONFIG_FILE_MAX_LINE + 2];
	unsigned lineno = 0;
	size_t pos = 0;
	while (pos < len) {
		lineno++;
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t l = nl ? (size_t)(nl - (text + pos)) : len - pos;
		/* textfile_read checked the length (a CR more at most) and that there is no NUL */
		if (l >= sizeof(line))
			l = sizeof(line) - 1;
		memcpy(line, text + pos, l);
		line[l] = '\0';
		pos = nl ? (size_t)(nl - text) + 1 : len;
		char *s = trim(line);
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		char *eq = strchr(s, '=');
		if (!eq) {
			errf(err, errlen, "%s:%u: expected 'key = value', got '%s'", path, lineno, s);
			rc = -EINVAL;
			break;
		}
		*eq = '\0';
		char *key = trim(s);
		char *val = trim(eq + 1);
		size_t vl = strlen(val);
		if (vl >= 2 && val[0] == '"' && val[vl - 1] == '"') {
			val[vl - 1] = '\0';
			val++;
		}
		long idx = find_long(cfg, key, strlen(key));
		if (idx < 0) {
			errf(err, errlen, "%s:%u: unknown key '%s' (keys are the long option names, e.g. 'gpus = 8')",
			     path, lineno, key);
			rc = -EINVAL;
			break;
		}
		if (!(cfg->table[idx].modes & cfg->mode))
			continue; /* one file configures every service */
		rc = set_value(cfg, (size_t)idx, CONFIG_SRC_FILE, val, suberr, sizeof(suberr));
		if (rc) {
			errf(err, errlen, "%s:%u: %s", path, lineno, suberr);
			break;
		}
	}
	free(text);
	return rc;
}

static const struct value *get(const struct config *cfg, const char *name, enum config_type t1,
			       enum config_type t2)
{
	long idx = find_long(cfg, name, strlen(name));
	if (idx < 0 || (cfg->table[idx].type != t1 && cfg->table[idx].type != t2)) {
		fprintf(stderr, "gpuhealth: internal error: config '%s' read with the wrong type\n", name);
		abort();
	}
	return &cfg->values[idx];
}

const char *config_str(const struct config *cfg, const char *name)
{
	long idx = find_long(cfg, name, strlen(name));
	if (idx < 0 || cfg->table[idx].type == CONFIG_LIST) {
		fprintf(stderr, "gpuhealth: internal error: config '%s' read with the wrong type\n", name);
		abort();
	}
	return cfg->values[idx].has ? cfg->values[idx].text : NULL;
}

int64_t config_int(const struct config *cfg, const char *name)
{
	const struct value *v = get(cfg, name, CONFIG_INT, CONFIG_INT);
	return v->has ? v->i : 0;
}

double config_double(const struct config *cfg, const char *name)
{
	const struct value *v = get(cfg, name, CONFIG_DOUBLE, CONFIG_DURATION);
	return v->has ? v->d : 0;
}

bool config_bool(const struct config *cfg, const char *name)
{
	const struct value *v = get(cfg, name, CONFIG_BOOL, CONFIG_BOOL);
	return v->has && v->b;
}

size_t config_list_len(const struct config *cfg, const char *name)
{
	return get(cfg, name, CONFIG_LIST, CONFIG_LIST)->nitems;
}

const char *config_list_at(const struct config *cfg, const char *name, size_t i)
{
	const struct value *v = get(cfg, name, CONFIG_LIST, CONFIG_LIST);
	return i < v->nitems ? v->items[i] : NULL;
}

const char *const *config_list_items(const struct config *cfg, const char *name, size_t *n)
{
	const struct value *v = get(cfg, name, CONFIG_LIST, CONFIG_LIST);
	*n = v->nitems;
	return (const char *const *)v->items;
}

const char **config_list_array(const struct config *cfg, const char *name, size_t extra, size_t *n)
{
	const struct value *v = get(cfg, name, CONFIG_LIST, CONFIG_LIST);
	const char **a = calloc(v->nitems + extra + 1, sizeof(*a));
	if (!a)
		return NULL;
	for (size_t i = 0; i < v->nitems; i++)
		a[i] = v->items[i];
	*n = v->nitems;
	return a;
}

bool config_is_set(const struct config *cfg, const char *name)
{
	long idx = find_long(cfg, name, strlen(name));
	return idx >= 0 && cfg->values[idx].has && cfg->values[idx].src > CONFIG_SRC_DEFAULT;
}

int config_set_default(struct config *cfg, const char *name, const char *text, char *err,
		       size_t errlen)
{
	long idx = find_long(cfg, name, strlen(name));
	if (idx < 0) {
		snprintf(err, errlen, "no option '%s'", name);
		return -EINVAL;
	}
	if (cfg->values[idx].has && cfg->values[idx].src > CONFIG_SRC_DEFAULT)
		return 0; /* the user's value stays */
	return set_value(cfg, (size_t)idx, CONFIG_SRC_DEFAULT, text, err, errlen);
}

enum config_source config_source_of(const struct config *cfg, const char *name)
{
	long idx = find_long(cfg, name, strlen(name));
	return idx >= 0 ? cfg->values[idx].src : CONFIG_SRC_DEFAULT;
}

void config_describe(const struct config *cfg, const char *name, char *buf, size_t len)
{
	long idx = find_long(cfg, name, strlen(name));
	if (idx < 0) {
		snprintf(buf, len, "--%s", name);
		return;
	}
	describe(&cfg->table[idx], cfg->values[idx].src, buf, len);
}

size_t config_positional_count(const struct config *cfg) { return cfg->npos; }
const char *config_positional(const struct config *cfg, size_t i)
{
	return i < cfg->npos ? cfg->pos[i] : NULL;
}
