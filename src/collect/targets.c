#include "collect/targets.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/grow.h"
#include "core/textfile.h"

void targets_init(struct targets *t) { memset(t, 0, sizeof(*t)); }

void targets_free(struct targets *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->urls[i]);
		free(t->origins[i]);
	}
	free(t->urls);
	free(t->origins);
	memset(t, 0, sizeof(*t));
}

int targets_check_url(const char *url, char *err, size_t errlen)
{
	int rc = -EINVAL;
	CURLU *u = NULL;
	char *host = NULL;
	size_t len = strlen(url);
	if (len == 0) {
		snprintf(err, errlen, "empty URL");
		goto out;
	}
	if (len > TARGETS_MAX_URL) {
		snprintf(err, errlen, "URL longer than %d bytes", TARGETS_MAX_URL);
		goto out;
	}
	for (const unsigned char *c = (const unsigned char *)url; *c; c++)
		if (*c <= ' ' || *c == 0x7f) {
			snprintf(err, errlen, "blank or control character in the URL (one URL per "
					      "line; percent-encode blanks as %%20)");
			goto out;
		}
	if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0) {
		snprintf(err, errlen, "not an http:// or https:// URL (write it as "
				      "http://HOST:PORT/metrics)");
		goto out;
	}
	const char *auth = strstr(url, "://") + 3;
	if (*auth == '/' || *auth == '?' || *auth == '#' || *auth == '\0') {
		snprintf(err, errlen, "the URL has no host (write it as http://HOST:PORT/metrics)");
		goto out;
	}
	u = curl_url();
	if (!u) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
	if (uc != CURLUE_OK) {
		snprintf(err, errlen, "not a valid URL: %s", curl_url_strerror(uc));
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host) {
		snprintf(err, errlen, "the URL has no host (write it as http://HOST:PORT/metrics)");
		goto out;
	}
	rc = 0;
out:
	curl_free(host);
	curl_url_cleanup(u);
	return rc;
}

bool targets_url_userinfo(const char *url, size_t *off, size_t *len)
{
	const char *a = url ? strstr(url, "://") : NULL;
	if (!a)
		return false;
	a += 3;
	size_t n = strcspn(a, "/?#");
	const char *at = NULL;
	for (const char *q = a; q < a + n; q++)
		if (*q == '@')
			at = q;
	if (!at)
		return false;
	*off = (size_t)(a - url);
	*len = (size_t)(at - a) + 1;
	return true;
}

void targets_url_redact(const char *url, char *out, size_t outlen)
{
	size_t off, len;
	if (!outlen)
		return;
	if (!url)
		url = "";
	if (!targets_url_userinfo(url, &off, &len))
		snprintf(out, outlen, "%s", url);
	else
		snprintf(out, outlen, "%.*s***@%s", (int)off, url, url + off + len);
}

long targets_find(const struct targets *t, const char *url)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->urls[i], url) == 0)
			return (long)i;
	return -1;
}

int targets_add(struct targets *t, const char *url, const char *origin, char *err, size_t errlen)
{
	char why[256];
	char shown[256];
	targets_url_redact(url, shown, sizeof(shown));
	if (targets_check_url(url, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "%s: '%.200s': %s", origin, shown, why);
		return -EINVAL;
	}
	long at = targets_find(t, url);
	if (at >= 0) {
		snprintf(err, errlen, "%s: '%.200s' is already listed (%s); list each target once",
			 origin, shown, t->origins[at]);
		return -EEXIST;
	}
	if (t->n >= TARGETS_MAX) {
		snprintf(err, errlen, "%s: more than %d targets; split them over several collectors",
			 origin, TARGETS_MAX);
		return -E2BIG;
	}
	/* two arrays of one capacity: cap moves when both have grown */
	size_t capu = t->cap, capo = t->cap;
	if (grow_array((void **)&t->urls, &capu, t->n + 1, sizeof(*t->urls), 16) ||
	    grow_array((void **)&t->origins, &capo, t->n + 1, sizeof(*t->origins), 16))
		return -ENOMEM;
	t->cap = capu;
	char *cu = strdup(url), *co = strdup(origin);
	if (!cu || !co) {
		free(cu);
		free(co);
		return -ENOMEM;
	}
	t->urls[t->n] = cu; /* owned by t */
	t->origins[t->n] = co;
	t->n++;
	return 0;
}

int targets_parse(struct targets *t, const char *text, size_t len, const char *name, char *err,
		  size_t errlen)
{
	size_t line = 0, pos = 0;
	char url[TARGETS_MAX_URL + 2];
	while (pos < len) {
		line++;
		size_t end = pos;
		while (end < len && text[end] != '\n')
			end++;
		size_t a = pos, b = end;
		pos = end < len ? end + 1 : end;
		while (a < b && (text[a] == ' ' || text[a] == '\t'))
			a++;
		/* a comment: at the start, or after a blank */
		for (size_t i = a; i < b; i++)
			if (text[i] == '#' && (i == a || text[i - 1] == ' ' || text[i - 1] == '\t')) {
				b = i;
				break;
			}
		while (b > a && (text[b - 1] == ' ' || text[b - 1] == '\t' || text[b - 1] == '\r'))
			b--;
		if (a == b)
			continue;
		char origin[300];
		snprintf(origin, sizeof(origin), "%s:%zu", name, line);
		if (memchr(text + a, '\0', b - a)) {
			snprintf(err, errlen, "%s: NUL byte in the line; the file must be text", origin);
			return -EINVAL;
		}
		if (b - a > TARGETS_MAX_URL) {
			snprintf(err, errlen, "%s: line longer than %d bytes; one URL per line", origin,
				 TARGETS_MAX_URL);
			return -EINVAL;
		}
		memcpy(url, text + a, b - a);
		url[b - a] = '\0';
		for (size_t i = 0; url[i]; i++)
			if (url[i] == ' ' || url[i] == '\t') {
				snprintf(err, errlen,
					 "%s: more than one word ('%.200s'); write one URL per line, "
					 "comments after a '#'",
					 origin, url);
				return -EINVAL;
			}
		int rc = targets_add(t, url, origin, err, errlen);
		if (rc)
			return rc;
	}
	return 0;
}

int targets_load_file(struct targets *t, const char *path, char *err, size_t errlen)
{
	char *text = NULL;
	size_t len = 0;
	char why[512];
	int rc = textfile_read(path, TARGETS_FILE_MAX_BYTES, TARGETS_FILE_MAX_LINE, &text, &len, why,
	                       sizeof(why));
	if (rc) {
		snprintf(err, errlen, "targets file %s", why);
		return rc;
	}
	rc = targets_parse(t, text, len, path, err, errlen);
	free(text);
	return rc;
}
