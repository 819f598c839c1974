//go:build linux && cgo

/*
 * Hop MACs through intel-ipsec-mb: see hopmac.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <intel-ipsec-mb.h>

#include "hopmac.h"

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
	IMB_MGR *m = alloc_mb_mgr(0);
	if (m == NULL)
		return -ENOMEM;
	IMB_ARCH a = IMB_ARCH_NONE;
	init_mb_mgr_auto(m, &a);
	if (imb_get_errno(m) != 0 || a <= IMB_ARCH_NOAESNI) {
		free_mb_mgr(m);
		arch = a <= IMB_ARCH_NOAESNI ? (int)a : IMB_ARCH_NONE;
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

void *pr_gmac_key_new(const uint8_t *key)
{
	/* aligned_alloc wants a multiple of the alignment. */
	size_t sz = (sizeof(struct gcm_key_data) + 63) & ~(size_t)63;
	struct gcm_key_data *k = aligned_alloc(64, sz);
	if (k == NULL)
		return NULL;
	IMB_AES256_GCM_PRE(mgr, key, k);
	return k;
}

void pr_gmac_key_free(void *key)
{
	if (key == NULL)
		return;
	explicit_bzero(key, sizeof(struct gcm_key_data));
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

static inline void gmac(const struct gcm_key_data *k, const uint8_t *f, uint32_t len, uint8_t *tag)
{
	struct gcm_context_data ctx;
	IMB_AES256_GMAC_INIT(mgr, k, &ctx, f, PR_HOP_IV);
	IMB_AES256_GMAC_UPDATE(mgr, k, &ctx, f, len);
	IMB_AES256_GMAC_FINALIZE(mgr, k, &ctx, tag, PR_HOP_TAG);
}

void pr_gmac_verify(uintptr_t batch)
{
	struct pr_gmac_batch *b = (struct pr_gmac_batch *)batch;
	uint32_t n = b->n < b->cap ? b->n : b->cap;
	for (uint32_t i = 0; i < n; i++) {
		struct pr_gmac_job *j = &b->jobs[i];
		uint8_t *f = (uint8_t *)j->data;
		j->ok = 0;
		if (j->len < PR_HOP_HEADER)
			continue;
		if (i + 1 < n)
			__builtin_prefetch((const void *)b->jobs[i + 1].data);
		uint64_t got[2], pad[2], tag[2];
		memcpy(got, f + PR_HOP_MAC_OFF, 16);
		memcpy(pad, f + PR_HOP_MAC_OFF + PR_HOP_TAG, 16);
		memset(f + PR_HOP_MAC_OFF, 0, 16);
		gmac((const struct gcm_key_data *)j->key, f, j->len, (uint8_t *)tag);
		memcpy(f + PR_HOP_MAC_OFF, got, 16);
		/* No early exit: the time does not depend on where they differ. */
		uint64_t diff = (got[0] ^ tag[0]) | (got[1] ^ tag[1]) | pad[0] | pad[1];
		j->ok = diff == 0;
	}
}

void pr_gmac_sign(uintptr_t batch)
{
	struct pr_gmac_batch *b = (struct pr_gmac_batch *)batch;
	uint32_t n = b->n < b->cap ? b->n : b->cap;
	for (uint32_t i = 0; i < n; i++) {
		struct pr_gmac_job *j = &b->jobs[i];
		uint8_t *f = (uint8_t *)j->data;
		if (j->len < PR_HOP_HEADER)
			continue;
		if (i + 1 < n)
			__builtin_prefetch((const void *)b->jobs[i + 1].data);
		memset(f + PR_HOP_MAC_OFF, 0, 32);
		uint64_t tag[2];
		gmac((const struct gcm_key_data *)j->key, f, j->len, (uint8_t *)tag);
		memcpy(f + PR_HOP_MAC_OFF, tag, 16);
	}
}

void pr_gmac_tag(const void *key, const uint8_t *iv, const uint8_t *data, uint64_t len, uint8_t *tag)
{
	struct gcm_context_data ctx;
	const struct gcm_key_data *k = key;
	IMB_AES256_GMAC_INIT(mgr, k, &ctx, iv, PR_HOP_IV);
	IMB_AES256_GMAC_UPDATE(mgr, k, &ctx, data, len);
	IMB_AES256_GMAC_FINALIZE(mgr, k, &ctx, tag, PR_HOP_TAG);
}
