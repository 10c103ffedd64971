/* The version lotad last learned for a key (with its own HEAD), kept when no chunk of it
 * is on this node: in a cluster a node holds some of an object's chunks or none, and
 * without this every read of such an object would learn its version again, a HEAD to the
 * origin before the read's own request. A hint, never an authority: the read still asks
 * the origin to confirm it (If-None-Match), and a stale one costs a 200. Shared by the
 * workers; bounded (a slot per key hash, the newer entry wins). */
#ifndef LOTA_KNOWN_H
#define LOTA_KNOWN_H

struct cache_key;
struct cache_meta;
struct known;
struct objmeta;

#define KNOWN_SLOTS 8192

int known_new(struct known **out);
void known_free(struct known *kn);
/* Remembers version m (of m->id). */
void known_put(struct known *kn, const struct cache_meta *m);
/* A copy of the version known for k into out (objmeta_free it): 0, or -ENOENT, -ENOMEM. */
int known_get(struct known *kn, const struct cache_key *k, struct objmeta *out);
/* Forgets k (a write, an invalidation, a newer version at the origin). */
void known_drop(struct known *kn, const struct cache_key *k);

#endif
