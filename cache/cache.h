/* lota's on-disk chunk store. The unit is the chunk: an object version (bucket, key,
 * versionId, ETag, size) is cut into fixed chunk_size pieces aligned from offset 0, the
 * last one shorter; an object no larger than a chunk is one chunk, a zero-length object
 * is one empty chunk. A chunk's identity is (bucket, key, versionId, ETag, size,
 * chunk_size, index), so two versions' bytes never mix. The store keeps one version per
 * key, one fill per chunk with followers that read while it grows, LRU eviction of chunks
 * between watermarks, verification of a chunk's CRC-32 before it is served and a
 * scrubber, a watch on its directory, and recovery of the index from disk at open. It
 * knows nothing of HTTP or sockets.
 *
 * Every function returns 0 or a negative errno unless said otherwise. All functions are
 * thread-safe; one mutex guards the index and is never held across body I/O.
 *
 * On disk, under dir:
 *   objects/XX/YYYY...  one file per committed chunk, named by the hex of a 128-bit hash
 *                       of its whole identity: never by the key itself
 *   tmp/HASH.N          a running fill; renamed into objects/ at commit; removed at open
 * Each file is a header (see entry.c: magic, format 2, header length, chunk length, body
 * CRC-32, chunk index, object size, chunk size, bucket, key, version, ETag, Last-Modified,
 * Content-Type, opaque extra headers, header CRC-32) followed by the chunk's bytes at
 * body_offset == header length. Files of format 1 (whole objects) are removed at open.
 *
 * Chunk size: cache_opts.chunk_size cuts new versions; the chunk size a version was
 * stored with is in each of its headers and is part of its identity, so a restart with
 * another chunk-size setting keeps the old chunks and reads them right: the daemon learns
 * a held version's chunk size from cache_object_lookup() and names it in every call
 * about that version (cache_meta.chunk_size). A fill begun with another chunk size for
 * the same ETag is another version and replaces the held one.
 *
 * Durability: a fill is fdatasync()ed before it is renamed into place, so a committed
 * file is never partial; cache_sync() makes the renames since its last call durable.
 * After a crash of lotad alone (the kernel survives) nothing committed is lost. After a
 * power loss or kernel crash, what was committed before the last cache_sync() is there;
 * a chunk committed after it may be missing (its rename forgotten; never torn: its data
 * was on disk before the rename), and a chunk evicted, invalidated or dropped after it may
 * come back. Such a chunk is a whole, valid chunk of its version: the daemon serves it only
 * after the origin confirms its ETag, and it is verified again before its first read
 * (verification bits live in memory only). Running fills are always lost (tmp/ is
 * emptied at open). With cache_opts.is_fdatasync_skipped a power loss may keep a
 * committed chunk whose bytes never reached the disk; verification then drops it.
 */
#ifndef LOTA_CACHE_H
#define LOTA_CACHE_H

#include "cache-t.h"

/* ---- the store ------------------------------------------------------------------- */

/* Opens (creating dir, dir/objects and dir/tmp if needed) and rebuilds the index:
 * removes everything in tmp/, reads only the header of every file in objects/, removes
 * (and logs) files that are bad, truncated, misnamed or of format 1, removes the chunks of
 * a key's older versions (the newest version found, by its chunks' mtime, is kept), and
 * orders the LRU by each file's newer of atime and mtime (opening a chunk refreshes its
 * atime at most once a minute). The scan runs on 16 threads; opts->log may be called from
 * any of them. -EINVAL: a bad option (chunk_size not a multiple of 4 KiB of at least
 * 1 MiB, watermarks). -EBUSY: another store (another lotad) has dir open. */
int cache_open(const char *dir, const struct cache_opts *opts, struct cache **out);

/* Closes the store. Every handle, fill and follower must be released first. */
void cache_close(struct cache *c);

/* 1 TiB, clamped to 90% of the size of the filesystem holding dir (statvfs); 0 on
 * error. */
uint64_t cache_default_capacity(const char *dir);

/* Fills *st with a consistent snapshot of the counters. */
void cache_stats(struct cache *c, struct cache_stats *st);

/* The chunk size new versions are cut with (cache_opts.chunk_size). */
uint64_t cache_chunk_size(const struct cache *c);

/* ---- chunk arithmetic (pure) ------------------------------------------------------ */

/* Chunks an object of size bytes is cut into: at least 1 (a zero-length object is one
 * empty chunk); 0 if chunk_size is 0. Chunk i covers [i * chunk_size, i * chunk_size +
 * cache_chunk_len(...)); the byte at offset x is in chunk x / chunk_size. */
uint64_t cache_chunk_count(uint64_t size, uint64_t chunk_size);

/* Length of chunk index: chunk_size, less for the last one; 0 past the last one. */
uint64_t cache_chunk_len(uint64_t size, uint64_t chunk_size, uint64_t index);

/* ---- objects ---------------------------------------------------------------------- */

/* What k holds: its version's metadata (chunk_size as stored), read from a
 * running fill or, without one, from a committed chunk's header; its chunk count; how
 * many chunks are committed and being filled. -ENOENT: k holds nothing. Release with
 * cache_object_release(). */
int cache_object_lookup(struct cache *c, const struct cache_key *k, struct cache_object **out);

/* Frees what cache_object_lookup() returned; NULL is fine. */
void cache_object_release(struct cache_object *o);

/* The state of chunks [first, first + n) of the version m names (m->id, etag, size,
 * chunk_size; other fields ignored) into out[0..n). -ENOENT: k does not hold that version
 * (out is all CACHE_CHUNK_ABSENT); -ERANGE: past the version's last chunk. */
int cache_chunk_states(struct cache *c, const struct cache_meta *m, uint32_t first, uint32_t n,
		       enum cache_chunk_state *out);

/* Drops every chunk of every version of k and, when k has a version, of (bucket, key, no
 * version) as well: what a successful write to the key can change. Other versionIds are
 * immutable in S3 and stay. Fills running for either key go stale: they complete for
 * their followers but are not committed (CACHE_FILL_DISCARDED). Open handles keep
 * reading. Returns the number of chunks dropped (0 or more). */
int cache_invalidate(struct cache *c, const struct cache_key *k);

/* Evicts least-recently-used chunks until usage is at or below the low watermark.
 * Meant for the control thread; takes the lock once per chunk so workers interleave.
 * Returns the number of chunks evicted. */
int cache_evict(struct cache *c);

/* Drops every committed chunk (counted as evictions); running fills still commit.
 * Returns the number dropped. For operators: lotactl evict --all. */
int cache_clear(struct cache *c);

/* ---- reading a chunk -------------------------------------------------------------- */

/* Opens committed chunk index of the version m names (as for cache_chunk_states) and
 * refreshes its LRU recency. -ENOENT: not committed here (absent, being filled, another
 * version held, or its file is gone: then it is dropped, counted in lost_chunks and
 * logged); -ERANGE: past the last chunk. Release with cache_chunk_close(). */
int cache_chunk_open(struct cache *c, const struct cache_meta *m, uint32_t index,
		     struct cache_chunk **out);

/* Makes sure ch's bytes are the ones committed before any is served: unless ch was
 * verified since it was written or since the store opened (ch->is_verified, an in-memory
 * bit per chunk), reads its header and body and checks the file's length and the body's
 * CRC-32 against the header's; this also brings the body into the page cache for the
 * sendfile that follows. 0: verified (ch->is_verified is set). -EBADMSG: the chunk is
 * corrupt (bad CRC, short or long file, bad header, read error): its file is removed,
 * it is dropped from the index, counted in corrupt_chunks and logged once naming the file
 * and what was wrong; fetch the chunk again from the origin. -ENOMEM: nothing checked. */
int cache_chunk_verify(struct cache_chunk *ch);

/* Closes the fd and frees the handle; NULL is fine. */
void cache_chunk_close(struct cache_chunk *ch);

/* The extra field of ch's own header (chunkextra.c), which may differ from chunk to chunk
 * of a version, into buf: its length in *len. -E2BIG past cap, -EBADMSG if the header is
 * bad, or a read error. */
int cache_chunk_extra(const struct cache_chunk *ch, void *buf, size_t cap, size_t *len);

/* ---- filling a chunk -------------------------------------------------------------- */

/* Starts the one fill of chunk index of the version m describes (every field of m is
 * stored in the chunk's header; m->chunk_size 0: the store's), announcing the chunk's
 * length: reserves the space, writes the header to a new file in tmp/ and returns
 * CACHE_BEGIN_FILL with the writer's handle in *out. If k holds another version, that
 * version's chunks are dropped and its fills go stale first (one version per key).
 * CACHE_BEGIN_FOLLOW: this chunk's fill runs: follow it (cache_chunk_follow).
 * CACHE_BEGIN_COMMITTED: the chunk is committed: open it.
 * Space: if usage plus reservations would pass the high watermark, up to
 * CACHE_EVICT_INLINE chunks are evicted right here and on_pressure is called so the
 * control thread brings usage down to the low watermark; if it would still pass the
 * capacity, -ENOSPC (serve without caching). -EFBIG: the chunk can never fit, or the
 * version has more than CACHE_CHUNKS_MAX chunks. -ERANGE: index is past the last chunk.
 * -EBUSY: another identity has the same hash (astronomically rare): do not cache.
 * -EAGAIN: CACHE_MAX_FILLS fills are running. -EIO: the store is degraded (see
 * cache_health_check). Bounds on fields: see cache-t.h. */
int cache_chunk_begin(struct cache *c, const struct cache_meta *m, uint32_t index,
		      struct cache_fill **out);

/* Appends len body bytes (pwrite at the current end, CRC updated) and wakes followers.
 * -EFBIG past the chunk's length; -ENOSPC/-EIO from the disk: the writer should abort. */
int cache_fill_write(struct cache_fill *f, const void *buf, size_t len);

/* For writers that splice into the file themselves: the temp file's fd (owned by the
 * fill, do not close) and the absolute file offset where the next body byte goes. Use
 * splice/pwrite with this explicit offset, then report with cache_fill_advance(). */
int cache_fill_write_pos(struct cache_fill *f, int *fd, uint64_t *off);

/* Reports n bytes written at the position cache_fill_write_pos() gave, and wakes the
 * followers. crc: the zlib crc32 of exactly those n bytes if the caller knows it, or NULL
 * and the bytes are read back with pread (they were just written: page cache) so the
 * chunk's CRC is always that of the bytes on disk. */
int cache_fill_advance(struct cache_fill *f, uint64_t n, const uint32_t *crc);

/* Like cache_fill_advance, but the CRC of these bytes is computed later (at the next
 * write or advance, or at commit) by reading them back: for a writer that must not spend
 * its thread on checksums, with the commit done elsewhere. */
int cache_fill_advance_nocrc(struct cache_fill *f, uint64_t n);

/* Commits: the body must be exactly the chunk's length (-EPROTO otherwise) and, when
 * expected_crc is not NULL, have that CRC-32 (-EBADMSG otherwise). Computes the CRC (of
 * deferred bytes), finalizes the header, fdatasync()s, renames into objects/ and indexes
 * the chunk (not verified yet: see cache_chunk_verify). On any failure the fill is
 * aborted and nothing is left behind. -ESTALE: the key was invalidated, another version
 * began, or the store degraded while the fill ran; followers still get every byte.
 * Consumes the writer's handle in every case. */
int cache_fill_commit(struct cache_fill *f, const uint32_t *expected_crc);

/* Gives up (error: the negative errno followers will see, e.g. -ECONNRESET, -ENOSPC):
 * removes the temp file, releases the reservation, wakes followers. Consumes the
 * writer's handle. */
void cache_fill_abort(struct cache_fill *f, int error);

/* Attaches to the running fill of chunk index of the version m names: -ENOENT if none
 * runs (it may just have committed: open it), -EUSERS past CACHE_FILL_MAX_FOLLOWERS.
 * wake (may be NULL) is called as described at cache_wake_fn. Release with
 * cache_follower_close(). */
int cache_chunk_follow(struct cache *c, const struct cache_meta *m, uint32_t index,
		       cache_wake_fn wake, void *arg, struct cache_follower **out);

/* Progress of the followed fill (size: the chunk's length). */
void cache_follower_status(struct cache_follower *fl, struct cache_fill_status *st);

/* The fill's file (read-only use, offset-based I/O; owned by the fill, valid until
 * cache_follower_close; dup() it to hand it off) and where its body starts. The fd stays
 * valid and complete after the fill commits or is discarded. */
int cache_follower_fd(struct cache_follower *fl, uint64_t *body_offset);

/* The fill's metadata (the object's: size, chunk_size, ETag...), valid until
 * cache_follower_close. */
const struct cache_meta *cache_follower_meta(struct cache_follower *fl);

/* Detaches: after it returns, wake is neither running nor called again. Must not be
 * called from inside wake. NULL is fine. */
void cache_follower_close(struct cache_follower *fl);

/* ---- integrity, health, durability: for the daemon's control and commit threads --- */

/* Verifies, round-robin from the least recently used, committed chunks not verified in
 * the current pass, reading at most about budget bytes (a chunk bigger than what is left
 * is read over several calls). A pass is one round over every committed chunk; the first
 * one after open checks every chunk not verified since its write or since start (a
 * reader's cache_chunk_verify counts), and each later one re-verifies them all, so
 * corruption of cold data is found before a reader needs it. A corrupt chunk is dropped as
 * by cache_chunk_verify. Progress is in the stats (scrub_chunks, scrub_bytes,
 * scrub_passes, corrupt_chunks). Returns the bytes read (0: nothing to do, e.g. the
 * store is empty or degraded), or a negative errno (-ENOMEM). */
int64_t cache_scrub(struct cache *c, uint64_t budget);

/* Checks that the cache directory is still the one opened and accepts writes (call it
 * every second or so). When it has disappeared or been replaced (ENOENT, ENOTDIR, or
 * another directory at its path) or refuses writes (EROFS, EACCES, EIO, ENOSPC on
 * creating a file), the store degrades: one log line says why, running fills go stale,
 * new fills are refused (-EIO), and when the directory is gone or replaced every chunk is
 * dropped from the index and its bytes uncounted (a chunk whose file turns out missing
 * later is dropped when it is opened). A later call that finds the directory usable
 * again (at its path, on the filesystem it was on at open; objects/ and tmp/ are recreated
 * if needed) recovers by itself: it rescans the directory when the index was dropped, and
 * the store takes fills again. Returns 0 when healthy, else the negative errno that keeps
 * it degraded (also in cache_stats: is_degraded, degraded_error). */
int cache_health_check(struct cache *c);

/* Makes durable the directory entries of the chunks committed since the last call:
 * fsync()s each objects/XX directory a commit renamed into. For the daemon's commit
 * thread, in batches (e.g. after each run of commits, or every second). Returns the
 * number of directories synced, or the first negative errno (those directories stay due
 * for the next call). */
int cache_sync(struct cache *c);

#endif
