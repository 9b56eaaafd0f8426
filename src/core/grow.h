/* grow: the growth of a heap array by doubling, overflow-checked. */
#ifndef GPUHEALTH_GROW_H
#define GPUHEALTH_GROW_H

#include <stddef.h>

/* Makes the array *items of *cap elements of elsize bytes hold at least need: nothing when
 * need <= *cap, else *cap doubled (first_cap, at least 1, when *cap is 0) until it is need or
 * more, then realloc. 0, or -ENOMEM (out of memory, or the size overflows size_t) with *items
 * and *cap unchanged. The caller passes its own pointer as (void **)&array. */
int grow_array(void **items, size_t *cap, size_t need, size_t elsize, size_t first_cap);

#endif
