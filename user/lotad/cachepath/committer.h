/* Commits off the workers: a commit reads deferred bytes back for the CRC and
 * fdatasync()s the whole body, seconds for a big object, and a worker must not sleep. */
#ifndef LOTA_COMMITTER_H
#define LOTA_COMMITTER_H

struct cache_fill;
struct committer;

/* Starts the commit thread. */
int committer_new(struct committer **out);
/* Commits what is queued, then stops the thread. NULL is fine. */
void committer_free(struct committer *cm);
/* Takes the writer's handle: the fill is committed (or aborted) on the commit thread.
 * label (bucket/key, for the log line) is copied. */
void committer_commit(struct committer *cm, struct cache_fill *f, const char *label);

#endif
