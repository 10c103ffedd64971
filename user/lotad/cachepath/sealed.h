/* sealed.c: what a chunk sealed under a customer key is in the store (its marker, the
 * keys of its version), the chunk buffers SSE-C work holds, and storing and opening one
 * chunk. Shared by the relayed 200's tee, hits (sseccache.c) and lotad's own SSE-C fills
 * (ssecfill.c). */
#ifndef LOTA_SEALED_H
#define LOTA_SEALED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cachepath/ssec-t.h"

struct cache_follower;
struct cache_key;
struct cache_meta;
struct cachepath;
struct http_msg;
struct objmeta;

/* Chunk buffers (one chunk each) SSE-C work holds at a time across the node: a read two, a
 * 200 being sealed one, a fill of lotad's one. Past it a read is relayed, a 200 is not
 * cached and a fill waits. Reads and 200s leave SSEC_BUFFERS_FILLS of them to fills:
 * fills depend on nobody, so reads waiting for them always go on. */
#define SSEC_BUFFERS_MAX 32
#define SSEC_BUFFERS_FILLS 8

/* The marker's length: "x-lota-ssec: 1 " (15), the verifier and the tag in hex, a space,
 * CRLF. A sealed version's extra field starts with it. */
#define SSEC_MARKER_LEN (15 + 2 * SSEC_VERIFIER_LEN + 1 + 2 * SSEC_TAG_LEN + 2)

/* Is m a version cached sealed (SSE-C)? Only a reader proving the key may have it. */
bool ssec_is_sealed(const struct cache_meta *m);
/* The marker at the start of a sealed chunk's extra field. -EINVAL: none, or bad. */
int ssec_marker_parse(const void *extra, size_t len, struct ssec_marker *mk);
/* The verifier key gives for version m under the node's secret. */
int ssec_version_verifier(const struct ssec *s, const uint8_t key[SSEC_KEY_LEN],
			  const struct cache_meta *m, uint8_t v[SSEC_VERIFIER_LEN]);
/* The version's verifier and chunk key for key. */
int ssec_version_keys(const struct ssec *s, const uint8_t key[SSEC_KEY_LEN],
		      const struct cache_meta *m, uint8_t v[SSEC_VERIFIER_LEN],
		      uint8_t ck[SSEC_KEY_LEN]);
/* The sealed version an origin's answer m names (k, size; chunk_size: the store's) for a
 * reader whose key the origin accepted: its headers without the SSE-C fields (a hit writes
 * them from the reader's request) and without anything named x-lota-, after a marker of
 * the version's verifier (tag zero: each chunk's own header has its tag); its verifier and
 * chunk key. Free om with objmeta_free() in every case. */
int ssec_version_from(const struct ssec *s, const uint8_t key[SSEC_KEY_LEN],
		      const struct cache_key *k, uint64_t size, uint64_t chunk_size,
		      const struct http_msg *m, struct objmeta *om, uint8_t v[SSEC_VERIFIER_LEN],
		      uint8_t ck[SSEC_KEY_LEN]);
/* Is m an origin's answer about an SSE-C object it decrypted with AES256 (it says so),
 * with an ETag? */
bool ssec_is_sealed_answer(const struct http_msg *m);
/* Does the held version h have m's identity but another key's chunks (or plain ones)? */
bool ssec_is_other_copy(const struct cache_meta *h, const struct cache_meta *m,
			const uint8_t v[SSEC_VERIFIER_LEN]);

/* Is every chunk of bytes [first, last] of m committed here? */
bool ssec_is_committed(struct cachepath *cp, const struct cache_meta *m, uint64_t first,
		       uint64_t last);

/* A chunk buffer of len bytes, or NULL past SSEC_BUFFERS_MAX - spare in use (or without
 * memory): spare is 0 for a fill, SSEC_BUFFERS_FILLS for the others. */
uint8_t *ssec_buffer_get(struct ssec *s, size_t len, unsigned spare);
/* Wipes its first wipe bytes (those that held plaintext) and frees it; NULL is fine. */
void ssec_buffer_put(struct ssec *s, uint8_t *b, size_t wipe);

/* Seals plain (chunk index of sealed version m, len bytes) under ck into sealed (plain
 * itself, or a buffer apart), its tag into tag, and stores it: begun, written and handed
 * to the commit thread. 0; -EEXIST if the store has the chunk or fills it already; else
 * the store's -errno (the bytes are sealed either way), or -EIO if they could not be. */
int ssec_store_chunk(struct cachepath *cp, const struct cache_meta *m,
		     const uint8_t ck[SSEC_KEY_LEN], uint64_t index, const uint8_t *plain,
		     uint8_t *sealed, size_t len, uint8_t tag[SSEC_TAG_LEN]);
/* Chunk index of sealed version m (verifier v, chunk key ck) into buf (cap bytes), opened:
 * from its committed file (CRC verified) or from a fill of the store that has written it
 * all (fl); in both its own header must name v and its tag must hold. Its length into
 * *len. -ENOENT: not committed here; -EBADMSG: not ours or not intact (never serve it). */
int ssec_read_committed(struct cachepath *cp, const struct cache_meta *m,
			const uint8_t v[SSEC_VERIFIER_LEN], const uint8_t ck[SSEC_KEY_LEN],
			uint64_t index, uint8_t *buf, size_t cap, uint64_t *len);
int ssec_read_followed(struct cache_follower *fl, const uint8_t v[SSEC_VERIFIER_LEN],
		       const uint8_t ck[SSEC_KEY_LEN], uint64_t index, uint8_t *buf, size_t cap,
		       uint64_t *len);

#endif
