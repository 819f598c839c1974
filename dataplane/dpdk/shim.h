/*
 * C side of the poolrelay DPDK binding.
 *
 * DPDK's fast-path functions (rte_eth_rx_burst, rte_eth_tx_burst, the ring
 * enqueue and dequeue calls, rte_pktmbuf_alloc_bulk) are static inline in
 * its headers, which cgo cannot call; others report failure through
 * rte_errno, a thread-local that must be read on the thread and in the call
 * that set it. The functions here are ordinary C functions (defined in
 * shim.c, compiled once) that wrap them so that Go makes exactly one cgo
 * call per operation and never per packet.
 *
 * Every function that can fail returns a negative errno (DPDK's own error
 * numbers included) and 0 or a count on success.
 */
#ifndef POOLRELAY_DPDK_SHIM_H
#define POOLRELAY_DPDK_SHIM_H

#include <stddef.h>
#include <stdint.h>

#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

/*
 * PR_BURST_MAX bounds the frames moved by one burst and so the size of every
 * array in a pr_burst. It matches the largest [dataplane] burst the
 * configuration accepts (512).
 */
#define PR_BURST_MAX 512

/*
 * pr_txbuf is one TX queue's pending frames. Go appends to pkts and bumps n
 * between cycles; pr_burst_cycle sends them and frees whatever the PMD
 * refused, or with keep set moves the refused frames to the head of pkts and
 * leaves n counting them, so that the next cycle sends them first. With
 * collect set, frames from inject are not sent but handed to Go in inj (taken
 * only once Go has taken the previous ones: n_inj is 0). The counters are
 * cumulative and written only by the cycle.
 */
struct pr_txbuf {
	uint16_t port;
	uint16_t queue;
	uint16_t n;           /* pending entries in pkts */
	uint16_t cap;         /* capacity of pkts and inj */
	uint8_t keep;         /* keep refused frames instead of freeing them */
	uint8_t collect;      /* hand inject frames to Go instead of sending them */
	uint16_t n_inj;       /* frames in inj not yet taken by Go */
	uint32_t pad0;
	struct rte_ring *inject; /* optional: frames from the control core */
	uint64_t sent;        /* accepted by the PMD */
	uint64_t unsent;      /* refused by the PMD and freed */
	uint64_t refused;     /* refused by the PMD and kept for a retry */
	uint64_t injected;    /* taken from inject */
	struct rte_mbuf **pkts;
	struct rte_mbuf **inj; /* collect only */
};

/*
 * pr_burst is one worker's I/O state: where the next RX burst comes from,
 * the frames it received, and what the worker decided for them (send on a
 * TX buffer, drop, punt to the control core). It lives in DPDK memory on the
 * worker's socket, so that Go never passes Go memory to C on the fast path.
 */
struct pr_burst {
	uint16_t rx_port;     /* set by Go before each cycle */
	uint16_t rx_queue;
	uint16_t size;        /* frames per RX burst; capacity of rx, drop, punt */
	uint16_t n_tx;        /* entries in tx */
	uint16_t n_rx;        /* frames received by the last cycle */
	uint16_t n_drop;      /* pending entries in drop */
	uint16_t n_punt;      /* pending entries in punt */
	uint16_t pad0;
	struct rte_ring *punt_ring; /* optional */
	uint64_t rx_total;    /* frames received */
	uint64_t dropped;     /* frames freed on request */
	uint64_t punted;      /* frames enqueued to punt_ring */
	uint64_t punt_full;   /* frames freed because punt_ring was full or absent */
	uint64_t tsc;         /* rte_rdtsc() at the end of the last flush */
	struct pr_txbuf *tx;
	struct rte_mbuf **rx;
	struct rte_mbuf **drop;
	struct rte_mbuf **punt;
};

/* pr_link is rte_eth_link without bitfields, which cgo cannot read. */
struct pr_link {
	uint32_t speed;
	uint8_t up;
	uint8_t full_duplex;
	uint8_t autoneg;
};

/* pr_dev_info is the part of rte_eth_dev_info the port setup needs. */
struct pr_dev_info {
	uint16_t max_rx_queues;
	uint16_t max_tx_queues;
	uint16_t min_mtu;
	uint16_t max_mtu;
	uint64_t flow_type_rss_offloads;
	char driver[64];
};

/* pr_port_setup is what pr_port_configure needs; fields may be adjusted. */
struct pr_port_setup {
	uint16_t rx_queues;
	uint16_t tx_queues;
	uint16_t rx_desc;     /* in: wanted; out: adjusted by the PMD */
	uint16_t tx_desc;
	uint64_t rss_hf;      /* already masked by flow_type_rss_offloads */
	int socket;
	struct rte_mempool *pool;
};

/* EAL */
int pr_eal_init(int argc, char **argv);
int pr_eal_cleanup(void);
const char *pr_strerror(int errnum);
int pr_first_socket(void);
int pr_thread_register(void);
void pr_thread_unregister(void);
unsigned int pr_lcore_id(void);
int pr_dev_probe(const char *devargs);
int pr_dev_remove(const char *bus, const char *name);

/* Mempools and mbufs */
struct rte_mempool *pr_pool_create(const char *name, unsigned int n,
	unsigned int cache, uint16_t data_room, int socket, int *err);
int pr_pool_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **pkts,
	unsigned int n);
void pr_free_bulk(struct rte_mbuf **pkts, unsigned int n);
void pr_free(struct rte_mbuf *m);
void pr_pool_flush_cache(struct rte_mempool *mp);

/* Rings */
struct rte_ring *pr_ring_create(const char *name, unsigned int count,
	int socket, unsigned int flags, int *err);
unsigned int pr_ring_enqueue_burst(struct rte_ring *r, struct rte_mbuf **pkts,
	unsigned int n);
unsigned int pr_ring_dequeue_burst(struct rte_ring *r, struct rte_mbuf **pkts,
	unsigned int n);
unsigned int pr_ring_count(const struct rte_ring *r);

/* Ports */
int pr_port_by_name(const char *name);
int pr_port_info(uint16_t port, struct pr_dev_info *info);
int pr_port_configure(uint16_t port, struct pr_port_setup *s);
int pr_port_start(uint16_t port);
int pr_port_stop(uint16_t port);
int pr_port_close(uint16_t port);
int pr_port_set_mtu(uint16_t port, uint16_t mtu);
int pr_port_promiscuous(uint16_t port);
int pr_port_link(uint16_t port, struct pr_link *link);
int pr_port_mac(uint16_t port, uint8_t mac[6]);
int pr_port_stats(uint16_t port, struct rte_eth_stats *st);
int pr_port_xstats_names(uint16_t port, struct rte_eth_xstat_name *names,
	unsigned int n);
int pr_port_xstats(uint16_t port, uint64_t *values, unsigned int n);

/* Bursts */
struct pr_burst *pr_burst_new(uint16_t size, uint16_t n_tx, int socket);
void pr_burst_free(struct pr_burst *b);
void pr_burst_discard(struct pr_burst *b);
uint64_t pr_tsc_hz(void);
/*
 * The per-burst calls take the burst as an integer: cgo checks every
 * pointer argument for Go memory (about 15 ns a call, measured here), and a
 * pr_burst is DPDK memory, never Go's.
 */
uint16_t pr_burst_cycle(uintptr_t burst);
void pr_burst_flush(uintptr_t burst);

/* Offsets checked against the Go constants by a test. */
size_t pr_mbuf_offset(int field);
enum {
	PR_OFF_BUF_ADDR, PR_OFF_DATA_OFF, PR_OFF_REFCNT, PR_OFF_NB_SEGS,
	PR_OFF_PORT, PR_OFF_PKT_LEN, PR_OFF_DATA_LEN, PR_OFF_BUF_LEN,
	PR_OFF_POOL, PR_OFF_NEXT, PR_SIZEOF_MBUF, PR_HEADROOM
};

#endif
