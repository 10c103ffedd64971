/* Private to cache/: the store, its index entries, fills, the on-disk header codec and
 * the helpers the .c files of cache/ share. Nothing outside cache/ includes this.
 */
#ifndef LOTA_CACHE_INT_H
#define LOTA_CACHE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "cache.h"

#define CACHE_HASH_LEN 16
/* "ab/" + 30 hex digits + NUL */
#define CACHE_NAME_LEN 34
/* 32 hex digits + "." + 20 digits + NUL */
#define CACHE_TMPNAME_LEN 56
/* Entries evicted inside cache_fill_begin at most, before -ENOSPC. */
#define CACHE_EVICT_INLINE 16
/* A lookup rewrites the file's atime (the recency that survives a restart) at most this
 * often per entry, so hits do not dirty inodes. */
#define CACHE_STAMP_SECS 60

/* On-disk header: fixed part, variable fields, then a CRC-32 of everything before it. */
#define ENTRY_MAGIC "lotaobj\n"
#define ENTRY_FORMAT 1
#define ENTRY_FIXED_LEN 48
#define ENTRY_NFIELDS 6 /* bucket, key, version, etag, last_modified, content_type */
#define ENTRY_HEADER_MAX                                                                           \
	(ENTRY_FIXED_LEN + CACHE_BUCKET_MAX + CACHE_KEY_MAX + CACHE_VERSION_MAX + CACHE_ETAG_MAX + \
	 CACHE_LASTMOD_MAX + CACHE_CTYPE_MAX + CACHE_EXTRA_MAX + 4)

/* A decoded header; fields point into the buffer it was decoded from, not NUL-ended. */
struct entry_hdr {
	uint32_t header_len;
	uint64_t size;
	uint32_t crc;
	const char *field[ENTRY_NFIELDS];
	uint16_t field_len[ENTRY_NFIELDS];
	const void *extra;
	uint32_t extra_len;
};

struct hnode {
	struct hnode *next;
	uint8_t hash[CACHE_HASH_LEN];
};

/* Chained hash table keyed by the 128-bit tuple hash; grows by doubling. */
struct htab {
	struct hnode **bucket;
	size_t nbuckets;
	size_t count;
};

/* A committed entry in the index. Its file, objects/<name of hn.hash>, exists exactly
 * while it is indexed: every rename onto or unlink of an object path happens under the
 * store's lock together with the index change. */
struct entry {
	struct hnode hn;
	struct entry *lru_prev, *lru_next; /* head = most recent */
	uint64_t id;			   /* never reused: tells a lookup its entry survived */
	uint64_t file_size;
	time_t stamp; /* recency last written to the file's atime */
	uint16_t bucket_len, key_len, version_len;
	char tuple[]; /* bucket NUL key NUL version NUL */
};

struct cache {
	int dirfd, objfd, tmpfd;
	pthread_mutex_t mu;
	struct htab entries;
	struct htab fills;
	struct entry *lru_head, *lru_tail;
	uint64_t used, reserved, capacity, high, low;
	uint64_t next_id;
	uint64_t next_tmp; /* atomic: temp file names */
	bool is_pressure_signaled;
	struct cache_stats st; /* counters only; sizes are filled in by cache_stats() */
	struct cache_opts opts;
};

struct cache_fill {
	struct hnode hn;
	struct cache *c;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned refs; /* the writer's, until commit/abort, plus one per follower */
	int fd;
	char tmpname[CACHE_TMPNAME_LEN];
	uint8_t *hdr; /* encoded header, rewritten with the CRC at commit */
	uint32_t header_len;
	uint64_t size, written, reserve;
	uint64_t notified; /* written when followers were last woken (writer only) */
	uint64_t crc_upto; /* body bytes crc covers; less than written when deferred */
	uint32_t crc;
	enum cache_fill_state state;
	int error;
	bool is_stale;	    /* invalidated while running: do not commit */
	unsigned notifying; /* wake rounds in progress outside the lock */
	struct cache_follower *followers[CACHE_FILL_MAX_FOLLOWERS];
	unsigned nfollowers;
	struct cache_meta meta; /* strings in metabuf */
	char *metabuf;
};

struct cache_follower {
	struct cache_fill *f;
	cache_wake_fn wake;
	void *arg;
};

/* hash.c */
int key_check(const struct cache_key *k);
void key_hash(const struct cache_key *k, uint8_t hash[CACHE_HASH_LEN]);
void hash_name(const uint8_t hash[CACHE_HASH_LEN], char name[CACHE_NAME_LEN]);
int hash_from_name(const char *dir, const char *file, uint8_t hash[CACHE_HASH_LEN]);

/* entry.c */
int entry_encode(const struct cache_meta *m, uint8_t **out, uint32_t *len);
void entry_set_crc(uint8_t *hdr, uint32_t len, uint32_t body_crc);
int entry_decode(const uint8_t *buf, size_t len, struct entry_hdr *h);
int entry_read(int fd, uint8_t *buf, size_t cap, uint8_t **big, struct entry_hdr *h);
int entry_meta_dup(const struct entry_hdr *h, struct cache_meta *m, char **buf);
bool entry_tuple_eq(const struct entry_hdr *h, const struct cache_key *k);

/* index.c: all under c->mu */
int htab_init(struct htab *t, size_t nbuckets);
void htab_free(struct htab *t);
struct hnode *htab_find(struct htab *t, const uint8_t hash[CACHE_HASH_LEN]);
void htab_insert(struct htab *t, struct hnode *n);
void htab_remove(struct htab *t, struct hnode *n);
struct entry *index_new(const uint8_t hash[CACHE_HASH_LEN], const char *bucket, size_t blen,
			const char *key, size_t klen, const char *version, size_t vlen);
struct entry *index_find(struct cache *c, const struct cache_key *k);
void index_add(struct cache *c, struct entry *e);
void index_drop(struct cache *c, struct entry *e);
void lru_touch(struct cache *c, struct entry *e);
void lru_push_head(struct cache *c, struct entry *e);
void lru_append(struct cache *c, struct entry *e);

/* store.c */
void cache_log(struct cache *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* evict.c */
int evict_one_locked(struct cache *c);
int unlink_entry_locked(struct cache *c, struct entry *e);
bool pressure_check_locked(struct cache *c);
void pressure_signal(struct cache *c);

/* fill.c */
void fill_unref(struct cache_fill *f);
bool fill_is_key(const struct cache_fill *f, const struct cache_key *k);
void fill_mark_stale_locked(struct cache *c, const struct cache_key *k);

#endif
