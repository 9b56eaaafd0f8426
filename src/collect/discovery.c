#include "collect/discovery.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

#include "collect/targets.h"
#include "core/event_check.h"
#include "core/grow.h"
#include "core/log.h"
#include "core/strbuf.h"

#define SD_MAX_BODY   ((size_t)64 << 20) /* a file_sd file or an http_sd answer */
#define DNS_RETRY_S   5.0                /* after a failed DNS query */
#define DNS_MIN_TTL_S 1.0
#define DNS_SERVFAIL  (-2) /* beside h_errno's values: the server answered SERVFAIL */

enum kind { K_FILE, K_HTTP, K_DNS };

/* One source and its last good list. */
struct source {
	enum kind kind;
	char *name; /* owned: the path, URL or DNS name */
	char **urls;
	struct events_enrich *en; /* owned strings */
	size_t n;
	bool ok;    /* read at least once */
	double due; /* http, dns: next read */
	bool seen;  /* file: st below is set */
	struct stat st;
};

struct discovery {
	struct source *src;
	size_t nsrc;
	int dns_port;
	bool has_server;
	struct sockaddr_in server;
	char server_text[80]; /* as the option gave it, for errors */
	double refresh_s, http_timeout_s;
	bool (*cancel)(void);
	/* the merged list (borrowed pointers into the sources' lists) */
	const char **urls;
	struct events_enrich *en;
	size_t n;
};

void discovery_free_list(char **urls, struct events_enrich *en, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (urls)
			free(urls[i]);
		if (en) {
			free((char *)en[i].cluster);
			free((char *)en[i].datacenter);
			free((char *)en[i].rack);
			free((char *)en[i].labels);
		}
	}
	free(urls);
	free(en);
}

/* ------------------------------------------------------------------ YAML -> jansson */

/* The YAML node that starts with the event ev (already taken) as a jansson value; scalars are
 * strings. NULL on error (message in err). */
static json_t *yaml_node(yaml_parser_t *p, yaml_event_t *ev, int depth, char *err, size_t errlen)
{
	json_t *j = NULL;
	if (depth > 32) {
		snprintf(err, errlen, "nested too deeply");
		return NULL;
	}
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		return json_stringn((const char *)ev->data.scalar.value, ev->data.scalar.length);
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT: {
		bool map = ev->type == YAML_MAPPING_START_EVENT;
		j = map ? json_object() : json_array();
		for (;;) {
			yaml_event_t e;
			if (!yaml_parser_parse(p, &e)) {
				snprintf(err, errlen, "line %zu: %s", p->problem_mark.line + 1,
				         p->problem ? p->problem : "YAML error");
				goto fail;
			}
			if (e.type == YAML_SEQUENCE_END_EVENT || e.type == YAML_MAPPING_END_EVENT) {
				yaml_event_delete(&e);
				return j;
			}
			char key[1024] = "";
			if (map) {
				if (e.type != YAML_SCALAR_EVENT) {
					snprintf(err, errlen,
					         "line %zu: a mapping key must be a string",
					         e.start_mark.line + 1);
					yaml_event_delete(&e);
					goto fail;
				}
				snprintf(key, sizeof(key), "%s", (const char *)e.data.scalar.value);
				yaml_event_delete(&e);
				if (!yaml_parser_parse(p, &e)) {
					snprintf(err, errlen, "line %zu: %s",
					         p->problem_mark.line + 1,
					         p->problem ? p->problem : "YAML error");
					goto fail;
				}
			}
			json_t *v = yaml_node(p, &e, depth + 1, err, errlen);
			yaml_event_delete(&e);
			if (!v)
				goto fail;
			if (map ? json_object_set_new(j, key, v) : json_array_append_new(j, v)) {
				snprintf(err, errlen, "out of memory");
				goto fail;
			}
		}
	}
	default:
		snprintf(err, errlen, "line %zu: anchors and aliases are not supported",
		         ev->start_mark.line + 1);
		return NULL;
	}
fail:
	json_decref(j);
	return NULL;
}

static json_t *yaml_load(const char *text, size_t len, char *err, size_t errlen)
{
	yaml_parser_t p;
	json_t *root = NULL;
	if (!yaml_parser_initialize(&p)) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	for (;;) {
		yaml_event_t e;
		if (!yaml_parser_parse(&p, &e)) {
			snprintf(err, errlen, "line %zu: %s", p.problem_mark.line + 1,
			         p.problem ? p.problem : "YAML error");
			json_decref(root);
			root = NULL;
			break;
		}
		yaml_event_type_t t = e.type;
		if (!root && (t == YAML_SCALAR_EVENT || t == YAML_SEQUENCE_START_EVENT ||
		              t == YAML_MAPPING_START_EVENT || t == YAML_ALIAS_EVENT)) {
			root = yaml_node(&p, &e, 0, err, errlen);
			if (!root) {
				yaml_event_delete(&e);
				break;
			}
		}
		yaml_event_delete(&e);
		if (t == YAML_STREAM_END_EVENT)
			break;
	}
	yaml_parser_delete(&p);
	if (!root && !err[0]) /* no document at all: Prometheus reads it as no groups */
		root = json_null();
	return root;
}

/* ------------------------------------------------------------------ target groups */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(**(const char *const *const *)a, **(const char *const *const *)b);
}

/* YAML's null as the converter above leaves it (scalars are strings): no value, "~" or "null". */
static bool yaml_is_null(const json_t *v)
{
	if (json_is_null(v))
		return true;
	const char *s = json_string_value(v);
	return s && (!*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
	             strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0);
}

/* A label name as Prometheus 3 takes it (any UTF-8, which the parsers have checked), less
 * the empty name and control characters, which no exposition or database column can show. */
static bool label_name_ok(const char *k)
{
	if (!*k)
		return false;
	for (const unsigned char *c = (const unsigned char *)k; *c; c++)
		if (*c < 0x20 || *c == 0x7f)
			return false;
	return true;
}

int discovery_parse_groups(const char *text, size_t len, bool yaml, const char *name,
                           char ***urls_out, struct events_enrich **en_out, size_t *n_out,
                           char *err, size_t errlen)
{
	int rc = -EINVAL;
	char why[512] = "";
	json_t *root = NULL;
	char **urls = NULL;
	struct events_enrich *en = NULL;
	size_t n = 0, cap = 0;
	char *labels = NULL;
	if (yaml) {
		root = yaml_load(text, len, why, sizeof(why));
		if (!root) {
			snprintf(err, errlen, "%s: not valid YAML: %s", name, why);
			goto out;
		}
	} else {
		json_error_t je;
		root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
		if (!root) {
			snprintf(err, errlen, "%s: not valid JSON: line %d column %d: %s", name,
			         je.line, je.column, je.text);
			goto out;
		}
	}
	if (yaml && yaml_is_null(root)) { /* an empty YAML file: no groups, as in Prometheus */
		json_decref(root);
		root = json_array();
		if (!root)
			goto nomem;
	}
	if (!json_is_array(root)) {
		snprintf(err, errlen,
		         "%s: not a list of target groups (write [{\"targets\": "
		         "[\"host:9400\"], \"labels\": {\"rack\": \"r1\"}}])",
		         name);
		goto out;
	}
	size_t gi;
	json_t *g;
	json_array_foreach(root, gi, g)
	{
		json_t *tg = json_is_object(g) ? json_object_get(g, "targets") : NULL;
		json_t *lb = json_is_object(g) ? json_object_get(g, "labels") : NULL;
		if (!json_is_array(tg)) {
			snprintf(err, errlen,
			         "%s: group %zu has no \"targets\" list (write {\"targets\": "
			         "[\"host:9400\"]})",
			         name, gi + 1);
			goto out;
		}
		if (yaml && yaml_is_null(lb))
			lb = NULL; /* "labels:" with nothing after it */
		if (lb && !json_is_object(lb) && !json_is_null(lb)) {
			snprintf(err, errlen,
			         "%s: group %zu: \"labels\" is not an object of strings", name,
			         gi + 1);
			goto out;
		}
		const char *scheme = "http", *path = "/metrics";
		const char *cl = NULL, *dc = NULL, *rk = NULL;
		json_t *other = json_object();
		if (!other)
			goto nomem;
		const char *k;
		json_t *v;
		json_object_foreach(lb, k, v)
		{
			if (!json_is_string(v)) {
				snprintf(
				    err, errlen,
				    "%s: group %zu: label \"%.100s\" is not a string (quote it)",
				    name, gi + 1, k);
				json_decref(other);
				goto out;
			}
			if (!label_name_ok(k)) {
				snprintf(err, errlen,
				         "%s: group %zu: label name \"%.100s\" is empty or holds a "
				         "control character (rename it)",
				         name, gi + 1, k);
				json_decref(other);
				goto out;
			}
			const char *s = json_string_value(v);
			/* the event contract's bounds (event_check), here where the file can be
			 * named: past them every event of the group would be a dead letter */
			if (strncmp(k, "__", 2) != 0 && (strlen(k) > EVENT_CHECK_MAX_TEXT ||
			                                 strlen(s) > EVENT_CHECK_MAX_TEXT)) {
				snprintf(
				    err, errlen,
				    "%s: group %zu: label \"%.100s\" has a name or value longer "
				    "than %d characters, which events cannot carry (shorten it)",
				    name, gi + 1, k, EVENT_CHECK_MAX_TEXT);
				json_decref(other);
				goto out;
			}
			if (strcmp(k, "__scheme__") == 0)
				scheme = s;
			else if (strcmp(k, "__metrics_path__") == 0)
				path = s;
			else if (strcmp(k, "cluster") == 0)
				cl = s;
			else if (strcmp(k, "datacenter") == 0)
				dc = s;
			else if (strcmp(k, "rack") == 0)
				rk = s;
			else if (strncmp(k, "__", 2) != 0 && json_object_set(other, k, v) != 0) {
				json_decref(other);
				goto nomem;
			}
		}
		if (json_object_size(other) > EVENT_CHECK_MAX_LABELS) {
			snprintf(
			    err, errlen,
			    "%s: group %zu has %zu labels besides cluster, datacenter, rack and "
			    "__*: events carry at most %d (remove some)",
			    name, gi + 1, json_object_size(other), EVENT_CHECK_MAX_LABELS);
			json_decref(other);
			goto out;
		}
		if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
			snprintf(err, errlen,
			         "%s: group %zu: __scheme__ \"%.50s\" is not http or https", name,
			         gi + 1, scheme);
			json_decref(other);
			goto out;
		}
		free(labels);
		bool any = json_object_size(other) > 0;
		labels = any ? json_dumps(other, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII)
		             : NULL;
		json_decref(other);
		if (any && !labels)
			goto nomem;
		size_t ti;
		json_t *t;
		json_array_foreach(tg, ti, t)
		{
			const char *addr = json_string_value(t);
			if (!addr || !*addr || strchr(addr, '/')) {
				snprintf(err, errlen,
				         "%s: group %zu: target %zu is not a \"host:port\" string",
				         name, gi + 1, ti + 1);
				goto out;
			}
			char url[TARGETS_MAX_URL + 1];
			int ul = snprintf(url, sizeof(url), "%s://%s%s%s", scheme, addr,
			                  path[0] == '/' ? "" : "/", path);
			if (ul < 0 || (size_t)ul >= sizeof(url)) {
				snprintf(err, errlen, "%s: group %zu: target %zu: URL too long",
				         name, gi + 1, ti + 1);
				goto out;
			}
			if (targets_check_url(url, why, sizeof(why)) != 0) {
				snprintf(err, errlen, "%s: group %zu: target \"%.200s\": %s", name,
				         gi + 1, addr, why);
				goto out;
			}
			if (n >= TARGETS_MAX) {
				snprintf(err, errlen, "%s: more than %d targets", name,
				         TARGETS_MAX);
				goto out;
			}
			/* two arrays of one capacity: cap moves when both have grown */
			size_t cu = cap, ce = cap;
			if (grow_array((void **)&urls, &cu, n + 1, sizeof(*urls), 64) ||
			    grow_array((void **)&en, &ce, n + 1, sizeof(*en), 64))
				goto nomem;
			cap = cu;
			memset(&en[n], 0, sizeof(en[n]));
			urls[n] = strdup(url);
			en[n].cluster = cl && *cl ? strdup(cl) : NULL;
			en[n].datacenter = dc && *dc ? strdup(dc) : NULL;
			en[n].rack = rk && *rk ? strdup(rk) : NULL;
			en[n].labels = labels ? strdup(labels) : NULL;
			n++;
			if (!urls[n - 1] || (cl && *cl && !en[n - 1].cluster) ||
			    (dc && *dc && !en[n - 1].datacenter) ||
			    (rk && *rk && !en[n - 1].rack) || (labels && !en[n - 1].labels))
				goto nomem;
		}
	}
	/* a URL listed twice: kept once (the first) */
	if (n > 1) {
		char ***idx = malloc(n * sizeof(*idx));
		if (!idx)
			goto nomem;
		for (size_t i = 0; i < n; i++)
			idx[i] = &urls[i];
		qsort(idx, n, sizeof(*idx), cmp_str);
		size_t dups = 0;
		for (size_t i = 1; i < n; i++)
			if (strcmp(*idx[i], *idx[i - 1]) == 0) {
				/* drop the later one of the two in list order */
				char **drop = idx[i] > idx[i - 1] ? idx[i] : idx[i - 1];
				idx[i] =
				    idx[i] > idx[i - 1] ? idx[i - 1] : idx[i]; /* the kept one */
				size_t at = (size_t)(drop - urls);
				free(urls[at]);
				urls[at] = NULL;
				dups++;
			}
		free(idx);
		if (dups) {
			log_warn(
			    "discovery: %s: %zu targets listed more than once; each scraped once",
			    name, dups);
			size_t w = 0;
			for (size_t i = 0; i < n; i++) {
				if (!urls[i]) {
					free((char *)en[i].cluster);
					free((char *)en[i].datacenter);
					free((char *)en[i].rack);
					free((char *)en[i].labels);
					continue;
				}
				urls[w] = urls[i];
				en[w++] = en[i];
			}
			n = w;
		}
	}
	*urls_out = urls; /* owned by the caller */
	*en_out = en;
	*n_out = n;
	urls = NULL;
	en = NULL;
	n = 0;
	rc = 0;
	goto out;
nomem:
	rc = -ENOMEM;
	snprintf(err, errlen, "%s: out of memory", name);
out:
	free(labels);
	json_decref(root);
	discovery_free_list(urls, en, n);
	return rc;
}

/* ------------------------------------------------------------------ sources */

static int read_file(const char *path, struct strbuf *sb, struct stat *st, char *err, size_t errlen)
{
	int rc = 0;
	FILE *f = fopen(path, "r");
	if (!f) {
		rc = -errno;
		snprintf(err, errlen, "file_sd '%s': %s", path, strerror(-rc));
		return rc;
	}
	if (fstat(fileno(f), st) != 0) {
		rc = -errno;
		snprintf(err, errlen, "file_sd '%s': %s", path, strerror(-rc));
		goto out;
	}
	char buf[65536];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		if ((rc = strbuf_append(sb, buf, n)) != 0) {
			snprintf(err, errlen, "file_sd '%s': larger than %zu MiB", path,
			         SD_MAX_BODY >> 20);
			goto out;
		}
	if (ferror(f)) {
		rc = -EIO;
		snprintf(err, errlen, "file_sd '%s': read error", path);
	}
out:
	fclose(f);
	return rc;
}

static bool is_yaml_name(const char *path)
{
	size_t l = strlen(path);
	return (l > 4 && strcmp(path + l - 4, ".yml") == 0) ||
	       (l > 5 && strcmp(path + l - 5, ".yaml") == 0);
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
	struct strbuf *sb = ud;
	return strbuf_append(sb, p, size * nmemb) == 0 ? size * nmemb : 0;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	const struct discovery *d = ud;
	return d->cancel && d->cancel() ? 1 : 0; /* non-zero: abort */
}

static const char *content_type(CURL *h)
{
	char *ct = NULL;
	curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct);
	return ct ? ct : "";
}

/* application/json, any case, alone or with parameters (charset): what Prometheus requires */
static bool json_content_type(CURL *h)
{
	const char *ct = content_type(h);
	size_t l = strlen("application/json");
	return strncasecmp(ct, "application/json", l) == 0 &&
	       (ct[l] == '\0' || ct[l] == ';' || ct[l] == ' ');
}

static int http_get(const struct discovery *d, const char *url, struct strbuf *sb, char *err,
                    size_t errlen)
{
	int rc = -EIO;
	char shown[256];
	targets_url_redact(url, shown, sizeof(shown));
	CURL *h = curl_easy_init();
	if (!h) {
		snprintf(err, errlen, "http_sd '%s': out of memory", shown);
		return -ENOMEM;
	}
	char cerr[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, sb);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(d->http_timeout_s * 1000));
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(d->http_timeout_s * 1000));
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(h, CURLOPT_USERAGENT, "gpuhealth-http-sd");
	if (d->cancel) {
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)d);
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	}
	CURLcode cc = curl_easy_perform(h);
	long code = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	if (cc == CURLE_ABORTED_BY_CALLBACK)
		snprintf(err, errlen, "http_sd '%s': request abandoned (stopping)", shown);
	else if (cc != CURLE_OK)
		snprintf(err, errlen, "http_sd '%s': %s", shown,
		         cerr[0] ? cerr : curl_easy_strerror(cc));
	else if (code != 200)
		snprintf(err, errlen, "http_sd '%s': HTTP status %ld (expected 200)", shown, code);
	else if (!json_content_type(h))
		snprintf(err, errlen,
		         "http_sd '%s': Content-Type '%.100s' is not application/json (Prometheus' "
		         "http_sd format: serve the list as application/json)",
		         shown, content_type(h));
	else
		rc = 0;
	curl_easy_cleanup(h);
	return rc;
}

/* DNS: one query of type on the configured resolver; the answer in ans. Length or -1. */
static int dns_query(const struct discovery *d, const char *name, int type, unsigned char *ans,
                     int anslen, int *herr)
{
	struct __res_state rs;
	memset(&rs, 0, sizeof(rs));
	if (res_ninit(&rs) != 0)
		return -1;
	if (d->has_server) {
		rs.nscount = 1;
		rs.nsaddr_list[0] = d->server;
		/* glibc otherwise turns a REFUSED or SERVFAIL answer of the only server into
		 * "try the next one" and then TRY_AGAIN, which reads like a server that is not
		 * there; with pfcode set (dig's way) the answer's own code comes back */
		rs.pfcode = 1;
	}
	rs.retrans = 2;
	rs.retry = 2;
	errno = 0;
	int n = res_nquery(&rs, name, ns_c_in, type, ans, anslen);
	int e = errno;
	if (herr) {
		*herr = rs.res_h_errno;
		if (n < 0 && *herr == TRY_AGAIN && e != ECONNREFUSED && e != ETIMEDOUT &&
		    e != EHOSTUNREACH && e != ENETUNREACH)
			*herr = DNS_SERVFAIL; /* it answered, with SERVFAIL */
	}
	res_nclose(&rs);
	return n;
}

/* The addresses of host (A, then AAAA) from the configured resolver, appended as text. */
static size_t dns_addresses(const struct discovery *d, const char *host, char out[][64], size_t max,
                            uint32_t *ttl, int *herr)
{
	size_t k = 0;
	unsigned char ans[8192];
	const int types[2] = {ns_t_a, ns_t_aaaa};
	for (int ti = 0; ti < 2 && k == 0; ti++) {
		int len = dns_query(d, host, types[ti], ans, sizeof(ans), herr);
		ns_msg msg;
		if (len < 0 || ns_initparse(ans, len, &msg) != 0)
			continue;
		for (int i = 0; i < ns_msg_count(msg, ns_s_an) && k < max; i++) {
			ns_rr rr;
			if (ns_parserr(&msg, ns_s_an, i, &rr) != 0 ||
			    (int)ns_rr_type(rr) != types[ti])
				continue;
			char a[INET6_ADDRSTRLEN];
			if (!inet_ntop(types[ti] == ns_t_a ? AF_INET : AF_INET6, ns_rr_rdata(rr), a,
			               sizeof(a)))
				continue;
			snprintf(out[k++], 64, types[ti] == ns_t_a ? "%s" : "[%s]", a);
			if (ns_rr_ttl(rr) < *ttl)
				*ttl = ns_rr_ttl(rr);
		}
	}
	return k;
}

/* Why a query found nothing, in words that tell a dead server from a missing name. */
static void dns_why(const struct discovery *d, int herr, const char *what, char *out, size_t outlen)
{
	const char *srv =
	    d->has_server ? d->server_text : "the system's resolver (/etc/resolv.conf)";
	if (herr == DNS_SERVFAIL)
		snprintf(out, outlen,
		         "the DNS server %s answered SERVFAIL (it cannot resolve the name now); "
		         "keeps trying",
		         srv);
	else if (herr == TRY_AGAIN)
		snprintf(out, outlen,
		         "no answer from the DNS server %s (is it running and reachable? check "
		         "--dns-server); keeps trying",
		         srv);
	else if (herr == HOST_NOT_FOUND)
		snprintf(out, outlen, "no such name at %s (NXDOMAIN; check the name)", srv);
	else if (herr == NO_DATA)
		snprintf(out, outlen, "the name has no %s at %s", what, srv);
	else if (herr == NO_RECOVERY)
		snprintf(out, outlen,
		         "the DNS server %s refused the query or failed (does it serve this name?)",
		         srv);
	else
		snprintf(out, outlen, "DNS query to %s failed (h_errno %d)", srv, herr);
}

static int cmp_json_str(const void *a, const void *b)
{
	return strcmp(json_string_value(*(json_t *const *)a),
	              json_string_value(*(json_t *const *)b));
}

/* The targets in one order whatever order the server answered in (SRV and round-robin A
 * answers are shuffled): an unchanged set is then an unchanged list, not a reload. */
static int sort_targets(json_t *tg)
{
	size_t n = json_array_size(tg);
	json_t **v = malloc((n ? n : 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		v[i] = json_incref(json_array_get(tg, i));
	qsort(v, n, sizeof(*v), cmp_json_str);
	json_array_clear(tg);
	int rc = 0;
	for (size_t i = 0; i < n; i++)
		if (json_array_append_new(tg, v[i]) != 0)
			rc = -ENOMEM;
	free(v);
	return rc;
}

/* dns_sd: the targets of name as a JSON target-group text in sb; *ttl the shortest TTL. */
static int dns_read(const struct discovery *d, const char *name, struct strbuf *sb, uint32_t *ttl,
                    char *err, size_t errlen)
{
	unsigned char ans[65536];
	*ttl = UINT32_MAX;
	json_t *root = json_array(), *grp = json_object(), *tg = json_array();
	int rc = -ENOMEM;
	if (!root || !grp || !tg)
		goto out;
	json_object_set(grp, "targets", tg);
	json_array_append(root, grp);
	size_t pointless = 0;
	char first_bad[320] = "";
	if (d->dns_port <= 0) {
		int herr = 0;
		int len = dns_query(d, name, ns_t_srv, ans, sizeof(ans), &herr);
		ns_msg msg;
		if (len < 0 || ns_initparse(ans, len, &msg) != 0 ||
		    ns_msg_count(msg, ns_s_an) == 0) {
			rc = -ENOENT;
			char why[300];
			dns_why(d, herr, "SRV records (for A/AAAA give --dns-sd-port)", why,
			        sizeof(why));
			snprintf(err, errlen, "dns_sd '%s': %s", name, why);
			goto out;
		}
		for (int i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
			ns_rr rr;
			if (ns_parserr(&msg, ns_s_an, i, &rr) != 0 || ns_rr_type(rr) != ns_t_srv ||
			    ns_rr_rdlen(rr) < 7)
				continue;
			const unsigned char *rd = ns_rr_rdata(rr);
			unsigned port = (unsigned)rd[4] << 8 | rd[5];
			char host[NS_MAXDNAME];
			if (dn_expand(ns_msg_base(msg), ns_msg_end(msg), rd + 6, host,
			              sizeof(host)) < 0)
				continue;
			if (ns_rr_ttl(rr) < *ttl)
				*ttl = ns_rr_ttl(rr);
			char addr[NS_MAXDNAME + 16];
			if (d->has_server) {
				/* the scraper resolves through the system: give it the address
				 * the configured server knows */
				char a[4][64];
				int aerr = 0;
				if (dns_addresses(d, host, a, 1, ttl, &aerr) == 0) {
					if (!pointless++) {
						char why[300];
						dns_why(d, aerr, "A or AAAA records", why,
						        sizeof(why));
						snprintf(first_bad, sizeof(first_bad),
						         "%.150s:%u: %.140s", host, port, why);
					}
					continue;
				}
				snprintf(addr, sizeof(addr), "%s:%u", a[0], port);
			} else {
				snprintf(addr, sizeof(addr), "%s:%u", host, port);
			}
			json_array_append_new(tg, json_string(addr));
		}
	} else {
		char a[256][64];
		int herr = 0;
		size_t k = dns_addresses(d, name, a, 256, ttl, &herr);
		if (k == 0) {
			rc = -ENOENT;
			char why[300];
			dns_why(d, herr, "A or AAAA records", why, sizeof(why));
			snprintf(err, errlen, "dns_sd '%s': %s", name, why);
			goto out;
		}
		for (size_t i = 0; i < k; i++) {
			char addr[96];
			snprintf(addr, sizeof(addr), "%s:%d", a[i], d->dns_port);
			json_array_append_new(tg, json_string(addr));
		}
	}
	if (pointless)
		log_error("discovery: dns_sd '%s': %zu SRV records point to a name with no address "
		          "(first %s); skipped",
		          name, pointless, first_bad);
	if (json_array_size(tg) == 0) {
		rc = -ENOENT;
		snprintf(err, errlen, "dns_sd '%s': no SRV record points to a host with an address",
		         name);
		goto out;
	}
	if (sort_targets(tg) != 0)
		goto out;
	char *s = json_dumps(root, JSON_COMPACT);
	if (!s)
		goto out;
	rc = strbuf_puts(sb, s);
	free(s);
out:
	json_decref(tg);
	json_decref(grp);
	json_decref(root);
	return rc;
}

int discovery_create(struct discovery **out, const struct discovery_options *o, char *err,
                     size_t errlen)
{
	struct discovery *d = calloc(1, sizeof(*d));
	size_t ns = o->nfiles + o->nurls + o->nnames;
	if (!d || !(d->src = calloc(ns ? ns : 1, sizeof(*d->src)))) {
		free(d);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	d->refresh_s = o->refresh_s > 0 ? o->refresh_s : 60;
	d->http_timeout_s = o->http_timeout_s > 0 ? o->http_timeout_s : 10;
	d->dns_port = o->dns_port;
	d->cancel = o->cancel;
	if (o->dns_server && *o->dns_server) {
		char ip[64];
		unsigned port = 53;
		const char *colon = strrchr(o->dns_server, ':');
		size_t il = colon ? (size_t)(colon - o->dns_server) : strlen(o->dns_server);
		char *end = NULL;
		if (colon)
			port = (unsigned)strtoul(colon + 1, &end, 10);
		if (il >= sizeof(ip) || (colon && (!end || *end || port == 0 || port > 65535))) {
			snprintf(err, errlen,
			         "--dns-server '%s': write IPv4:PORT, e.g. 127.0.0.1:53",
			         o->dns_server);
			goto bad;
		}
		memcpy(ip, o->dns_server, il);
		ip[il] = '\0';
		d->server.sin_family = AF_INET;
		d->server.sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, ip, &d->server.sin_addr) != 1) {
			snprintf(err, errlen,
			         "--dns-server '%s': not an IPv4 address (write IPv4:PORT, e.g. "
			         "127.0.0.1:53)",
			         o->dns_server);
			goto bad;
		}
		d->has_server = true;
		snprintf(d->server_text, sizeof(d->server_text), "%s", o->dns_server);
	}
	for (size_t i = 0; i < ns; i++) {
		struct source *s = &d->src[d->nsrc];
		const char *name = i < o->nfiles              ? o->files[i]
		                   : i < o->nfiles + o->nurls ? o->urls[i - o->nfiles]
		                                              : o->names[i - o->nfiles - o->nurls];
		s->kind = i < o->nfiles ? K_FILE : i < o->nfiles + o->nurls ? K_HTTP : K_DNS;
		char why[256];
		if (s->kind == K_HTTP && targets_check_url(name, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "--http-sd '%.300s': %s", name, why);
			goto bad;
		}
		if (!name || !*name) {
			snprintf(err, errlen, "an empty --file-sd, --http-sd or --dns-sd");
			goto bad;
		}
		if (!(s->name = strdup(name))) {
			snprintf(err, errlen, "out of memory");
			discovery_destroy(d);
			return -ENOMEM;
		}
		d->nsrc++;
	}
	*out = d; /* owned by the caller */
	return 0;
bad:
	discovery_destroy(d);
	return -EINVAL;
}

void discovery_destroy(struct discovery *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->nsrc; i++) {
		free(d->src[i].name);
		discovery_free_list(d->src[i].urls, d->src[i].en, d->src[i].n);
	}
	free(d->src);
	free(d->urls);
	free(d->en);
	free(d);
}

static const char *kind_str(enum kind k)
{
	return k == K_FILE ? "file_sd" : k == K_HTTP ? "http_sd" : "dns_sd";
}

/* Reads source s now. 0: its list was replaced (*changed when it differs); else logged. */
static int read_source(struct discovery *d, struct source *s, double now, bool *changed)
{
	char err[1024] = "";
	struct strbuf sb;
	strbuf_init(&sb, SD_MAX_BODY);
	int rc = 0;
	bool yaml = false;
	uint32_t ttl = 0;
	struct stat st;
	char shown[256];
	targets_url_redact(s->name, shown, sizeof(shown));
	if (s->kind == K_FILE) {
		rc = read_file(s->name, &sb, &st, err, sizeof(err));
		yaml = is_yaml_name(s->name);
	} else if (s->kind == K_HTTP) {
		s->due = now + d->refresh_s;
		rc = http_get(d, s->name, &sb, err, sizeof(err));
	} else {
		rc = dns_read(d, s->name, &sb, &ttl, err, sizeof(err));
		s->due =
		    now + (rc ? DNS_RETRY_S : (ttl < DNS_MIN_TTL_S ? DNS_MIN_TTL_S : (double)ttl));
	}
	char **urls = NULL;
	struct events_enrich *en = NULL;
	size_t n = 0;
	if (!rc) {
		char name[400];
		snprintf(name, sizeof(name), "%s '%s'", kind_str(s->kind), shown);
		rc = discovery_parse_groups(sb.data ? sb.data : "", sb.len, yaml, name, &urls, &en,
		                            &n, err, sizeof(err));
	}
	strbuf_free(&sb);
	if (rc) {
		log_error("discovery: %s; keeping its last good list (%zu targets)", err, s->n);
		return rc;
	}
	bool same = n == s->n;
	for (size_t i = 0; same && i < n; i++) {
		const struct events_enrich *a = &en[i], *b = &s->en[i];
#define SAME(x, y) (((x) == NULL && (y) == NULL) || ((x) && (y) && strcmp((x), (y)) == 0))
		same = strcmp(urls[i], s->urls[i]) == 0 && SAME(a->cluster, b->cluster) &&
		       SAME(a->datacenter, b->datacenter) && SAME(a->rack, b->rack) &&
		       SAME(a->labels, b->labels);
#undef SAME
	}
	if (!s->ok || !same)
		log_info("discovery: %s '%s': %zu targets", kind_str(s->kind), shown, n);
	s->ok = true;
	if (same) { /* keep the old copies: the merged list borrows them */
		discovery_free_list(urls, en, n);
		return 0;
	}
	*changed = true;
	discovery_free_list(s->urls, s->en, s->n);
	s->urls = urls; /* owned by s */
	s->en = en;
	s->n = n;
	return 0;
}

static int merge(struct discovery *d)
{
	size_t total = 0;
	for (size_t i = 0; i < d->nsrc; i++)
		total += d->src[i].n;
	const char **urls = calloc(total ? total : 1, sizeof(*urls));
	struct events_enrich *en = calloc(total ? total : 1, sizeof(*en));
	const char ***idx = calloc(total ? total : 1, sizeof(*idx));
	if (!urls || !en || !idx) {
		free(urls);
		free(en);
		free(idx);
		return -ENOMEM;
	}
	size_t n = 0;
	for (size_t i = 0; i < d->nsrc; i++)
		for (size_t k = 0; k < d->src[i].n; k++) {
			urls[n] = d->src[i].urls[k]; /* borrowed */
			en[n++] = d->src[i].en[k];   /* borrowed strings */
		}
	/* a URL from two sources: the first kept */
	for (size_t i = 0; i < n; i++)
		idx[i] = &urls[i];
	qsort(idx, n, sizeof(*idx), cmp_str);
	bool dup = false;
	for (size_t i = 1; i < n; i++)
		if (strcmp(*idx[i], *idx[i - 1]) == 0) {
			const char **later = idx[i] > idx[i - 1] ? idx[i] : idx[i - 1];
			if (idx[i] == later)
				idx[i] = idx[i - 1];
			*later = NULL;
			dup = true;
		}
	free(idx);
	if (dup) {
		size_t w = 0;
		for (size_t i = 0; i < n; i++)
			if (urls[i]) {
				urls[w] = urls[i];
				en[w++] = en[i];
			}
		n = w;
	}
	free(d->urls);
	free(d->en);
	d->urls = urls;
	d->en = en;
	d->n = n;
	return 0;
}

int discovery_poll(struct discovery *d, double now, bool force, bool *changed)
{
	int failed = 0;
	*changed = false;
	for (size_t i = 0; i < d->nsrc; i++) {
		struct source *s = &d->src[i];
		bool due = force;
		if (s->kind == K_FILE && !due) {
			struct stat st;
			if (stat(s->name, &st) != 0) {
				if (s->seen) { /* gone: keep its list, say so once */
					log_error(
					    "discovery: file_sd '%s': %s; keeping its last good "
					    "list (%zu targets)",
					    s->name, strerror(errno), s->n);
					s->seen = false;
				}
				continue;
			}
			due = !s->seen || st.st_ino != s->st.st_ino ||
			      st.st_size != s->st.st_size ||
			      st.st_mtim.tv_sec != s->st.st_mtim.tv_sec ||
			      st.st_mtim.tv_nsec != s->st.st_mtim.tv_nsec;
			if (!due)
				continue;
		} else if (s->kind != K_FILE && !due && now < s->due) {
			continue;
		}
		if (s->kind == K_FILE) { /* remembered even when it fails: one error per change */
			struct stat st;
			if (stat(s->name, &st) == 0) {
				s->st = st;
				s->seen = true;
			}
		}
		if (read_source(d, s, now, changed) != 0)
			failed++;
	}
	if (*changed && merge(d) != 0) {
		log_error("discovery: out of memory merging the lists; keeping the old one");
		*changed = false;
	}
	return failed;
}

size_t discovery_targets(const struct discovery *d, const char *const **urls,
                         const struct events_enrich **en)
{
	*urls = (const char *const *)d->urls;
	*en = d->en;
	return d->n;
}
