/* grow_array: doubling from the first capacity, up to the need at once, a need within the
 * capacity changes nothing, an overflowing size is refused with the old array kept (before
 * realloc: no test asks the allocator for more than memory, which ASan would report). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/grow.h"

static void first_capacity_from_zero(void **state)
{
	(void)state;
	int *a = NULL;
	size_t cap = 0;
	assert_int_equal(grow_array((void **)&a, &cap, 1, sizeof(*a), 16), 0);
	assert_non_null(a);
	assert_int_equal(cap, 16);
	free(a);
	/* first capacity 0 counts as 1 */
	a = NULL;
	cap = 0;
	assert_int_equal(grow_array((void **)&a, &cap, 1, sizeof(*a), 0), 0);
	assert_int_equal(cap, 1);
	free(a);
}

static void doubles_keeping_the_items(void **state)
{
	(void)state;
	int *a = NULL;
	size_t cap = 0, n = 0;
	size_t caps[8], nc = 0;
	for (int i = 0; i < 100; i++) {
		size_t before = cap;
		assert_int_equal(grow_array((void **)&a, &cap, n + 1, sizeof(*a), 8), 0);
		if (cap != before)
			caps[nc++] = cap;
		a[n++] = i;
	}
	assert_int_equal(nc, 5); /* 8, 16, 32, 64, 128 */
	for (size_t i = 0; i < nc; i++)
		assert_int_equal(caps[i], (size_t)8 << i);
	for (int i = 0; i < 100; i++)
		assert_int_equal(a[i], i);
	free(a);
}

static void doubles_until_it_holds_need(void **state)
{
	(void)state;
	char *a = NULL;
	size_t cap = 0;
	assert_int_equal(grow_array((void **)&a, &cap, 5000, 1, 4096), 0);
	assert_int_equal(cap, 8192);
	assert_int_equal(grow_array((void **)&a, &cap, 8193, 1, 4096), 0);
	assert_int_equal(cap, 16384);
	assert_int_equal(grow_array((void **)&a, &cap, 100000, 1, 4096), 0);
	assert_int_equal(cap, 131072);
	free(a);
}

static void need_within_cap_is_a_no_op(void **state)
{
	(void)state;
	int *a = malloc(4 * sizeof(*a));
	assert_non_null(a);
	int *was = a;
	size_t cap = 4;
	assert_int_equal(grow_array((void **)&a, &cap, 4, sizeof(*a), 16), 0);
	assert_int_equal(grow_array((void **)&a, &cap, 0, sizeof(*a), 16), 0);
	assert_ptr_equal(a, was);
	assert_int_equal(cap, 4);
	free(a);
	/* nothing allocated when nothing is needed */
	a = NULL;
	cap = 0;
	assert_int_equal(grow_array((void **)&a, &cap, 0, sizeof(*a), 16), 0);
	assert_null(a);
	assert_int_equal(cap, 0);
}

static void overflow_refused_array_kept(void **state)
{
	(void)state;
	uint64_t *a = malloc(4 * sizeof(*a));
	assert_non_null(a);
	for (int i = 0; i < 4; i++)
		a[i] = (uint64_t)i;
	uint64_t *was = a;
	size_t cap = 4;
	/* the element size overflows the byte count */
	assert_int_equal(grow_array((void **)&a, &cap, SIZE_MAX / 4, sizeof(*a), 16), -ENOMEM);
	/* doubling would pass SIZE_MAX */
	assert_int_equal(grow_array((void **)&a, &cap, SIZE_MAX, 1, 16), -ENOMEM);
	size_t big = SIZE_MAX / 2 + 1;
	assert_int_equal(grow_array((void **)&a, &big, big + 1, 1, 16), -ENOMEM);
	assert_int_equal(big, SIZE_MAX / 2 + 1);
	assert_ptr_equal(a, was);
	assert_int_equal(cap, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(a[i], i);
	free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(first_capacity_from_zero),
	    cmocka_unit_test(doubles_keeping_the_items),
	    cmocka_unit_test(doubles_until_it_holds_need),
	    cmocka_unit_test(need_within_cap_is_a_no_op),
	    cmocka_unit_test(overflow_refused_array_kept),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
