/*
 * prom: a parser of the Prometheus text exposition format 0.0.4, with no I/O.
 *
 * It walks a caller-owned buffer once and calls back once per sample. Nothing is copied and
 * nothing is allocated: names, label names and label values are slices (pointer + length)
 * into the buffer, valid only during the callback. A label value that contains an escape
 * sequence is flagged; prom_unescape() decodes it into a buffer of the caller's.
 *
 * Accepted: `# HELP` (text may be empty), `# TYPE`, any other comment, blank lines, blanks
 * before a line, around `{` `}` `=` `,` and between tokens, a trailing comma in the label
 * set, label values with the escapes \\ \" \n and with any other byte (`,` `=` `}` included)
 * inside the quotes, values as decimal numbers or NaN / +Inf / -Inf (any case, also
 * "Infinity"), an optional integer timestamp in milliseconds, LF or CRLF line ends, and a
 * missing final newline.
 *
 * A line that breaks the format, or a limit, is skipped and counted in prom_stats with its
 * line number and reason; parsing goes on with the next line. Only a body over the size
 * limit is refused as a whole.
 */
#ifndef GPUHEALTH_PROM_H
#define GPUHEALTH_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Default limits (documented in the man page, section PROMETHEUS INPUT). */
#define PROM_DEFAULT_MAX_LINE   ((size_t)65536)            /* bytes per line, without its end */
#define PROM_DEFAULT_MAX_LABELS ((size_t)64)               /* labels per sample */
#define PROM_DEFAULT_MAX_BODY   ((size_t)64 * 1024 * 1024) /* bytes per scrape body */
/* The largest max_labels a caller may ask for (the parser keeps labels on its stack). */
#define PROM_LABELS_CAP ((size_t)256)
/* Bad lines recorded with their number and reason in prom_stats (all are counted). */
#define PROM_BAD_RECORDED 16

struct prom_limits {
	size_t max_line;   /* longer lines are bad lines (PROM_E_LINE_TOO_LONG) */
	size_t max_labels; /* 1..PROM_LABELS_CAP; more labels: PROM_E_TOO_MANY_LABELS */
	size_t max_body;   /* a longer body is refused: prom_parse() returns -EFBIG */
};

/* The defaults above. */
void prom_limits_default(struct prom_limits *lim);

struct prom_slice {
	const char *ptr; /* into the parsed buffer; not NUL-terminated */
	size_t len;
};

struct prom_label {
	struct prom_slice name;
	struct prom_slice value; /* raw text between the quotes */
	bool escaped;            /* value holds a backslash escape: decode with prom_unescape() */
};

enum prom_type {
	PROM_TYPE_NONE = 0, /* no # TYPE line for the family */
	PROM_TYPE_COUNTER,
	PROM_TYPE_GAUGE,
	PROM_TYPE_HISTOGRAM,
	PROM_TYPE_SUMMARY,
	PROM_TYPE_UNTYPED,
};

/* How the value was written. The event contract tells integer-form from float-form. */
enum prom_form {
	PROM_FORM_INT = 0, /* [+-]digits: no decimal point, no exponent */
	PROM_FORM_FLOAT,   /* a decimal point or an exponent */
	PROM_FORM_SPECIAL, /* NaN, +Inf, -Inf */
};

struct prom_value {
	double d; /* always set (nearest double) */
	enum prom_form form;
	bool exact; /* INT form and it fits: i64 when negative, u64 (and i64 if <= INT64_MAX) */
	bool negative;
	uint64_t u64; /* exact, non-negative */
	int64_t i64;  /* exact and within int64 */
};

struct prom_sample {
	size_t line; /* 1-based */
	struct prom_slice name;
	const struct prom_label *labels; /* nlabels entries, in the order written */
	size_t nlabels;
	struct prom_value value;
	bool has_timestamp;
	int64_t timestamp_ms;
	/* From the # TYPE / # HELP lines of the family (same name, or name + _sum/_count/_bucket
	 * for summaries and histograms) when they came before the sample. */
	enum prom_type type;
	bool has_help;
	bool help_escaped; /* help holds \\ or \n: decode with prom_unescape() */
	struct prom_slice help;
	/* With a prom_cache (prom_parse_cached): the id of the sample's label set, 0 ..
	 * PROM_CACHE_SLOTS - 1, or -1 (no labels, or not cached). Within one parse every sample
	 * with an id shares its label set, byte for byte, with the sample that last had that id
	 * and label_set_new: a caller may keep what it derived from the labels per id, and must
	 * forget it when label_set_new. Without a cache: -1. */
	int label_set;
	bool label_set_new;
};

/* Why a line was skipped. */
enum prom_err {
	PROM_E_NONE = 0,
	PROM_E_LINE_TOO_LONG,
	PROM_E_BAD_NAME, /* metric name missing or invalid */
	PROM_E_BAD_LABEL_NAME,
	PROM_E_NO_EQUALS,     /* label name not followed by '=' */
	PROM_E_NO_QUOTE,      /* label value not in double quotes */
	PROM_E_BAD_ESCAPE,    /* escape other than \\ \" \n */
	PROM_E_UNTERMINATED,  /* label value or label set not closed on the line */
	PROM_E_BAD_LABEL_SEP, /* something other than ',' or '}' after a label */
	PROM_E_DUP_LABEL,
	PROM_E_TOO_MANY_LABELS,
	PROM_E_NO_VALUE,
	PROM_E_BAD_VALUE,
	PROM_E_BAD_TIMESTAMP,
	PROM_E_TRAILING,      /* text after the timestamp */
	PROM_E_BAD_HELP_TYPE, /* # HELP / # TYPE without a valid metric name */
	PROM_E_BAD_TYPE,      /* # TYPE with an unknown type */
	PROM_E_ABORTED,       /* not a line error: the callback stopped the parse */
};

/* A short English reason, e.g. "label value not closed". Never NULL. */
const char *prom_strerror(enum prom_err err);

struct prom_bad_line {
	size_t line; /* 1-based */
	size_t col;  /* 1-based byte column where the problem was found */
	enum prom_err reason;
};

struct prom_stats {
	size_t bytes;     /* body length */
	size_t lines;     /* every line, blank and comment included */
	size_t comments;  /* # lines, HELP and TYPE included */
	size_t samples;   /* samples handed to the callback */
	size_t bad_lines; /* every skipped line */
	size_t nbad;      /* entries used in bad[] (the first PROM_BAD_RECORDED bad lines) */
	struct prom_bad_line bad[PROM_BAD_RECORDED];
};

/*
 * Called once per sample. The sample and every slice in it point into the buffer and into
 * the parser's stack: copy what must outlive the call. Return 0 to go on; any other value
 * stops the parse and prom_parse() returns it (use a negative errno).
 */
typedef int (*prom_sample_cb)(const struct prom_sample *s, void *ud);

/*
 * Parses buf[0..len). lim NULL means the defaults; cb may be NULL (count only). st is
 * zeroed first and filled in (required).
 * Returns 0 (bad lines are not an error: see st->bad_lines), -EINVAL (NULL buf with len > 0,
 * NULL st, max_labels 0 or over PROM_LABELS_CAP), -EFBIG (len over lim->max_body; nothing
 * parsed), or the callback's non-zero return.
 */
int prom_parse(const char *buf, size_t len, const struct prom_limits *lim, prom_sample_cb cb,
               void *ud, struct prom_stats *st);

/*
 * A label-set cache for bodies that repeat the same label sets family after family (a DCGM
 * exporter writes each metric for every GPU in the same order): the label text of the n-th
 * sample of a family is compared, as bytes, with that of the n-th sample of the family before,
 * and on a match its labels are not parsed again (the sample gets the labels of that earlier
 * line, and a label_set id). One cache serves one parse at a time; it holds no state between
 * parses. About 2.6 MB of address space, of which only the slots a body uses become
 * resident. NULL when out of memory.
 */
#define PROM_CACHE_SLOTS  4096 /* samples per family that can hit */
#define PROM_CACHE_LABELS 16   /* label sets with more labels are parsed every time */
struct prom_cache;
struct prom_cache *prom_cache_new(void);
void prom_cache_free(struct prom_cache *c);

/* prom_parse() with a cache (NULL: the same as prom_parse()). The callback sees the same
 * samples, in the same order, as without one; only label_set differs. */
int prom_parse_cached(const char *buf, size_t len, const struct prom_limits *lim, prom_sample_cb cb,
                      void *ud, struct prom_stats *st, struct prom_cache *cache);

/*
 * Decodes the escapes \\ \" \n of a label value or HELP text into out (size bytes) and
 * NUL-terminates it; *outlen (may be NULL) gets the decoded length. An unknown escape is kept
 * as written. Returns 0, or -ENOSPC when out is too small (out then holds a truncated,
 * terminated prefix) or -EINVAL for size 0.
 */
int prom_unescape(struct prom_slice in, char *out, size_t size, size_t *outlen);

/* True when s is exactly the NUL-terminated text. */
bool prom_slice_eq(struct prom_slice s, const char *text);

/* The label named `name`, or NULL. */
const struct prom_label *prom_sample_label(const struct prom_sample *s, const char *name);

#endif
