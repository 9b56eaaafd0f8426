/* grow: the growth of a heap array by doubling, overflow-checked. */
#include "core/grow.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

int grow_array(void **items, size_t *cap, size_t need, size_t elsize, size_t first_cap)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap;
	if (!n)
		n = first_cap ? first_cap : 1;
	else if (n > SIZE_MAX / 2)
		return -ENOMEM;
	else
		n *= 2;
	while (n < need) {
		if (n > SIZE_MAX / 2)
			return -ENOMEM;
		n *= 2;
	}
	if (elsize && n > SIZE_MAX / elsize)
		return -ENOMEM;
	void *p = realloc(*items, n * elsize);
	if (!p)
		return -ENOMEM;
	*items = p;
	*cap = n;
	return 0;
}
