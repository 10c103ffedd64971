/* The cache path: the routes that serve object reads from the cache and fill it
 * (cache-validated reads, pre-staging), the write route that invalidates, and what runs
 * beside them (the store, background fills, the herd table, the commit thread, eviction
 * on the control thread, the admin API's evict call and the status of the cache). */
#ifndef LOTA_CACHEPATH_H
#define LOTA_CACHEPATH_H

#include <stdbool.h>

struct lotad;
struct exchange;
struct worker;
struct cache_key;
struct cachepath;

/* Opens the store under cache-dir (none: relay only, said in one log line), loads the
 * service credentials, starts the commit thread. -errno with err set on a fatal error. */
int cachepath_new(struct lotad *d, struct cachepath **out, char *err, size_t errlen);
/* Adds the routes, the admin routes and the control thread's timers. */
int cachepath_register(struct cachepath *cp);
void cachepath_free(struct cachepath *cp);
/* Would the cache serve this read (a plain, uncondtional GET it may store, or a
 * pre-staging HEAD)? The owner of the key should then be the one to answer it. */
bool cachepath_would_serve(const struct cachepath *cp, const struct exchange *x);
/* A write through this node changed k: fn is called (on the worker's thread) after the
 * local entry is dropped, so that the node holding k drops it too. */
typedef void (*cachepath_invalidate_fn)(void *arg, struct worker *w, const struct cache_key *k);
void cachepath_on_invalidate(struct cachepath *cp, cachepath_invalidate_fn fn, void *arg);
/* Drops k here (a peer told us): how many entries went. */
int cachepath_invalidate(struct cachepath *cp, const struct cache_key *k);

#endif
