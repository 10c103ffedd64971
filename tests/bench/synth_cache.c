/* synth_cache: fills a lota cache directory with N committed entries of SIZE bytes each,
 * through the store's own API (cache_fill_begin/write/commit), so the restart benchmark
 * measures recovery of real entries. fdatasync is skipped: the point is the count.
 * Build: cc -O2 -Iuser -Icache synth_cache.c build/liblota.a -levent ... (see run.py)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: synth_cache CACHE-DIR N SIZE\n");
		return 2;
	}
	long n = atol(argv[2]);
	size_t size = strtoul(argv[3], NULL, 10);
	struct cache_opts opts = { .is_fdatasync_skipped = true };
	struct cache *c;
	int err = cache_open(argv[1], &opts, &c);
	if (err) {
		fprintf(stderr, "synth_cache: open %s: %s\n", argv[1], strerror(-err));
		return 1;
	}
	char *body = malloc(size ? size : 1);
	memset(body, 'x', size);
	for (long i = 0; i < n; i++) {
		char key[64], etag[64];
		snprintf(key, sizeof(key), "synth/%07ld", i);
		snprintf(etag, sizeof(etag), "\"%032lx\"", i);
		struct cache_meta m = {
			.id = { .bucket = "bench", .key = key },
			.size = size,
			.etag = etag,
			.last_modified = "Sun, 22 Nov 2026 00:00:00 GMT",
			.content_type = "application/octet-stream",
		};
		struct cache_fill *f;
		err = cache_fill_begin(c, &m, &f);
		if (!err) {
			err = cache_fill_write(f, body, size);
			if (err)
				cache_fill_abort(f, err);
			else
				err = cache_fill_commit(f, NULL);
		}
		if (err) {
			fprintf(stderr, "synth_cache: entry %ld: %s\n", i, strerror(-err));
			return 1;
		}
	}
	struct cache_stats st;
	cache_stats(c, &st);
	printf("%llu\n", (unsigned long long)st.entries);
	cache_close(c);
	free(body);
	return 0;
}
