/* errmsg: the messages a constructor leaves in its caller's err buffer. */
#ifndef GPUHEALTH_ERRMSG_H
#define GPUHEALTH_ERRMSG_H

#include <stddef.h>

/* A constructor's failure: when rc is -ENOMEM, err becomes "out of memory creating WHAT"
 * (what its callee said is replaced: an allocation failed, whoever saw it). Returns rc. */
int errmsg_oom(int rc, char *err, size_t errlen, const char *what);

#endif
