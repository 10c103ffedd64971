/* Unit tests for user/hrw.c: SipHash test vectors, balance over 100k keys for 3..64 nodes,
 * minimal movement on join and leave, order independence; prints the cost per lookup
 * next to a SHA-256 variant, the alternative we measured it against. */
#include "unit.h"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>

#include "hrw.h"

#define NKEYS 100000
#define NODES_MAX 65

static struct hrw_node nodes[NODES_MAX];
static char names[NODES_MAX][32];

static void make_nodes(size_t n)
{
	for (size_t i = 0; i < n; i++) {
		snprintf(names[i], sizeof(names[i]), "10.0.%zu.%zu:8081", i / 200, 10 + i % 200);
		nodes[i].id_hash = hrw_hash(names[i], strlen(names[i]));
		nodes[i].is_live = true;
	}
}

static int owner_of(size_t n, unsigned k)
{
	char key[64];
	int len = snprintf(key, sizeof(key), "bucket-%u\nimages/2026/%08u.jpg\n", k % 7, k);

	return hrw_owner(nodes, n, key, (size_t)len);
}

static void test_siphash_vectors(void)
{
	const uint64_t k0 = 0x0706050403020100ULL, k1 = 0x0f0e0d0c0b0a0908ULL;
	unsigned char m[16];

	for (int i = 0; i < 16; i++)
		m[i] = (unsigned char)i;
	/* from the SipHash paper's reference vectors (key 00..0f, message 00..len-1) */
	CU_ASSERT_EQUAL(hrw_siphash24(k0, k1, m, 0), 0x726fdb47dd0e0e31ULL);
	CU_ASSERT_EQUAL(hrw_siphash24(k0, k1, m, 8), 0x93f5f5799a932462ULL);
	CU_ASSERT_EQUAL(hrw_siphash24(k0, k1, m, 15), 0xa129ca6149be45e5ULL);
}

static void test_balance(void)
{
	static const size_t sizes[] = {3, 4, 5, 7, 8, 12, 16, 24, 32, 48, 64};

	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t n = sizes[s], count[NODES_MAX] = {0};
		double expect = (double)NKEYS / (double)n, worst = 0;

		make_nodes(n);
		for (unsigned k = 0; k < NKEYS; k++) {
			int o = owner_of(n, k);

			CU_ASSERT_FATAL(o >= 0 && (size_t)o < n);
			count[o]++;
		}
		for (size_t i = 0; i < n; i++) {
			double dev = ((double)count[i] - expect) / expect;

			if (dev < 0)
				dev = -dev;
			if (dev > worst)
				worst = dev;
		}
		printf("\n    %2zu nodes: worst deviation %.1f%%", n, worst * 100);
		CU_ASSERT(worst <= 0.10);
	}
}

/* Node n joins a cluster of n: only keys the newcomer wins move, about 1/(n+1) of them. */
static void test_join_moves_minimum(void)
{
	static const size_t sizes[] = {3, 8, 16, 63};
	static int before[NKEYS];

	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t n = sizes[s], moved = 0;
		double share;

		make_nodes(n + 1);
		for (unsigned k = 0; k < NKEYS; k++)
			before[k] = owner_of(n, k);
		for (unsigned k = 0; k < NKEYS; k++) {
			int o = owner_of(n + 1, k);

			if (o != before[k]) {
				CU_ASSERT_EQUAL(o, (int)n);
				moved++;
			}
		}
		share = (double)moved / NKEYS * (double)(n + 1);
		printf("\n    join %zu -> %zu: %zu keys moved (%.2f of 1/n)", n, n + 1, moved,
		       share);
		CU_ASSERT(share > 0.9 && share < 1.1);
	}
}

/* A node leaves (or goes down): only its own keys move, spread over the others. */
static void test_leave_moves_minimum(void)
{
	static const size_t sizes[] = {3, 8, 16, 64};
	static int before[NKEYS];

	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t n = sizes[s], moved = 0, gone = n / 2, got[NODES_MAX] = {0};

		make_nodes(n);
		for (unsigned k = 0; k < NKEYS; k++)
			before[k] = owner_of(n, k);
		nodes[gone].is_live = false;
		for (unsigned k = 0; k < NKEYS; k++) {
			int o = owner_of(n, k);

			CU_ASSERT_NOT_EQUAL(o, (int)gone);
			if (o != before[k]) {
				CU_ASSERT_EQUAL(before[k], (int)gone);
				got[o]++;
				moved++;
			} else {
				CU_ASSERT_NOT_EQUAL(before[k], (int)gone);
			}
		}
		/* the orphans spread evenly: no survivor takes more than twice its share */
		for (size_t i = 0; i < n; i++)
			CU_ASSERT(got[i] <= 2 * moved / (n - 1) + 20);
		CU_ASSERT(moved > 0.9 * NKEYS / n && moved < 1.1 * NKEYS / n);
	}
}

static void test_order_and_empty(void)
{
	struct hrw_node rev[8];
	const char *key = "bkt\nkey\n";

	make_nodes(8);
	for (int i = 0; i < 8; i++)
		rev[i] = nodes[7 - i];
	for (unsigned k = 0; k < 1000; k++) {
		int a = owner_of(8, k), b;
		char buf[64];
		int len = snprintf(buf, sizeof(buf), "bucket-%u\nimages/2026/%08u.jpg\n", k % 7, k);

		b = hrw_owner(rev, 8, buf, (size_t)len);
		CU_ASSERT_EQUAL(rev[b].id_hash, nodes[a].id_hash);
	}
	for (int i = 0; i < 8; i++)
		nodes[i].is_live = false;
	CU_ASSERT_EQUAL(hrw_owner(nodes, 8, key, strlen(key)), -ENOENT);
	CU_ASSERT_EQUAL(hrw_owner(nodes, 0, key, strlen(key)), -ENOENT);
	nodes[5].is_live = true;
	CU_ASSERT_EQUAL(hrw_owner(nodes, 8, key, strlen(key)), 5);
	CU_ASSERT_EQUAL(hrw_owner_hash(nodes, 8, hrw_hash(key, strlen(key))), 5);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The alternative: SHA-256(key || node name) truncated to 64 bits, per node. */
static int sha_owner(size_t n, const char *key, size_t klen)
{
	uint64_t best_w = 0;
	int best = -1;

	for (size_t i = 0; i < n; i++) {
		unsigned char md[SHA256_DIGEST_LENGTH], buf[256];
		size_t nlen = strlen(names[i]);
		uint64_t w;

		memcpy(buf, key, klen);
		memcpy(buf + klen, names[i], nlen);
		SHA256(buf, klen + nlen, md);
		memcpy(&w, md, sizeof(w));
		if (best < 0 || w > best_w) {
			best = (int)i;
			best_w = w;
		}
	}
	return best;
}

static void test_cost(void)
{
	const char *key = "a-bucket-name\nsome/longer/prefix/of/an/object/key/part-00042.parquet\n";
	const int rounds = 20000;
	volatile int sink = 0;
	double t0, t1, t2;

	make_nodes(64);
	t0 = now_s();
	for (int i = 0; i < rounds; i++)
		sink += hrw_owner(nodes, 64, key, strlen(key) - (size_t)(i & 7));
	t1 = now_s();
	for (int i = 0; i < rounds; i++)
		sink += sha_owner(64, key, strlen(key) - (size_t)(i & 7));
	t2 = now_s();
	printf("\n    64 nodes: SipHash %.2f us per lookup, SHA-256 %.2f us",
	       (t1 - t0) / rounds * 1e6, (t2 - t1) / rounds * 1e6);
	CU_ASSERT(sink != 1);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"SipHash-2-4 reference vectors", test_siphash_vectors},
	    {"balance within 10% for 3..64 nodes", test_balance},
	    {"join moves only the newcomer's keys", test_join_moves_minimum},
	    {"leave moves only the leaver's keys", test_leave_moves_minimum},
	    {"order independence, no live node", test_order_and_empty},
	    {"cost per lookup", test_cost},
	};

	return UNIT_RUN("hrw", NULL, NULL, tests);
}
