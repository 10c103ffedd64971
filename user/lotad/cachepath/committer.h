/* Commits off the workers: a commit reads deferred bytes back for the CRC and
 * fdatasync()s the whole body, seconds for a big object, and a worker must not sleep. The
 * commit thread also makes committed chunks' directory entries durable (cache_sync), in
 * batches: one directory fsync per burst of commits, not one per commit. */
#ifndef LOTA_COMMITTER_H
#define LOTA_COMMITTER_H

/* A commit's directory entry is made durable when the queue runs dry after it, and at
 * most this long after it while commits keep coming. */
#define COMMITTER_SYNC_MS 200
/* While idle the thread syncs this often anyway: commits made on other threads, and
 * directories whose fsync failed, are retried. */
#define COMMITTER_IDLE_SYNC_MS 1000

struct cache;
struct cache_fill;
struct committer;

/* Starts the commit thread for the store c. */
int committer_new(struct cache *c, struct committer **out);
/* Commits what is queued, makes it durable, then stops the thread. NULL is fine. */
void committer_free(struct committer *cm);
/* Takes the writer's handle: the fill is committed (or aborted) on the commit thread.
 * label (bucket/key, for the log line) is copied. */
void committer_commit(struct committer *cm, struct cache_fill *f, const char *label);

#endif
