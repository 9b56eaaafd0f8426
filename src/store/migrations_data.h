/* migrations_data: the SQL migrations of schema/, embedded at build time (generated C). */
#ifndef GPUHEALTH_MIGRATIONS_DATA_H
#define GPUHEALTH_MIGRATIONS_DATA_H

#include <stddef.h>

struct migration {
	int version;      /* 1, 2, ... without gaps */
	const char *name; /* file name without .sql, e.g. "001_core" */
	const char *sql;  /* the whole script */
};

extern const struct migration migrations_data[];
extern const size_t migrations_data_count;

#endif
