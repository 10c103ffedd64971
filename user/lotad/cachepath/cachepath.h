/* The cache path: the routes that serve object reads from the cache and fill it
 * (cache-validated reads, pre-staging), the write route that invalidates, and what runs
 * beside them (the store, background fills, the herd table, the commit thread, eviction
 * on the control thread, the admin API's evict call and the status of the cache). What
 * other modules may ask of it besides: request.h (would it serve a read), upkeep.h
 * (invalidation). */
#ifndef LOTA_CACHEPATH_H
#define LOTA_CACHEPATH_H

#include <stdbool.h>

struct lotad;
struct cachepath;

/* Opens the store under cache-dir (none: relay only, said in one log line), loads the
 * service credentials, starts the commit thread. -errno with err set on a fatal error. */
int cachepath_new(struct lotad *d, struct cachepath **out, char *err, size_t errlen);
/* Adds the routes, the admin routes and the control thread's timers. */
int cachepath_register(struct cachepath *cp);
void cachepath_free(struct cachepath *cp);
#endif
