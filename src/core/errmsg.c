#include "core/errmsg.h"

#include <errno.h>
#include <stdio.h>

int errmsg_oom(int rc, char *err, size_t errlen, const char *what)
{
	if (rc == -ENOMEM && err && errlen)
		snprintf(err, errlen, "out of memory creating %s", what);
	return rc;
}
