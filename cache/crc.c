/* CRC-32 (zlib's polynomial, the one S3's x-amz-checksum-crc32 uses) of cached bytes.
 * Verification reads whole chunks before they are served, so its speed matters: on CPUs
 * with PCLMULQDQ the bulk is folded 64 bytes at a time with carry-less multiplies (the
 * method of Intel's "Fast CRC Computation for Generic Polynomials Using PCLMULQDQ",
 * 2009), about 4x zlib 1.2.13's crc32 here; zlib does the rest and the CPUs without it.
 * The result is bit for bit zlib's crc32().
 */
#include <zlib.h>

#include "cache-int.h"

#if defined(__x86_64__)
#include <immintrin.h>

/* Folding constants for the bit-reflected polynomial 0xedb88320: x^(4*128+32) and
 * x^(4*128-32) mod P (fold by 4), x^(128+32) and x^(128-32) (fold by 1), x^64 (the last
 * 64-bit fold), and Barrett's mu and P for the final reduction, each bit-reflected. */
#define K1 0x154442bd4ULL
#define K2 0x1c6e41596ULL
#define K3 0x1751997d0ULL
#define K4 0x0ccaa009eULL
#define K5 0x163cd6124ULL
#define POLY 0x1db710641ULL
#define MU 0x1f7011641ULL

__attribute__((target("pclmul,sse4.1"))) static __m128i fold(__m128i x, __m128i k)
{
	return _mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11));
}

/* Reduces the 128-bit remainder x to the 32-bit CRC register. */
__attribute__((target("pclmul,sse4.1"))) static uint32_t reduce(__m128i x)
{
	const __m128i k43 = _mm_set_epi64x((long long)K4, (long long)K3);
	const __m128i k5 = _mm_set_epi64x(0, (long long)K5);
	const __m128i pmu = _mm_set_epi64x((long long)MU, (long long)POLY);
	const __m128i mask32 = _mm_set_epi32(0, 0, 0, -1);
	__m128i t;

	x = _mm_xor_si128(_mm_clmulepi64_si128(k43, x, 0x01), _mm_srli_si128(x, 8));
	t = _mm_srli_si128(x, 4);
	x = _mm_xor_si128(_mm_clmulepi64_si128(_mm_and_si128(x, mask32), k5, 0x00), t);
	t = x;
	x = _mm_clmulepi64_si128(_mm_and_si128(x, mask32), pmu, 0x10);
	x = _mm_clmulepi64_si128(_mm_and_si128(x, mask32), pmu, 0x00);
	return (uint32_t)_mm_extract_epi32(_mm_xor_si128(x, t), 1);
}

/* The CRC register (not inverted) after len bytes, len >= 64 and a multiple of 16. */
__attribute__((target("pclmul,sse4.1"))) static uint32_t crc_fold(uint32_t reg, const uint8_t *p,
								  size_t len)
{
	const __m128i k21 = _mm_set_epi64x((long long)K2, (long long)K1);
	const __m128i k43 = _mm_set_epi64x((long long)K4, (long long)K3);
	__m128i x0 = _mm_loadu_si128((const __m128i *)p), x1, x2, x3;

	x0 = _mm_xor_si128(x0, _mm_cvtsi32_si128((int)reg));
	x1 = _mm_loadu_si128((const __m128i *)(p + 16));
	x2 = _mm_loadu_si128((const __m128i *)(p + 32));
	x3 = _mm_loadu_si128((const __m128i *)(p + 48));
	for (p += 64, len -= 64; len >= 64; p += 64, len -= 64) {
		x0 = _mm_xor_si128(fold(x0, k21), _mm_loadu_si128((const __m128i *)p));
		x1 = _mm_xor_si128(fold(x1, k21), _mm_loadu_si128((const __m128i *)(p + 16)));
		x2 = _mm_xor_si128(fold(x2, k21), _mm_loadu_si128((const __m128i *)(p + 32)));
		x3 = _mm_xor_si128(fold(x3, k21), _mm_loadu_si128((const __m128i *)(p + 48)));
	}
	x0 = _mm_xor_si128(fold(x0, k43), x1);
	x0 = _mm_xor_si128(fold(x0, k43), x2);
	x0 = _mm_xor_si128(fold(x0, k43), x3);
	for (; len >= 16; p += 16, len -= 16)
		x0 = _mm_xor_si128(fold(x0, k43), _mm_loadu_si128((const __m128i *)p));
	return reduce(x0);
}

static bool has_pclmul(void)
{
	static int known; /* 0: not asked yet, 1: no, 2: yes; racing askers agree */
	int k = __atomic_load_n(&known, __ATOMIC_RELAXED);

	if (!k) {
		__builtin_cpu_init();
		k = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1") ? 2 : 1;
		__atomic_store_n(&known, k, __ATOMIC_RELAXED);
	}
	return k == 2;
}

uint32_t crc_update(uint32_t crc, const void *buf, size_t len)
{
	size_t bulk = len & ~(size_t)15;

	if (len < 64 || !has_pclmul())
		return (uint32_t)crc32_z(crc, buf, len);
	crc = ~crc_fold(~crc, buf, bulk);
	return (uint32_t)crc32_z(crc, (const uint8_t *)buf + bulk, len - bulk);
}
#else
uint32_t crc_update(uint32_t crc, const void *buf, size_t len)
{
	return (uint32_t)crc32_z(crc, buf, len);
}
#endif
