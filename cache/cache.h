/* lota's on-disk object store: committed entries keyed by (bucket, key, versionId), one
 * fill per key with followers that read while it grows, LRU eviction between watermarks,
 * and recovery of the index from disk at open. Knows nothing of HTTP or sockets.
 *
 * Every function returns 0 or a negative errno unless said otherwise. All functions are
 * thread-safe; one mutex guards the index and is never held across body I/O.
 *
 * On disk, under dir:
 *   objects/XX/YYYY...  one file per entry, named by the hex of a 128-bit hash of the
 *                       length-prefixed (bucket, key, version): never by the key itself
 *   tmp/HASH.N          a running fill; renamed into objects/ at commit; removed at open
 * Each file is a header (see entry.c: magic, format version, header length, body size,
 * body CRC-32, bucket, key, version, ETag, Last-Modified, Content-Type, opaque extra
 * headers, header CRC-32) followed by the body at body_offset == header length.
 *
 * Durability: a fill is fdatasync()ed before it is renamed into place, so a committed
 * file is never partial. The directory is not fsync()ed: a power loss may forget the
 * latest commits, never expose a torn one.
 */
#ifndef LOTA_CACHE_H
#define LOTA_CACHE_H

#include "cache-t.h"

/* Opens (creating dir/objects and dir/tmp if needed) and rebuilds the index: removes
 * everything in tmp/, reads only the header of every file in objects/, removes (and
 * logs) files that are bad, truncated or misnamed, and orders the LRU by each file's
 * newer of atime and mtime (lookups refresh atime at most once a minute per entry).
 * The scan runs on 16 threads; opts->log may be called from any of them. */
int cache_open(const char *dir, const struct cache_opts *opts, struct cache **out);

/* Closes the store. Every cache_obj, fill and follower must be released first. */
void cache_close(struct cache *c);

/* 1 TiB, clamped to 90% of the size of the filesystem holding dir (statvfs); 0 on
 * error. */
uint64_t cache_default_capacity(const char *dir);

/* Fills *st with a consistent snapshot of the counters. */
void cache_stats(struct cache *c, struct cache_stats *st);

/* Finds a committed entry and returns a handle with its metadata and an open fd;
 * refreshes its LRU recency. -ENOENT on a miss. Release with cache_obj_close(). */
int cache_lookup(struct cache *c, const struct cache_key *k, struct cache_obj **out);

/* Closes the fd and frees the handle; NULL is fine. */
void cache_obj_close(struct cache_obj *o);

/* Drops the entry for k and, when k has a version, the entry for (bucket, key, no
 * version) as well: what a successful write to the key can change. Other versions are
 * immutable in S3 and stay. A fill running for either tuple still completes for its
 * followers but is not committed (CACHE_FILL_DISCARDED). Open handles keep reading.
 * Returns the number of entries dropped (0 or more). */
int cache_invalidate(struct cache *c, const struct cache_key *k);

/* Evicts least-recently-used entries until usage is at or below the low watermark.
 * Meant for the control thread; takes the lock once per entry so workers interleave.
 * Returns the number of entries evicted. */
int cache_evict(struct cache *c);

/* Drops every committed entry (counted as evictions); running fills still commit. Returns
 * the number dropped. For operators: lotactl evict --all. */
int cache_clear(struct cache *c);

/* Starts the one fill of meta->id, announcing meta->size body bytes: reserves the space,
 * writes the header to a new file in tmp/ and returns the writer's handle.
 * Space: if usage plus reservations would pass the high watermark, up to
 * CACHE_EVICT_INLINE entries are evicted right here and on_pressure is called so the
 * control thread brings usage down to the low watermark; if it would still pass the
 * capacity, -ENOSPC (serve without caching). -EFBIG: the object can never fit.
 * -EEXIST: a fill for this key is running: follow it (cache_fill_follow). -EBUSY: a fill
 * of another key with the same hash runs (astronomically rare): do not cache. -EAGAIN:
 * CACHE_MAX_FILLS fills are running. */
int cache_fill_begin(struct cache *c, const struct cache_meta *meta, struct cache_fill **out);

/* Appends len body bytes (pwrite at the current end, CRC updated) and wakes followers.
 * -EFBIG past the announced size; -ENOSPC/-EIO from the disk: the writer should abort. */
int cache_fill_write(struct cache_fill *f, const void *buf, size_t len);

/* For writers that splice into the file themselves: the temp file's fd (owned by the
 * fill, do not close) and the absolute file offset where the next body byte goes. Use
 * splice/pwrite with this explicit offset, then report with cache_fill_advance(). */
int cache_fill_write_pos(struct cache_fill *f, int *fd, uint64_t *off);

/* Reports n bytes written at the position cache_fill_write_pos() gave, and wakes the
 * followers. crc: the zlib crc32 of exactly those n bytes if the caller knows it, or NULL
 * and the bytes are read back with pread (they were just written: page cache) so the
 * entry's CRC is always that of the bytes on disk. */
int cache_fill_advance(struct cache_fill *f, uint64_t n, const uint32_t *crc);

/* Like cache_fill_advance, but the CRC of these bytes is computed later (at the next
 * write or advance, or at commit) by reading them back: for a writer that must not spend
 * its thread on checksums, with the commit done elsewhere. */
int cache_fill_advance_nocrc(struct cache_fill *f, uint64_t n);

/* Commits: the body must be exactly the announced size (-EPROTO otherwise) and, when
 * expected_crc is not NULL, have that CRC-32 (-EBADMSG otherwise). Finalizes the header,
 * fdatasync()s, renames into objects/ (replacing an older entry of the same key) and
 * indexes it. On any failure the fill is aborted and nothing is left behind. -ESTALE: the
 * key was invalidated while the fill ran; followers still get every byte. Consumes the
 * writer's handle in every case. */
int cache_fill_commit(struct cache_fill *f, const uint32_t *expected_crc);

/* Gives up (error: the negative errno followers will see, e.g. -ECONNRESET, -ENOSPC):
 * removes the temp file, releases the reservation, wakes followers. Consumes the
 * writer's handle. */
void cache_fill_abort(struct cache_fill *f, int error);

/* Attaches to the running fill of k: -ENOENT if none runs (it may just have committed:
 * look up again), -EUSERS past CACHE_FILL_MAX_FOLLOWERS. wake (may be NULL) is called
 * as described at cache_wake_fn. Release with cache_follower_close(). */
int cache_fill_follow(struct cache *c, const struct cache_key *k, cache_wake_fn wake, void *arg,
		      struct cache_follower **out);

/* Progress of the followed fill. */
void cache_follower_status(struct cache_follower *fl, struct cache_fill_status *st);

/* The fill's file (read-only use, offset-based I/O; owned by the fill, valid until
 * cache_follower_close; dup() it to hand it off) and where its body starts. The fd stays
 * valid and complete after the fill commits or is discarded. */
int cache_follower_fd(struct cache_follower *fl, uint64_t *body_offset);

/* The fill's metadata, valid until cache_follower_close (crc32 is 0). */
const struct cache_meta *cache_follower_meta(struct cache_follower *fl);

/* Detaches: after it returns, wake is neither running nor called again. Must not be
 * called from inside wake. NULL is fine. */
void cache_follower_close(struct cache_follower *fl);

#endif
