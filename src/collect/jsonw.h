/*
 * jsonw: compact JSON text written into a caller's bounded buffer, the events' writer
 * (events.h): strings escaped (the two-character escapes, other bytes below 0x20 as \u00XX; the
 * bytes are not checked otherwise: the caller gives UTF-8), integers, reals in the shortest form
 * that reads back to the same double (always with a '.' or an exponent), any jansson value. Nothing
 * is allocated. Text past the buffer is not written but counted, so a caller that ran out of
 * room learns the size it needs. The buffer is borrowed from the caller for the writer's life.
 *
 * Use:
 *   struct jsonw w = {buf, size, 0};
 *   locale_t old = jsonw_c_locale();      reals are written with '.' whatever LC_NUMERIC says
 *   JSONW_LIT(&w, "{\"a\":"); jsonw_int(&w, 1); JSONW_LIT(&w, "}");
 *   jsonw_locale_restore(old);
 *   rc = jsonw_finish(&w, &len);
 */
#ifndef GPUHEALTH_JSONW_H
#define GPUHEALTH_JSONW_H

#include <jansson.h>
#include <locale.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct jsonw {
	char *buf; /* borrowed */
	size_t size;
	size_t len; /* what the whole text needs, also past size */
};

/* Terminates the text: 0, or -ENOSPC with the buffer cut and *len the length needed. */
int jsonw_finish(const struct jsonw *w, size_t *len);

/* n bytes as they are (JSON text the caller made). */
void jsonw_put(struct jsonw *w, const char *s, size_t n);
/* A string literal as it is. */
#define JSONW_LIT(w, lit) jsonw_put((w), (lit), sizeof(lit) - 1)
/* s[0..n) as a JSON string, quoted and escaped. */
void jsonw_string(struct jsonw *w, const char *s, size_t n);
void jsonw_int(struct jsonw *w, int64_t v);
/* The shortest %.Ng (N = 15..17) that reads back to d, with ".0" added to whole numbers. The
 * caller has switched this thread to the C locale (jsonw_c_locale). */
void jsonw_real(struct jsonw *w, double d);
/* Reals with few decimals (most gauges) without printf: false, nothing written, when d is not
 * such a number (jsonw_real writes it). */
bool jsonw_real_fast(struct jsonw *w, double d);
/* Any jansson value, objects in their iteration order, at most 64 levels deep (else -EINVAL);
 * reals by jsonw_real. Returns 0 or -EINVAL. */
int jsonw_value(struct jsonw *w, const json_t *j);

/* Switches this thread to the C locale (made once per process). Returns what to give back to
 * jsonw_locale_restore: the thread's locale before, or (locale_t)0 when nothing was switched
 * (the C locale could not be made). */
locale_t jsonw_c_locale(void);
void jsonw_locale_restore(locale_t old);

#endif
