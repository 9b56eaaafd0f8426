#include "sim/inject.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"

static const struct {
	const char *name;
	bool lasts;
} kinds[INJECT_KIND_COUNT] = {
	[INJECT_DBE] = {"dbe", false},
	[INJECT_XID] = {"xid", false},
	[INJECT_REMAP_PENDING] = {"remap-pending", false},
	[INJECT_REMAP_FAILURE] = {"remap-failure", false},
	[INJECT_FELL_OFF_BUS] = {"fell-off-bus", true},
	[INJECT_THERMAL_RUNAWAY] = {"thermal-runaway", true},
	[INJECT_POWER_BRAKE] = {"power-brake", true},
	[INJECT_SBE_STORM] = {"sbe-storm", true},
	[INJECT_NVLINK_CRC] = {"nvlink-crc", true},
	[INJECT_PCIE_REPLAY_STORM] = {"pcie-replay-storm", true},
};

const char *inject_syntax(void)
{
	return "gpu=N,fault=KIND,at=TIME[,duration=TIME][,xid=CODE] where KIND is dbe, "
	       "xid (needs xid=CODE, 1-1023), remap-pending, remap-failure, fell-off-bus, "
	       "thermal-runaway, power-brake, sbe-storm, nvlink-crc or pcie-replay-storm; TIME is "
	       "simulated time such as 30, 30s, 500ms, 2m; duration= only for the lasting kinds "
	       "(fell-off-bus, thermal-runaway, power-brake, sbe-storm, nvlink-crc, "
	       "pcie-replay-storm); e.g. gpu=3,fault=dbe,at=30s";
}

const char *inject_kind_name(enum inject_kind kind)
{
	return (unsigned)kind < INJECT_KIND_COUNT ? kinds[kind].name : "?";
}

bool inject_kind_lasts(enum inject_kind kind)
{
	return (unsigned)kind < INJECT_KIND_COUNT && kinds[kind].lasts;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end = NULL;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

#define FAIL(...)                                                                           \
	do {                                                                                \
		char what_[256];                                                            \
		snprintf(what_, sizeof(what_), __VA_ARGS__);                                \
		snprintf(err, errlen, "--inject '%s': %s; the syntax is %s", text, what_,   \
			 inject_syntax());                                                  \
		rc = -EINVAL;                                                               \
		goto out;                                                                   \
	} while (0)

int inject_parse(const char *text, unsigned n_gpus, struct inject_spec *out, char *err,
		 size_t errlen)
{
	int rc = 0;
	char buf[512];
	bool have_gpu = false, have_kind = false, have_at = false, have_dur = false,
	     have_xid = false;
	struct inject_spec s = {.duration = -1};

	if (strlen(text) >= sizeof(buf))
		FAIL("too long");
	snprintf(buf, sizeof(buf), "%s", text);
	if (buf[0] == '\0')
		FAIL("empty");
	char *save = NULL;
	for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		while (*item == ' ')
			item++;
		char *eq = strchr(item, '=');
		if (!eq)
			FAIL("'%s' is not key=value", item);
		*eq = '\0';
		const char *key = item, *val = eq + 1;
		unsigned long u;
		if (strcmp(key, "gpu") == 0) {
			if (have_gpu)
				FAIL("gpu= given twice");
			if (parse_uint(val, 65535, &u) != 0)
				FAIL("gpu='%s' is not a GPU index", val);
			if (u >= n_gpus)
				FAIL("gpu=%lu is out of range: the fleet has %u GPUs (0 to %u)", u, n_gpus,
				     n_gpus ? n_gpus - 1 : 0);
			s.gpu = (unsigned)u;
			have_gpu = true;
		} else if (strcmp(key, "fault") == 0) {
			if (have_kind)
				FAIL("fault= given twice");
			unsigned k;
			for (k = 0; k < INJECT_KIND_COUNT; k++)
				if (strcmp(val, kinds[k].name) == 0)
					break;
			if (k == INJECT_KIND_COUNT)
				FAIL("unknown fault '%s'", val);
			s.kind = (enum inject_kind)k;
			have_kind = true;
		} else if (strcmp(key, "at") == 0) {
			if (have_at)
				FAIL("at= given twice");
			if (config_parse_duration(val, &s.at) != 0 || s.at < 0)
				FAIL("at='%s' is not a time", val);
			have_at = true;
		} else if (strcmp(key, "duration") == 0) {
			if (have_dur)
				FAIL("duration= given twice");
			if (config_parse_duration(val, &s.duration) != 0 || !(s.duration > 0))
				FAIL("duration='%s' is not a positive time", val);
			have_dur = true;
		} else if (strcmp(key, "xid") == 0) {
			if (have_xid)
				FAIL("xid= given twice");
			if (parse_uint(val, 1023, &u) != 0 || u == 0)
				FAIL("xid='%s' is not an XID code (1 to 1023)", val);
			s.xid = (unsigned)u;
			have_xid = true;
		} else {
			FAIL("unknown key '%s'", key);
		}
	}
	if (!have_gpu)
		FAIL("gpu= is missing");
	if (!have_kind)
		FAIL("fault= is missing");
	if (!have_at)
		FAIL("at= is missing");
	if (s.kind == INJECT_XID && !have_xid)
		FAIL("fault=xid needs xid=CODE");
	if (s.kind != INJECT_XID && have_xid)
		FAIL("xid= applies to fault=xid only");
	if (have_dur && !kinds[s.kind].lasts)
		FAIL("fault=%s happens at one instant and takes no duration=", kinds[s.kind].name);
	*out = s;
out:
	return rc;
}
