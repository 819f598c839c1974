//go:build linux && cgo

/*
 * Hop MACs (AES-256-GMAC): see hopmac.h.
 *
 * A hop MAC is GMAC with the frame as the additional data: the tag is
 * E_K(J0) xor GHASH_H(frame, zero-padded, then the length block), with
 * H = E_K(0) and J0 the 12-byte nonce (header bytes 0..12) followed by
 * 00000001. intel-ipsec-mb's direct calls (GMAC_INIT, UPDATE, FINALIZE)
 * cost 30-40 ns a frame at 128 B here, mostly fixed costs of the three
 * calls and a dependent chain through the J0 encryption; the frames of a
 * hop are short and the MAC field sits at a block boundary, so the short
 * case is computed here instead, from the library's expanded key
 * (IMB_AES256_GCM_PRE's round keys):
 *
 *   - GHASH with aggregated reduction: the blocks of a frame are multiplied
 *     by H^n .. H^1 (powers precomputed per key) and summed unreduced, one
 *     reduction per frame (per PR_POW blocks);
 *   - the MAC field's two blocks (bytes 48..80) are zero in the GHASH
 *     input, so they are skipped: verification reads the frame and never
 *     writes it, signing writes the field once, at the end;
 *   - E_K(J0) with AES-NI, independent of the GHASH chain.
 *
 * Long frames (more than PR_POW blocks) hash their middle through the
 * library's GHASH (IMB_GHASH, its wide-vector code), only the first three
 * blocks, the tail and the length block here.
 *
 * Field elements are kept byte-reflected (a pshufb from the wire's byte
 * order): the carry-less product of two reflected elements is the
 * reflected product shifted right by one bit, which reduce() shifts back
 * before reducing modulo x^128 + x^7 + x^2 + x + 1 (Gueron and Kounavis,
 * "Intel Carry-Less Multiplication Instruction and its Usage for
 * Computing the GCM Mode", algorithms 2 and 4). The shift and the
 * reduction are linear, so they apply once to a sum of products.
 *
 * The differential tests and the fuzz target compare every tag with
 * crypto/hopmac (Go's GCM) and with the library's direct calls.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <immintrin.h>
#include <intel-ipsec-mb.h>

#include "hopmac.h"

/* PR_POW is the number of powers of H per key: frames up to PR_POW - 1
 * blocks (240 bytes) take one reduction. */
#define PR_POW 16

/* The functions using AES-NI and PCLMULQDQ; pr_gmac_init checks the CPU
 * has them before any runs. */
#define PR_SIMD __attribute__((target("aes,pclmul,ssse3,sse4.1")))

/*
 * pr_gmac_key is an expanded hop key: the library's (round keys, and its
 * GHASH tables for IMB_GHASH) and the powers of H in the reflected order,
 * with the xor of each power's halves for Karatsuba's middle product.
 */
struct pr_gmac_key {
	struct gcm_key_data imb;
	__m128i h[PR_POW];  /* h[i] = H^(i+1) */
	__m128i hk[PR_POW]; /* both halves: hi(h[i]) ^ lo(h[i]) */
};

/*
 * The manager only dispatches the direct calls to the code path chosen for
 * the CPU; it holds no per-call state, so all workers share it read-only
 * once pr_gmac_init has set it up.
 */
static IMB_MGR *mgr;
static int arch = -1;

int pr_gmac_init(void)
{
	if (arch >= 0)
		return arch;
	__builtin_cpu_init();
	int simd = __builtin_cpu_supports("aes") && __builtin_cpu_supports("pclmul") &&
		__builtin_cpu_supports("ssse3") && __builtin_cpu_supports("sse4.1");
	IMB_MGR *m = alloc_mb_mgr(0);
	if (m == NULL)
		return -ENOMEM;
	IMB_ARCH a = IMB_ARCH_NONE;
	init_mb_mgr_auto(m, &a);
	if (imb_get_errno(m) != 0 || a <= IMB_ARCH_NOAESNI || !simd) {
		free_mb_mgr(m);
		arch = a <= IMB_ARCH_NOAESNI ? (int)a : IMB_ARCH_NOAESNI;
		return arch;
	}
	mgr = m;
	arch = a;
	return arch;
}

const char *pr_gmac_version(void)
{
	return imb_get_version_str();
}

PR_SIMD static inline __m128i bswap128(__m128i x)
{
	return _mm_shuffle_epi8(x, _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
}

/*
 * reduce takes the 256-bit carry-less product of reflected elements, as
 * its low and high 128 bits and the (not yet folded) middle term, shifts
 * it left by one bit and reduces it to a reflected element.
 */
PR_SIMD static inline __m128i reduce(__m128i lo, __m128i mid, __m128i hi)
{
	lo = _mm_xor_si128(lo, _mm_slli_si128(mid, 8));
	hi = _mm_xor_si128(hi, _mm_srli_si128(mid, 8));
	/* hi:lo <<= 1 */
	__m128i c0 = _mm_srli_epi32(lo, 31), c1 = _mm_srli_epi32(hi, 31);
	lo = _mm_slli_epi32(lo, 1);
	hi = _mm_slli_epi32(hi, 1);
	__m128i top = _mm_srli_si128(c0, 12);
	c1 = _mm_slli_si128(c1, 4);
	c0 = _mm_slli_si128(c0, 4);
	lo = _mm_or_si128(lo, c0);
	hi = _mm_or_si128(_mm_or_si128(hi, c1), top);
	/* fold lo into hi modulo the polynomial */
	__m128i a = _mm_xor_si128(_mm_xor_si128(_mm_slli_epi32(lo, 31), _mm_slli_epi32(lo, 30)), _mm_slli_epi32(lo, 25));
	__m128i b = _mm_srli_si128(a, 4);
	lo = _mm_xor_si128(lo, _mm_slli_si128(a, 12));
	__m128i d = _mm_xor_si128(_mm_xor_si128(_mm_srli_epi32(lo, 1), _mm_srli_epi32(lo, 2)),
		_mm_xor_si128(_mm_srli_epi32(lo, 7), b));
	return _mm_xor_si128(hi, _mm_xor_si128(lo, d));
}

/* acc is a sum of unreduced products. */
struct acc {
	__m128i lo, mid, hi;
};

PR_SIMD static inline void acc_zero(struct acc *s)
{
	s->lo = s->mid = s->hi = _mm_setzero_si128();
}

/* acc_mul adds x * k->h[p] (x reflected), Karatsuba: three multiplies. */
PR_SIMD static inline void acc_mul(struct acc *s, __m128i x, const struct pr_gmac_key *k, int p)
{
	__m128i h = k->h[p];
	s->lo = _mm_xor_si128(s->lo, _mm_clmulepi64_si128(x, h, 0x00));
	s->hi = _mm_xor_si128(s->hi, _mm_clmulepi64_si128(x, h, 0x11));
	s->mid = _mm_xor_si128(s->mid, _mm_clmulepi64_si128(_mm_xor_si128(x, _mm_shuffle_epi32(x, 0x4e)), k->hk[p], 0x00));
}

PR_SIMD static inline __m128i acc_reduce(const struct acc *s)
{
	return reduce(s->lo, _mm_xor_si128(s->mid, _mm_xor_si128(s->lo, s->hi)), s->hi);
}

/* load reads block i of f, reflected. */
PR_SIMD static inline __m128i load(const uint8_t *f, uint32_t i)
{
	return bswap128(_mm_loadu_si128((const __m128i *)(f + 16 * i)));
}

/* tail_mask[16 - r ..] moves the last r bytes of a 16-byte load to its
 * front and zeroes the rest (pshufb). */
static const uint8_t tail_mask[32] = {
	0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
	0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
};

/*
 * tag_of returns the tag of the len bytes at f (len >= PR_HOP_HEADER) with
 * the MAC field (blocks 3 and 4) read as zero, whatever it holds.
 */
PR_SIMD static inline __m128i tag_of(const struct pr_gmac_key *k, const uint8_t *f, uint32_t len)
{
	const __m128i *rk = (const __m128i *)k->imb.expanded_keys;
	/* E_K(J0) first: its chain of rounds runs beside the GHASH's. */
	__m128i j0 = _mm_insert_epi32(_mm_loadu_si128((const __m128i *)f), 0x01000000, 3);
	__m128i e = _mm_xor_si128(j0, _mm_loadu_si128(rk));
	for (int r = 1; r < 14; r++)
		e = _mm_aesenc_si128(e, _mm_loadu_si128(rk + r));
	e = _mm_aesenclast_si128(e, _mm_loadu_si128(rk + 14));

	uint32_t full = len / 16, rem = len % 16;
	uint32_t total = full + (rem != 0) + 1; /* with the length block */
	/* The last rem bytes as a zero-padded block: a load ending at the
	 * frame's end, shifted (len >= 16). */
	__m128i tail = bswap128(_mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(f + len - 16)),
		_mm_loadu_si128((const __m128i *)(tail_mask + 16 - rem))));
	__m128i lenb = bswap128(_mm_set_epi64x(0, (long long)__builtin_bswap64((uint64_t)len * 8)));
	struct acc s;
	acc_zero(&s);
	__m128i y;
	if (total <= PR_POW) {
		/* Block i is multiplied by H^(total - i), i.e. h[total-1-i]. */
		acc_mul(&s, load(f, 0), k, total - 1);
		acc_mul(&s, load(f, 1), k, total - 2);
		acc_mul(&s, load(f, 2), k, total - 3);
		for (uint32_t i = 5; i < full; i++)
			acc_mul(&s, load(f, i), k, total - 1 - i);
		if (rem != 0)
			acc_mul(&s, tail, k, 1);
		acc_mul(&s, lenb, k, 0);
		y = acc_reduce(&s);
	} else {
		/* The state after block 4: blocks 0..2, then two zero blocks. */
		acc_mul(&s, load(f, 0), k, 4);
		acc_mul(&s, load(f, 1), k, 3);
		acc_mul(&s, load(f, 2), k, 2);
		y = acc_reduce(&s);
		/* Blocks 5 .. full-1 through the library, which takes and
		 * returns the state in the wire's byte order. */
		uint8_t io[16] __attribute__((aligned(16)));
		_mm_store_si128((__m128i *)io, bswap128(y));
		IMB_GHASH(mgr, &k->imb, f + 5 * 16, (uint64_t)(full - 5) * 16, io, sizeof(io));
		y = bswap128(_mm_load_si128((const __m128i *)io));
		acc_zero(&s);
		if (rem != 0) {
			acc_mul(&s, _mm_xor_si128(y, tail), k, 1);
			acc_mul(&s, lenb, k, 0);
		} else {
			acc_mul(&s, _mm_xor_si128(y, lenb), k, 0);
		}
		y = acc_reduce(&s);
	}
	return _mm_xor_si128(bswap128(y), e);
}

PR_SIMD static void key_powers(struct pr_gmac_key *k)
{
	const __m128i *rk = (const __m128i *)k->imb.expanded_keys;
	__m128i e = _mm_loadu_si128(rk); /* 0 ^ round key 0 */
	for (int r = 1; r < 14; r++)
		e = _mm_aesenc_si128(e, _mm_loadu_si128(rk + r));
	__m128i h = bswap128(_mm_aesenclast_si128(e, _mm_loadu_si128(rk + 14)));
	for (int i = 0; i < PR_POW; i++) {
		if (i > 0) {
			/* acc_mul reads hk[i-1], set in the round before. */
			struct acc s;
			acc_zero(&s);
			acc_mul(&s, h, k, i - 1);
			k->h[i] = acc_reduce(&s);
		} else {
			k->h[0] = h;
		}
		k->hk[i] = _mm_xor_si128(k->h[i], _mm_shuffle_epi32(k->h[i], 0x4e));
	}
}

void *pr_gmac_key_new(const uint8_t *key)
{
	/* aligned_alloc wants a multiple of the alignment. */
	size_t sz = (sizeof(struct pr_gmac_key) + 63) & ~(size_t)63;
	struct pr_gmac_key *k = aligned_alloc(64, sz);
	if (k == NULL)
		return NULL;
	memset(k, 0, sz);
	IMB_AES256_GCM_PRE(mgr, key, &k->imb);
	key_powers(k);
	return k;
}

void pr_gmac_key_free(void *key)
{
	if (key == NULL)
		return;
	explicit_bzero(key, sizeof(struct pr_gmac_key));
	free(key);
}

struct pr_gmac_batch *pr_gmac_batch_new(uint32_t cap)
{
	struct pr_gmac_batch *b = calloc(1, sizeof(*b) + (size_t)cap * sizeof(b->jobs[0]));
	if (b != NULL)
		b->cap = cap;
	return b;
}

void pr_gmac_batch_free(struct pr_gmac_batch *b)
{
	free(b);
}

/*
 * prefetch_frame asks for every cache line of a job's frame, the next
 * one's while this one is hashed: a frame the PMD wrote is not in the
 * cache, and a long frame's lines, read in order only once its hashing
 * starts, each waited for memory (the library's GHASH was 40% of a
 * relayed 1500-byte frame in the data-plane benchmark). At most a 2 KB
 * buffer's lines.
 */
static inline void prefetch_frame(const struct pr_gmac_job *j)
{
	const uint8_t *p = (const uint8_t *)j->data;
	uint32_t n = j->len < 2048 ? j->len : 2048;
	for (uint32_t o = 0; o < n; o += 64)
		__builtin_prefetch(p + o);
}

PR_SIMD void pr_gmac_verify(uintptr_t batch)
{
	struct pr_gmac_batch *b = (struct pr_gmac_batch *)batch;
	uint32_t n = b->n < b->cap ? b->n : b->cap;
	for (uint32_t i = 0; i < n; i++) {
		struct pr_gmac_job *j = &b->jobs[i];
		const uint8_t *f = (const uint8_t *)j->data;
		j->ok = 0;
		if (j->len < PR_HOP_HEADER)
			continue;
		if (i + 1 < n)
			prefetch_frame(&b->jobs[i + 1]);
		__m128i tag = tag_of((const struct pr_gmac_key *)j->key, f, j->len);
		__m128i got = _mm_loadu_si128((const __m128i *)(f + PR_HOP_MAC_OFF));
		__m128i pad = _mm_loadu_si128((const __m128i *)(f + PR_HOP_MAC_OFF + PR_HOP_TAG));
		/* One test of all 32 bytes: the time does not depend on where
		 * they differ. */
		__m128i diff = _mm_or_si128(_mm_xor_si128(got, tag), pad);
		j->ok = (uint8_t)_mm_testz_si128(diff, diff);
	}
}

/*
 * sum16 is the ones' complement partial sum of 16 bytes as big-endian
 * 16-bit words (two 32-bit halves of each 8, congruent modulo 0xffff),
 * relay's sum16.
 */
static inline uint64_t sum16(const uint8_t *p)
{
	uint64_t a, b;
	memcpy(&a, p, 8);
	memcpy(&b, p + 8, 8);
	a = __builtin_bswap64(a);
	b = __builtin_bswap64(b);
	return (a >> 32) + (a & 0xffffffff) + (b >> 32) + (b & 0xffffffff);
}

/*
 * udp_update stores the UDP checksum at c after words summing to old were
 * replaced by words summing to new: RFC 1624's HC' = ~(~HC + ~m + m'), the
 * complement of old taken as a multiple of 0xffff minus old, folded once;
 * zero is stored as 0xffff (zero means no checksum). wire.UDPHeld.Apply's
 * arithmetic; the relay's tests compare the bytes with it.
 */
static inline void udp_update(uint8_t *c, uint64_t old, uint64_t new)
{
	uint16_t hc = (uint16_t)(c[0] << 8 | c[1]);
	uint64_t x = (uint64_t)(uint16_t)~hc + (0xffffULL << 40) - old + new;
	x = (x & 0xffffffff) + (x >> 32);
	x = (x & 0xffffffff) + (x >> 32);
	x = (x & 0xffff) + (x >> 16);
	x = (x & 0xffff) + (x >> 16);
	uint16_t v = (uint16_t)~x;
	if (v == 0)
		v = 0xffff;
	c[0] = (uint8_t)(v >> 8);
	c[1] = (uint8_t)v;
}

PR_SIMD void pr_gmac_sign(uintptr_t batch)
{
	struct pr_gmac_batch *b = (struct pr_gmac_batch *)batch;
	uint32_t n = b->n < b->cap ? b->n : b->cap;
	for (uint32_t i = 0; i < n; i++) {
		struct pr_gmac_job *j = &b->jobs[i];
		uint8_t *f = (uint8_t *)j->data;
		if (j->len < PR_HOP_HEADER)
			continue;
		if (i + 1 < n)
			prefetch_frame(&b->jobs[i + 1]);
		__m128i tag = tag_of((const struct pr_gmac_key *)j->key, f, j->len);
		_mm_storeu_si128((__m128i *)(f + PR_HOP_MAC_OFF), tag);
		_mm_storeu_si128((__m128i *)(f + PR_HOP_MAC_OFF + PR_HOP_TAG), _mm_setzero_si128());
		if (j->csum != 0) {
			udp_update((uint8_t *)j->csum, j->old, j->new + sum16(f + PR_HOP_MAC_OFF));
			j->csum = 0; /* Go's Add leaves it as it finds it */
		}
	}
}

/*
 * The library's direct calls, per frame (what pr_gmac_sign did before
 * tag_of): the benchmarks' in-run reference and the tests' second one.
 */
static inline void direct_tag(const struct gcm_key_data *k, const uint8_t *iv, const uint8_t *data, uint64_t len, uint8_t *tag)
{
	struct gcm_context_data ctx;
	IMB_AES256_GMAC_INIT(mgr, k, &ctx, iv, PR_HOP_IV);
	IMB_AES256_GMAC_UPDATE(mgr, k, &ctx, data, len);
	IMB_AES256_GMAC_FINALIZE(mgr, k, &ctx, tag, PR_HOP_TAG);
}

static void sign_direct(struct pr_gmac_job *j, uint8_t *f)
{
	memset(f + PR_HOP_MAC_OFF, 0, 32);
	uint8_t tag[PR_HOP_TAG];
	direct_tag(&((const struct pr_gmac_key *)j->key)->imb, f, f, j->len, tag);
	memcpy(f + PR_HOP_MAC_OFF, tag, sizeof(tag));
}

static void verify_direct(struct pr_gmac_job *j, uint8_t *f)
{
	uint64_t got[2], pad[2], tag[2];
	memcpy(got, f + PR_HOP_MAC_OFF, 16);
	memcpy(pad, f + PR_HOP_MAC_OFF + PR_HOP_TAG, 16);
	memset(f + PR_HOP_MAC_OFF, 0, 16);
	direct_tag(&((const struct pr_gmac_key *)j->key)->imb, f, f, j->len, (uint8_t *)tag);
	memcpy(f + PR_HOP_MAC_OFF, got, 16);
	uint64_t diff = (got[0] ^ tag[0]) | (got[1] ^ tag[1]) | pad[0] | pad[1];
	j->ok = diff == 0;
}

/* each_direct runs fn on every job of the batch long enough to carry a
 * POOL header; a shorter one is left alone (ok stays 0). */
static void each_direct(uintptr_t batch, void (*fn)(struct pr_gmac_job *, uint8_t *))
{
	struct pr_gmac_batch *b = (struct pr_gmac_batch *)batch;
	uint32_t n = b->n < b->cap ? b->n : b->cap;
	for (uint32_t i = 0; i < n; i++) {
		struct pr_gmac_job *j = &b->jobs[i];
		j->ok = 0;
		if (j->len >= PR_HOP_HEADER)
			fn(j, (uint8_t *)j->data);
	}
}

void pr_gmac_sign_direct(uintptr_t batch) { each_direct(batch, sign_direct); }

void pr_gmac_verify_direct(uintptr_t batch) { each_direct(batch, verify_direct); }

void pr_gmac_tag(const void *key, const uint8_t *iv, const uint8_t *data, uint64_t len, uint8_t *tag)
{
	direct_tag(&((const struct pr_gmac_key *)key)->imb, iv, data, len, tag);
}
