/* Unit tests for user/lib/chunkmap.c: which chunks hold a range, and which part of each. */
#include "unit.h"

#include "chunkmap.h"

#define MiB (1024ULL * 1024)
#define CS (16 * MiB)

static void test_counts_and_lengths(void)
{
	CU_ASSERT_EQUAL(chunkmap_count(0, CS), 1);
	CU_ASSERT_EQUAL(chunkmap_count(1, CS), 1);
	CU_ASSERT_EQUAL(chunkmap_count(CS, CS), 1);
	CU_ASSERT_EQUAL(chunkmap_count(CS + 1, CS), 2);
	CU_ASSERT_EQUAL(chunkmap_count(100 * MiB + 3, CS), 7);
	CU_ASSERT_EQUAL(chunkmap_len(0, CS, 0), 0);
	CU_ASSERT_EQUAL(chunkmap_len(CS, CS, 0), CS);
	CU_ASSERT_EQUAL(chunkmap_len(CS, CS, 1), 0);
	CU_ASSERT_EQUAL(chunkmap_len(100 * MiB + 3, CS, 6), 100 * MiB + 3 - 6 * CS);
	CU_ASSERT_EQUAL(chunkmap_len(100 * MiB + 3, CS, 7), 0);
	CU_ASSERT_EQUAL(chunkmap_start(CS, 3), 3 * CS);
}

static void test_spans(void)
{
	uint64_t a, b;

	chunkmap_span(100 * MiB + 3, CS, 0, 0, &a, &b); /* the first byte */
	CU_ASSERT(a == 0 && b == 0);
	chunkmap_span(100 * MiB + 3, CS, CS - 1, CS, &a, &b); /* last of one, first of next */
	CU_ASSERT(a == 0 && b == 1);
	chunkmap_span(100 * MiB + 3, CS, CS, 2 * CS - 1, &a, &b); /* exactly chunk 1 */
	CU_ASSERT(a == 1 && b == 1);
	chunkmap_span(100 * MiB + 3, CS, 100 * MiB, 100 * MiB + 2, &a, &b); /* a suffix */
	CU_ASSERT(a == 6 && b == 6);
	chunkmap_span(100 * MiB + 3, CS, 0, 100 * MiB + 2, &a, &b); /* the whole object */
	CU_ASSERT(a == 0 && b == 6);
	chunkmap_span(3 * CS, CS, 0, 3 * CS - 1, &a, &b); /* a multiple of the chunk size */
	CU_ASSERT(a == 0 && b == 2);
	chunkmap_span(0, CS, 0, 0, &a, &b); /* zero-length: one empty chunk */
	CU_ASSERT(a == 0 && b == 0);
}

static void test_parts(void)
{
	uint64_t size = 100 * MiB + 3;
	struct chunk_part p;

	p = chunkmap_part(size, CS, CS - 10, CS + 9, 0);
	CU_ASSERT(p.off == CS - 10 && p.len == 10);
	p = chunkmap_part(size, CS, CS - 10, CS + 9, 1);
	CU_ASSERT(p.off == 0 && p.len == 10);
	p = chunkmap_part(size, CS, CS - 10, CS + 9, 2);
	CU_ASSERT_EQUAL(p.len, 0);
	p = chunkmap_part(size, CS, 0, size - 1, 6);
	CU_ASSERT(p.off == 0 && p.len == size - 6 * CS);
	p = chunkmap_part(size, CS, size - 1, size - 1, 6); /* the last byte */
	CU_ASSERT(p.off == size - 6 * CS - 1 && p.len == 1);
	p = chunkmap_part(size, CS, 5, 4, 0); /* an empty range */
	CU_ASSERT_EQUAL(p.len, 0);
	p = chunkmap_part(0, CS, 0, 0, 0); /* the empty chunk of an empty object */
	CU_ASSERT_EQUAL(p.len, 0);
}

/* Every byte of a range belongs to exactly one part, in order. */
static void test_parts_cover_ranges(void)
{
	static const uint64_t sizes[] = {1, 4096, CS - 1, CS, CS + 1, 3 * CS, 100 * MiB + 3};

	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		uint64_t size = sizes[s];

		for (uint64_t first = 0; first < size; first += size / 7 + 1) {
			for (uint64_t last = first; last < size; last += size / 5 + 1) {
				uint64_t a, b, next = first;

				chunkmap_span(size, CS, first, last, &a, &b);
				for (uint64_t i = a; i <= b; i++) {
					struct chunk_part p = chunkmap_part(size, CS, first, last, i);

					CU_ASSERT_EQUAL(chunkmap_start(CS, i) + p.off, next);
					CU_ASSERT(p.len > 0);
					next += p.len;
				}
				CU_ASSERT_EQUAL(next, last + 1);
			}
		}
	}
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"counts and lengths", test_counts_and_lengths},
	    {"spans", test_spans},
	    {"parts", test_parts},
	    {"parts cover every range", test_parts_cover_ranges},
	};

	return UNIT_RUN("chunkmap", NULL, NULL, tests);
}
