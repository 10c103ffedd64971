/* Commits off the workers: a commit reads deferred bytes back for the CRC and
 * fdatasync()s the whole body, seconds for a big object, and a worker must not sleep. */
#ifndef LOTA_COMMITTER_H
#define LOTA_COMMITTER_H

struct cache_fill;

int committer_start(void);
/* Takes the writer's handle: the fill is committed (or aborted) on the commit thread.
 * label (bucket/key, for the log line) is copied. */
void committer_commit(struct cache_fill *f, const char *label);

#endif
