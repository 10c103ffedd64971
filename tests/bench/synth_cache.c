/* synth_cache: fills a lota cache directory with N committed chunks of SIZE bytes each,
 * through the store's own chunk API (cache_chunk_begin/write/commit), CHUNKS to an object
 * (default 1: objects of SIZE bytes, one chunk each), so the restart benchmark measures
 * recovery of real chunks. fdatasync is skipped: the point is the count.
 *   synth_cache CACHE-DIR N SIZE [CHUNKS]   prints the number of chunks held
 *   synth_cache --open CACHE-DIR            times cache_open (the index rebuilt)
 *   synth_cache --scrub CACHE-DIR           times one scrub pass (read + CRC-32 of all)
 * Build: cc -O2 -Iuser/lib -Icache synth_cache.c build/libcache.a -lz -lpthread (see run.py)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int open_cache(const char *dir, struct cache **c)
{
	struct cache_opts opts = {.is_fdatasync_skipped = true};
	int err = cache_open(dir, &opts, c);

	if (err)
		fprintf(stderr, "synth_cache: open %s: %s\n", dir, strerror(-err));
	return err;
}

static int put_chunk(struct cache *c, const struct cache_meta *m, uint32_t index,
		     const char *body)
{
	uint64_t cs = m->chunk_size ? m->chunk_size : cache_chunk_size(c);
	struct cache_fill *f;
	int err = cache_chunk_begin(c, m, index, &f);

	if (err != CACHE_BEGIN_FILL)
		return err > 0 ? -EEXIST : err;
	err = cache_fill_write(f, body, cache_chunk_len(m->size, cs, index));
	if (err) {
		cache_fill_abort(f, err);
		return err;
	}
	return cache_fill_commit(f, NULL);
}

static int synth(const char *dir, long n, size_t size, long per_object)
{
	struct cache_stats st;
	struct cache *c;
	char *body = malloc(size ? size : 1);
	int err = open_cache(dir, &c);

	if (err)
		return 1;
	memset(body, 'x', size);
	for (long i = 0; i < n && !err; i++) {
		char key[64], etag[64];
		struct cache_meta m = {
		    .id = {.bucket = "bench", .key = key},
		    .size = size * (uint64_t)per_object,
		    .chunk_size = per_object > 1 ? size : 0,
		    .etag = etag,
		    .last_modified = "Sun, 22 Nov 2026 00:00:00 GMT",
		    .content_type = "application/octet-stream",
		};

		snprintf(key, sizeof(key), "synth/%07ld", i / per_object);
		snprintf(etag, sizeof(etag), "\"%032lx\"", i / per_object);
		err = put_chunk(c, &m, (uint32_t)(i % per_object), body);
		if (err)
			fprintf(stderr, "synth_cache: chunk %ld: %s\n", i, strerror(-err));
	}
	cache_stats(c, &st);
	printf("%llu\n", (unsigned long long)st.entries);
	cache_close(c);
	free(body);
	return err ? 1 : 0;
}

static int time_open(const char *dir)
{
	struct cache_stats st;
	struct cache *c;
	double t0 = now(), t;

	if (open_cache(dir, &c))
		return 1;
	t = now() - t0;
	cache_stats(c, &st);
	printf("open: %.3f s for %llu chunks of %llu objects\n", t,
	       (unsigned long long)st.entries, (unsigned long long)st.objects);
	cache_close(c);
	return 0;
}

static int time_scrub(const char *dir)
{
	struct cache_stats st;
	struct cache *c;
	int64_t n, total = 0;
	double t0, t;

	if (open_cache(dir, &c))
		return 1;
	t0 = now();
	do {
		n = cache_scrub(c, (uint64_t)1 << 30);
		total += n > 0 ? n : 0;
		cache_stats(c, &st);
	} while (n > 0 && !st.scrub_passes);
	t = now() - t0;
	printf("scrub: %lld bytes of %llu chunks in %.3f s: %.2f GB/s, %.3f s per GiB\n",
	       (long long)total, (unsigned long long)st.scrub_chunks, t, (double)total / t / 1e9,
	       t / ((double)total / (1 << 30)));
	cache_close(c);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--open"))
		return time_open(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "--scrub"))
		return time_scrub(argv[2]);
	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: synth_cache CACHE-DIR N SIZE [CHUNKS]\n"
				"       synth_cache --open|--scrub CACHE-DIR\n");
		return 2;
	}
	return synth(argv[1], atol(argv[2]), strtoul(argv[3], NULL, 10),
		     argc == 5 && atol(argv[4]) > 0 ? atol(argv[4]) : 1);
}
