/* Types of the on-disk chunk store (cache/): keys, metadata, options, statistics and the
 * handles the daemon holds. Functions are in cache.h; everything private to cache/ is in
 * cache-int.h.
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

/* cache_opts.chunk_size: default, and what a value must be (a multiple of the page). */
#define CACHE_CHUNK_SIZE_DEFAULT ((uint64_t)16 << 20)
#define CACHE_CHUNK_SIZE_MIN ((uint64_t)1 << 20)
#define CACHE_CHUNK_ALIGN 4096
/* Chunks one version may be cut into; a version needing more is refused with -EFBIG. */
#define CACHE_CHUNKS_MAX UINT32_MAX

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

/* An object version and what is stored beside its bytes. A version is (etag, size,
 * chunk_size) of id: the same ETag cut with another chunk size is another version.
 * On input NULL strings mean "" and chunk_size 0 means the store's (cache_opts). On
 * output (lookups, followers) every string is non-NULL and NUL-terminated and chunk_size
 * is the one the version was stored with. */
struct cache_meta {
	struct cache_key id;
	uint64_t size;	     /* object bytes */
	uint64_t chunk_size; /* the version is cut into chunks of this; see above */
	const char *etag;    /* as the origin sent it, quotes included */
	const char *last_modified;
	const char *content_type;
	const void *extra; /* opaque: e.g. x-amz-meta-* header lines, replayed as is */
	size_t extra_len;
};

struct cache_opts {
	uint64_t capacity;   /* bytes; 0: cache_default_capacity(dir) */
	unsigned high_pct;   /* eviction starts above this % of capacity; 0: 90 */
	unsigned low_pct;    /* and stops at this %; 0: 80 */
	uint64_t chunk_size; /* new versions are cut into chunks of this; 0: 16 MiB */
	/* Called with one formatted line (no newline) for notable events: dropped files on
	 * recovery, corrupt chunks, failed unlinks, the directory's health. Any thread, no
	 * cache lock held. NULL: silent. */
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
	uint64_t entries; /* committed chunks */
	uint64_t objects; /* keys holding a version (committed chunks or running fills) */
	uint64_t chunk_size;
	uint64_t bytes_used;	 /* committed files, headers included */
	uint64_t bytes_reserved; /* announced by running fills */
	uint64_t capacity;
	uint64_t high_watermark;
	uint64_t low_watermark;
	uint64_t evictions;
	uint64_t evicted_bytes;
	uint64_t invalidations; /* chunks dropped by invalidation or by a newer version */
	uint64_t fills_running;
	uint64_t fills_started;
	uint64_t fills_committed;
	uint64_t fills_aborted; /* aborted, and complete but discarded (stale) */
	uint64_t fills_refused; /* no space, too many fills, degraded */
	uint64_t followers;	/* followers ever attached (coalesced readers) */
	uint64_t followers_refused;
	uint64_t corrupt_chunks;  /* dropped by verification or scrub: bad CRC, size, header */
	uint64_t lost_chunks;	  /* indexed but their file could not be opened: dropped */
	uint64_t verified_chunks; /* checked by cache_chunk_verify (first read) */
	uint64_t verified_bytes;
	uint64_t scrub_chunks; /* checked by cache_scrub */
	uint64_t scrub_bytes;
	uint64_t scrub_passes;	      /* full rounds over every committed chunk */
	uint64_t recovered;	      /* chunks found at open (or at a rescan) */
	uint64_t recovery_dropped;    /* bad, truncated, misnamed files removed at open */
	uint64_t recovery_superseded; /* chunks of a key's older version removed at open */
	bool is_degraded;	      /* see cache_health_check() */
	int degraded_error;	      /* negative errno that degraded it, else 0 */
	uint64_t degradations;
	uint64_t dir_recoveries;
};

/* A committed chunk opened by cache_chunk_open(): its bytes are object offsets
 * [offset, offset + len), at file offsets [body_offset, body_offset + len) of fd. The fd
 * is read-only and owned by the handle; it keeps the bytes alive after an invalidation or
 * eviction. Use offset-based I/O (pread, sendfile with an offset). */
struct cache_chunk {
	int fd;
	uint64_t body_offset;
	uint64_t len;
	uint64_t offset;
	uint32_t index;
	bool is_verified; /* its CRC was checked since it was written or since start */
};

/* What a key holds, as cache_object_lookup() returns it: meta and how many of its
 * nchunks chunks are committed and being filled at the time of the call. */
struct cache_object {
	struct cache_meta meta;
	uint32_t nchunks;
	uint32_t ncommitted;
	uint32_t nfilling;
};

enum cache_chunk_state {
	CACHE_CHUNK_ABSENT,
	CACHE_CHUNK_FILLING,
	CACHE_CHUNK_COMMITTED,
};

/* What cache_chunk_begin() found, when it is not an error. */
enum cache_begin {
	CACHE_BEGIN_FILL,      /* *out is the one fill of this chunk: write and commit it */
	CACHE_BEGIN_FOLLOW,    /* a fill of this chunk runs: follow it (cache_chunk_follow) */
	CACHE_BEGIN_COMMITTED, /* the chunk is committed: open it (cache_chunk_open) */
};

enum cache_fill_state {
	CACHE_FILL_RUNNING,
	CACHE_FILL_COMMITTED, /* all bytes written, verified, now a committed chunk */
	CACHE_FILL_DISCARDED, /* all bytes written and verified, but not kept (invalidated or
			       * superseded while it ran, the store degraded, or the commit's
			       * rename failed) */
	CACHE_FILL_ABORTED,   /* the writer gave up; only `written` bytes are valid */
};

struct cache_fill_status {
	enum cache_fill_state state;
	uint64_t written; /* body bytes readable now at [body_offset, body_offset + written) */
	uint64_t size;	  /* the chunk's length */
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
