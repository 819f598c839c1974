/*
 * Hop MACs (AES-256-GMAC, see crypto/hopmac), a whole burst's frames per
 * call: AES-NI and carry-less multiplies on intel-ipsec-mb's expanded keys,
 * the library's GHASH for the middle of long frames (hopmac.c says why not
 * its GMAC calls).
 *
 * Go fills a pr_gmac_batch (C memory, one per worker) with one job per frame
 * and makes one call per burst: pr_gmac_verify for the frames received,
 * pr_gmac_sign for the frames to send. The keys are expanded once
 * (pr_gmac_key_new: IMB_AES256_GCM_PRE and the powers of H) and only read
 * afterwards, so every worker uses the same expanded key; the per-frame
 * state lives in registers and on the C stack.
 */
#ifndef POOLRELAY_DPDK_HOPMAC_H
#define POOLRELAY_DPDK_HOPMAC_H

#include <stdint.h>

/* The POOL header's layout as crypto/hopmac covers it. */
#define PR_HOP_HEADER  80  /* the POOL header */
#define PR_HOP_MAC_OFF 48  /* the 32-byte MAC field: tag, then 16 zero bytes */
#define PR_HOP_TAG     16  /* the GMAC tag */
#define PR_HOP_IV      12  /* header bytes 0..12 (ending with the seq) are the nonce */
#define PR_HOP_KEY     32  /* AES-256 */

/*
 * pr_gmac_job is one frame: data points at the POOL header (C memory: an
 * mbuf's buffer), len bytes of header and payload, key at an expanded key.
 * Pointers are integers so that Go's stores are plain stores. ok is the
 * verification's answer.
 *
 * csum, for signing, points at the frame's UDP checksum field (0: none to
 * update), whose update for everything but the new tag is held in old and
 * new (partial sums of the words replaced and of their replacements, the
 * tag's words at an even distance from the field): pr_gmac_sign adds the
 * tag's sum and stores the checksum, RFC 1624 as wire.UDPHeld.Apply does,
 * and clears csum: Go's per-frame store leaves it untouched (one store
 * less), so a job's csum is 0 unless set since the last sign (or reset).
 */
struct pr_gmac_job {
	uintptr_t data;
	uintptr_t key;
	uintptr_t csum;
	uint64_t old;
	uint64_t new;
	uint32_t len;
	uint8_t ok;
	uint8_t pad[3];
};

/* pr_gmac_batch is a worker's jobs; Go sets n before each call. */
struct pr_gmac_batch {
	uint32_t n;
	uint32_t cap;
	struct pr_gmac_job jobs[];
};

/*
 * pr_gmac_init picks intel-ipsec-mb's code path for this CPU once (later
 * calls return the first answer) and returns its IMB_ARCH; a value at or
 * below IMB_ARCH_NOAESNI means no AES-NI path, and the other calls must
 * not be made. Negative: the manager could not be allocated.
 */
int pr_gmac_init(void);
/* pr_gmac_version is the library's version string. */
const char *pr_gmac_version(void);
/* pr_gmac_key_new expands key (PR_HOP_KEY bytes); NULL when out of memory. */
void *pr_gmac_key_new(const uint8_t *key);
/* pr_gmac_key_free wipes and frees an expanded key. */
void pr_gmac_key_free(void *key);
struct pr_gmac_batch *pr_gmac_batch_new(uint32_t cap);
void pr_gmac_batch_free(struct pr_gmac_batch *b);
/*
 * pr_gmac_verify sets each job's ok to whether its frame's MAC field holds
 * the tag of the frame (with the field read as zero) and 16 zero bytes;
 * the comparison takes the same time whatever differs. The frame is left as
 * it was. Frames shorter than the header fail.
 */
void pr_gmac_verify(uintptr_t batch);
/*
 * pr_gmac_sign zeroes each frame's MAC field and writes the tag of the frame
 * into its first 16 bytes, then, for a job with a csum, the UDP checksum.
 * Jobs shorter than the header are skipped.
 */
void pr_gmac_sign(uintptr_t batch);
/*
 * pr_gmac_verify_direct and pr_gmac_sign_direct do what pr_gmac_verify and
 * pr_gmac_sign do through intel-ipsec-mb's direct GMAC calls (INIT, UPDATE,
 * FINALIZE) per frame: the benchmarks' reference and the tests' second one.
 */
void pr_gmac_verify_direct(uintptr_t batch);
void pr_gmac_sign_direct(uintptr_t batch);
/* pr_gmac_tag computes one tag over data as is through the library's
 * direct calls (tests: the NIST vectors). */
void pr_gmac_tag(const void *key, const uint8_t *iv, const uint8_t *data,
	uint64_t len, uint8_t *tag);

#endif
