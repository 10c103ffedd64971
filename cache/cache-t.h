/* Types of the on-disk object store (cache/): keys, metadata, options, statistics and
 * the handles the daemon holds. Functions are in cache.h; everything private to cache/
 * is in cache-int.h.
 */
#ifndef LOTA_CACHE_T_H
#define LOTA_CACHE_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bounds on metadata fields, in bytes, not counting the NUL. A field over its bound is
 * refused with -ENAMETOOLONG (tuple) or -E2BIG (other fields); the daemon should not try
 * to cache such an object. */
#define CACHE_BUCKET_MAX 255
#define CACHE_KEY_MAX 1024
#define CACHE_VERSION_MAX 1024
#define CACHE_ETAG_MAX 256
#define CACHE_LASTMOD_MAX 64
#define CACHE_CTYPE_MAX 256
#define CACHE_EXTRA_MAX 16384

/* Followers of one fill at a time; one more is refused with -EUSERS. */
#define CACHE_FILL_MAX_FOLLOWERS 64
/* Followers are woken once per this many new bytes (and at the end of a fill). */
#define CACHE_WAKE_BYTES (256 * 1024)
/* Fills running at a time in one store; one more is refused with -EAGAIN. */
#define CACHE_MAX_FILLS 1024

/* Identity of a cached object. Strings must not contain NUL (the daemon rejects such
 * keys); version NULL or "" means "no versionId" (the null/latest version). */
struct cache_key {
	const char *bucket;
	const char *key;
	const char *version;
};

/* What is stored beside a body. On input (cache_fill_begin) NULL strings mean "". On
 * output (lookups, followers) every string is non-NULL and NUL-terminated. */
struct cache_meta {
	struct cache_key id;
	uint64_t size;	  /* body bytes */
	uint32_t crc32;	  /* zlib crc32 of the body; output only */
	const char *etag; /* as the origin sent it, quotes included */
	const char *last_modified;
	const char *content_type;
	const void *extra; /* opaque: e.g. x-amz-meta-* header lines, replayed as is */
	size_t extra_len;
};

struct cache_opts {
	uint64_t capacity; /* bytes; 0: cache_default_capacity(dir) */
	unsigned high_pct; /* eviction starts above this % of capacity; 0: 90 */
	unsigned low_pct;  /* and stops at this %; 0: 80 */
	/* Called with one formatted line (no newline) for notable events: dropped files on
	 * recovery, failed unlinks. Any thread, no cache lock held. NULL: silent. */
	void (*log)(void *arg, const char *msg);
	void *log_arg;
	/* Called (no lock held, any thread) when usage plus reservations crosses the high
	 * watermark, so the daemon can wake its control thread to run cache_evict(). */
	void (*on_pressure)(void *arg);
	void *pressure_arg;
	/* Commits skip fdatasync(): for benchmarks and tests that create many entries. A
	 * crash may then keep an entry whose body did not reach the disk. */
	bool is_fdatasync_skipped;
};

struct cache_stats {
	uint64_t entries;
	uint64_t bytes_used;	 /* committed files, headers included */
	uint64_t bytes_reserved; /* announced by running fills */
	uint64_t capacity;
	uint64_t high_watermark;
	uint64_t low_watermark;
	uint64_t evictions;
	uint64_t evicted_bytes;
	uint64_t invalidations;
	uint64_t fills_running;
	uint64_t fills_started;
	uint64_t fills_committed;
	uint64_t fills_aborted;
	uint64_t fills_refused; /* no space, too many fills */
	uint64_t followers;	/* followers ever attached (coalesced readers) */
	uint64_t followers_refused;
	uint64_t recovered;	   /* entries found at open */
	uint64_t recovery_dropped; /* bad or truncated files removed at open */
};

/* A committed entry as returned by cache_lookup(): the body is at
 * [body_offset, body_offset + meta.size) of fd. The fd is read-only and owned by the
 * handle; it keeps the bytes alive after an invalidation or eviction. Use offset-based
 * I/O (pread, sendfile with an offset); dup() it to hand it to something that closes. */
struct cache_obj {
	struct cache_meta meta;
	int fd;
	uint64_t body_offset;
	void *priv; /* cache/ only */
};

enum cache_fill_state {
	CACHE_FILL_RUNNING,
	CACHE_FILL_COMMITTED, /* all bytes written, verified, now a cache entry */
	CACHE_FILL_DISCARDED, /* all bytes written and verified, but not kept (invalidated
			       * while it ran, or the commit's rename failed) */
	CACHE_FILL_ABORTED,   /* the writer gave up; only `written` bytes are valid */
};

struct cache_fill_status {
	enum cache_fill_state state;
	uint64_t written; /* body bytes readable now at [body_offset, body_offset + written) */
	uint64_t size;	  /* announced body size */
	int error;	  /* negative errno that aborted the fill, else 0 */
};

struct cache;
struct cache_fill;
struct cache_follower;

/* Wake-up for a follower: called from the writer's thread after new bytes are written
 * and once at the end (commit, discard or abort), with no cache lock held. Must be cheap
 * and must not call back into the same follower (see cache_follower_close). */
typedef void (*cache_wake_fn)(void *arg);

#endif
