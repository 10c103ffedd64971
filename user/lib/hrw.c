/* Rendezvous hashing over SipHash-2-4. SipHash rather than SHA-256: it is a well-studied
 * keyed PRF with 64-bit output, and scoring 64 nodes costs about 64 short SipHash calls
 * (tests/unit/test_hrw.c prints the measured cost of both). The key is fixed, not the
 * cluster secret, so that rotating the secret does not move every key. */
#include <errno.h>
#include <string.h>

#include "hrw.h"

/* "lota-hrw-v1" padded: changing it moves every key of every cluster. */
#define HRW_K0 0x7277682d61746f6cULL
#define HRW_K1 0x000000000031762dULL

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

struct sip {
	uint64_t v0, v1, v2, v3;
};

static inline void sip_round(struct sip *s)
{
	s->v0 += s->v1;
	s->v1 = ROTL(s->v1, 13);
	s->v1 ^= s->v0;
	s->v0 = ROTL(s->v0, 32);
	s->v2 += s->v3;
	s->v3 = ROTL(s->v3, 16);
	s->v3 ^= s->v2;
	s->v0 += s->v3;
	s->v3 = ROTL(s->v3, 21);
	s->v3 ^= s->v0;
	s->v2 += s->v1;
	s->v1 = ROTL(s->v1, 17);
	s->v1 ^= s->v2;
	s->v2 = ROTL(s->v2, 32);
}

static inline void sip_init(struct sip *s, uint64_t k0, uint64_t k1)
{
	s->v0 = k0 ^ 0x736f6d6570736575ULL;
	s->v1 = k1 ^ 0x646f72616e646f6dULL;
	s->v2 = k0 ^ 0x6c7967656e657261ULL;
	s->v3 = k1 ^ 0x7465646279746573ULL;
}

static inline void sip_word(struct sip *s, uint64_t m)
{
	s->v3 ^= m;
	sip_round(s);
	sip_round(s);
	s->v0 ^= m;
}

static inline uint64_t sip_final(struct sip *s)
{
	s->v2 ^= 0xff;
	for (int i = 0; i < 4; i++)
		sip_round(s);
	return s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
}

static inline uint64_t load_le64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

uint64_t hrw_siphash24(uint64_t k0, uint64_t k1, const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t last = (uint64_t)len << 56;
	struct sip s;
	size_t i;

	sip_init(&s, k0, k1);
	for (i = 0; i + 8 <= len; i += 8)
		sip_word(&s, load_le64(p + i));
	for (size_t j = 0; i + j < len; j++)
		last |= (uint64_t)p[i + j] << (8 * j);
	sip_word(&s, last);
	return sip_final(&s);
}

uint64_t hrw_hash(const void *data, size_t len)
{
	return hrw_siphash24(HRW_K0, HRW_K1, data, len);
}

/* SipHash-2-4 of the 16 bytes key_hash || node_hash (little-endian): a full PRF of the
 * pair, so that a node's rank for one key says nothing about its rank for another. */
uint64_t hrw_weight(uint64_t key_hash, uint64_t node_hash)
{
	struct sip s;

	sip_init(&s, HRW_K0, HRW_K1);
	sip_word(&s, key_hash);
	sip_word(&s, node_hash);
	sip_word(&s, (uint64_t)16 << 56);
	return sip_final(&s);
}

int hrw_owner_hash(const struct hrw_node *nodes, size_t n, uint64_t key_hash)
{
	uint64_t best_w = 0, best_id = 0;
	int best = -ENOENT;

	for (size_t i = 0; i < n; i++) {
		uint64_t w;

		if (!nodes[i].is_live)
			continue;
		w = hrw_weight(key_hash, nodes[i].id_hash);
		if (best < 0 || w > best_w || (w == best_w && nodes[i].id_hash > best_id)) {
			best = (int)i;
			best_w = w;
			best_id = nodes[i].id_hash;
		}
	}
	return best;
}

int hrw_owner(const struct hrw_node *nodes, size_t n, const void *key, size_t klen)
{
	return hrw_owner_hash(nodes, n, hrw_hash(key, klen));
}
