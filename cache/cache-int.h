/* Private to cache/: the store, its objects, chunks and fills, the on-disk header codec
 * and the helpers the .c files of cache/ share. Nothing outside cache/ includes this.
 */
#ifndef LOTA_CACHE_INT_H
#define LOTA_CACHE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

#include "cache.h"

#define CACHE_HASH_LEN 16
/* "ab/" + 30 hex digits + NUL */
#define CACHE_NAME_LEN 34
/* 32 hex digits + "." + 20 digits + NUL */
#define CACHE_TMPNAME_LEN 56
/* Chunks evicted inside a fill's begin at most, before -ENOSPC. */
#define CACHE_EVICT_INLINE 16
/* Opening a chunk rewrites its file's atime (the recency that survives a restart) at most
 * this often per chunk, so hits do not dirty inodes. */
#define CACHE_STAMP_SECS 60
/* Recovery scans the 256 fan-out directories with this many threads: warm, it is bound
 * by syscalls (open, fstat, pread, close per file); cold, by the disk's queue depth. */
#define SCAN_THREADS 16

/* On-disk header: fixed part, variable fields, then a CRC-32 of everything before it. */
#define ENTRY_MAGIC "lotaobj\n"
#define ENTRY_FORMAT 2
#define ENTRY_FIXED_LEN 64
#define ENTRY_NFIELDS 6 /* bucket, key, version, etag, last_modified, content_type */
#define ENTRY_HEADER_MAX                                                                           \
	(ENTRY_FIXED_LEN + CACHE_BUCKET_MAX + CACHE_KEY_MAX + CACHE_VERSION_MAX + CACHE_ETAG_MAX + \
	 CACHE_LASTMOD_MAX + CACHE_CTYPE_MAX + CACHE_EXTRA_MAX + 4)

/* A decoded header; fields point into the buffer it was decoded from, not NUL-ended. */
struct entry_hdr {
	uint32_t header_len;
	uint64_t len; /* this chunk's body bytes */
	uint32_t crc;
	uint32_t index;
	uint64_t size, chunk_size; /* the object's */
	const char *field[ENTRY_NFIELDS];
	uint16_t field_len[ENTRY_NFIELDS];
	const void *extra;
	uint32_t extra_len;
};

struct hnode {
	struct hnode *next;
	uint8_t hash[CACHE_HASH_LEN];
};

/* Chained hash table keyed by a 128-bit hash; grows by doubling. */
struct htab {
	struct hnode **bucket;
	size_t nbuckets;
	size_t count;
};

/* A version as the caller names it, checked and resolved (chunk_size 0 -> the store's). */
struct version {
	const char *etag;
	uint64_t size, chunk_size;
	uint32_t nchunks;
};

/* A key and the one version it holds, with its committed chunks and its running fills.
 * It exists exactly while it has either; keyed by the hash of (bucket, key, version). */
struct obj {
	struct hnode hn;
	struct chunk *chunks;	  /* committed, linked by obj_next */
	struct cache_fill *fills; /* running and not stale, linked by obj_next */
	uint64_t size, chunk_size;
	uint32_t nchunks, ncommitted, nfills;
	time_t newest;	  /* recovery only: newest mtime of this version's chunks */
	uint64_t seed[2]; /* the name hash after the version; a chunk's name adds its index */
	uint16_t bucket_len, key_len, version_len, etag_len;
	char strs[]; /* bucket NUL key NUL version NUL etag NUL */
};

/* A committed chunk. Its file, objects/<name of hn.hash>, exists exactly while it is
 * indexed: every rename onto or unlink of an object path happens under the store's lock
 * together with the index change. */
struct chunk {
	struct hnode hn;
	struct chunk *lru_prev, *lru_next; /* head = most recent */
	struct chunk *obj_prev, *obj_next;
	struct obj *obj;
	uint64_t id;  /* never reused: tells an opener its chunk survived */
	time_t stamp; /* recency last written to the file's atime */
	uint32_t index, header_len, crc;
	uint32_t verified_pass; /* scrub pass of its last verification; 0: never */
};

/* The scrubber's place: a cursor walking the LRU from the tail (coldest first) and the
 * chunk being read, which a call may leave half done for the next one. */
struct scrub {
	struct chunk *cursor; /* next to look at; moved off a chunk that leaves the LRU */
	bool is_walking;      /* a pass is under way */
	uint32_t pass;	      /* starts at 1 */
	int fd;		      /* the chunk being read, or -1 */
	uint8_t hash[CACHE_HASH_LEN];
	uint64_t id, off, end, len;
	uint32_t crc, want;
};

struct health {
	bool is_degraded, is_index_dropped;
	int error;
	dev_t dev; /* the filesystem at open: a recovery must find the directory there */
	ino_t ino; /* the directory at open or at the last recovery */
};

struct cache {
	char *path;
	int dirfd, objfd, tmpfd; /* numbers never change: a recovery dup2()s onto them */
	int lockfd;		 /* the directory, flock()ed: one store per directory */
	pthread_mutex_t mu;
	struct htab objs;   /* struct obj by key hash */
	struct htab chunks; /* struct chunk by name hash */
	struct htab fills;  /* registered struct cache_fill by name hash */
	struct chunk *lru_head, *lru_tail;
	uint64_t used, reserved, capacity, high, low, chunk_size;
	uint64_t next_id;
	uint64_t next_tmp; /* atomic: temp file names */
	unsigned nfills;   /* running, stale ones included */
	bool is_pressure_signaled;
	uint8_t dirty[32]; /* fan-out directories renamed into since the last cache_sync() */
	struct scrub scrub;
	struct health health;
	pthread_mutex_t ctl_mu; /* one scrub or health check at a time */
	struct cache_stats st;	/* counters only; sizes are filled in by cache_stats() */
	struct cache_opts opts;
};

struct cache_fill {
	struct hnode hn; /* name hash */
	uint8_t obj_hash[CACHE_HASH_LEN];
	struct cache *c;
	struct obj *obj; /* NULL once stale: invalidated, superseded or degraded */
	struct cache_fill *obj_prev, *obj_next;
	bool is_registered; /* in c->fills */
	uint32_t index;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned refs; /* the writer's, until commit/abort, plus one per follower */
	int fd;
	char tmpname[CACHE_TMPNAME_LEN];
	uint8_t *hdr; /* encoded header, rewritten with the CRC at commit */
	uint32_t header_len;
	uint64_t size, written, reserve; /* size: the chunk's length */
	uint64_t notified;		 /* written when followers were last woken (writer only) */
	uint64_t crc_upto; /* body bytes crc covers; less than written when deferred */
	uint32_t crc;
	enum cache_fill_state state;
	int error;
	unsigned notifying; /* wake rounds in progress outside the lock */
	struct cache_follower *followers[CACHE_FILL_MAX_FOLLOWERS];
	unsigned nfollowers;
	struct version v;	/* v.etag points into meta */
	struct cache_meta meta; /* strings in metabuf */
	char *metabuf;
};

struct cache_follower {
	struct cache_fill *f;
	cache_wake_fn wake;
	void *arg;
};

/* What a struct cache_chunk is inside. */
struct chunk_handle {
	struct cache_chunk pub;
	struct cache *c;
	uint8_t hash[CACHE_HASH_LEN];
	uint64_t id;
	uint32_t header_len, crc;
};

/* What a chunk's file must be, for verification. */
struct chunk_expect {
	uint32_t header_len, crc;
	uint64_t len;
};

/* What recovery found in one file, before it is grouped into objects. */
struct scan_rec {
	struct chunk *ch;
	struct obj *obj; /* a fresh one; merged into an indexed one of the same version */
	uint64_t key;	 /* the start of obj's hash, to sort by without a pointer chase */
	time_t mtime, stamp;
};

/* hash.c */
int key_check(const struct cache_key *k);
void key_hash(const struct cache_key *k, uint8_t hash[CACHE_HASH_LEN]);
void version_hashes(const struct cache_key *k, const struct version *v,
		    uint8_t key[CACHE_HASH_LEN], uint64_t seed[2]);
void chunk_hash(const uint64_t seed[2], uint32_t index, uint8_t hash[CACHE_HASH_LEN]);
void hash_name(const uint8_t hash[CACHE_HASH_LEN], char name[CACHE_NAME_LEN]);
int hash_from_name(const char *dir, const char *file, uint8_t hash[CACHE_HASH_LEN]);

/* entry.c */
int entry_encode(const struct cache_meta *m, uint32_t index, uint64_t len, uint8_t **out,
		 uint32_t *hlen);
void entry_set_crc(uint8_t *hdr, uint32_t len, uint32_t body_crc);
int entry_decode(const uint8_t *buf, size_t len, struct entry_hdr *h);
int entry_read(int fd, uint8_t *buf, size_t cap, uint8_t **big, struct entry_hdr *h);
int entry_meta_dup(const struct entry_hdr *h, struct cache_meta *m, char **buf);
int meta_dup(const struct cache_meta *src, struct cache_meta *m, char **buf);
bool entry_tuple_eq(const struct entry_hdr *h, const struct cache_key *k);

/* index.c: all under c->mu */
int htab_init(struct htab *t, size_t nbuckets);
void htab_free(struct htab *t);
struct hnode *htab_find(struct htab *t, const uint8_t hash[CACHE_HASH_LEN]);
void htab_insert(struct htab *t, struct hnode *n);
void htab_reserve(struct htab *t, size_t count);
void htab_remove(struct htab *t, struct hnode *n);
struct hnode *htab_next(const struct htab *t, size_t *slot);
void index_add(struct cache *c, struct chunk *ch);
void index_drop(struct cache *c, struct chunk *ch);
uint64_t chunk_file_size(const struct chunk *ch);
void lru_touch(struct cache *c, struct chunk *ch);
void lru_push_head(struct cache *c, struct chunk *ch);
void lru_append(struct cache *c, struct chunk *ch);

/* object.c: *_locked under c->mu */
int version_resolve(const struct cache *c, const struct cache_meta *m, struct version *v);
struct obj *obj_new(const struct cache_key *k, const struct version *v);
bool obj_is_key(const struct obj *o, const struct cache_key *k);
bool obj_is_version(const struct obj *o, const struct version *v);
struct obj *obj_find_locked(struct cache *c, const struct cache_key *k);
void obj_put_locked(struct cache *c, struct obj *o);
int obj_drop_locked(struct cache *c, struct obj *o);
struct chunk *obj_chunk_locked(struct cache *c, struct obj *o, uint32_t index);
struct cache_fill *obj_fill_locked(struct cache *c, struct obj *o, uint32_t index);
void obj_key(const struct obj *o, struct cache_key *k);

/* store.c */
void cache_log(struct cache *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int open_subdir(int parent, const char *name, int *fd);
int store_recover(struct cache *c, int objfd, int tmpfd);

/* health.c */
int health_init(struct cache *c);

/* recover.c */
int recover_clean_tmp(struct cache *c, int tmpfd);
int recover_scan(struct cache *c, int objfd, struct scan_rec **out, size_t *n);
uint64_t recover_merge_locked(struct cache *c, int objfd, struct scan_rec *v, size_t n);
void recover_free(struct scan_rec *v, size_t n);

/* evict.c */
int evict_one_locked(struct cache *c);
int unlink_chunk_locked(struct cache *c, struct chunk *ch);
bool pressure_check_locked(struct cache *c);
void pressure_signal(struct cache *c);

/* fill.c */
void fill_unref(struct cache_fill *f);
void fill_detach_locked(struct cache *c, struct cache_fill *f);
void fill_detach_all_locked(struct cache *c);

/* chunk.c */
int chunk_open_fd(struct cache *c, const uint8_t hash[CACHE_HASH_LEN], uint64_t id, int flags);
struct chunk *chunk_by_id_locked(struct cache *c, const uint8_t hash[CACHE_HASH_LEN], uint64_t id);
void chunk_drop_corrupt(struct cache *c, const uint8_t hash[CACHE_HASH_LEN], uint64_t id,
			const char *why);

/* verify.c */
int verify_head(int fd, const struct chunk_expect *e, char *why, size_t whylen);
int verify_body(int fd, uint64_t off, uint64_t n, void *buf, size_t bufsz, uint32_t *crc, char *why,
		size_t whylen);

/* crc.c */
uint32_t crc_update(uint32_t crc, const void *buf, size_t len);

#endif
