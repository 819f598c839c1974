//go:build linux && cgo

/*
 * Ordinary C functions wrapping DPDK for the Go binding: see shim.h for why
 * they exist and their error convention.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_dev.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mempool.h>

#include "shim.h"

/* Errors: a DPDK call that returned -1 reports through rte_errno. */
static int neg_errno(void)
{
	return rte_errno > 0 ? -rte_errno : -EIO;
}

int pr_eal_init(int argc, char **argv)
{
	int r = rte_eal_init(argc, argv);
	return r < 0 ? neg_errno() : r;
}

int pr_eal_cleanup(void)
{
	return rte_eal_cleanup();
}

const char *pr_strerror(int errnum)
{
	return rte_strerror(errnum < 0 ? -errnum : errnum);
}

int pr_first_socket(void)
{
	int s = rte_socket_id_by_idx(0);
	return s < 0 ? 0 : s;
}

int pr_thread_register(void)
{
	return rte_thread_register() < 0 ? neg_errno() : 0;
}

void pr_thread_unregister(void)
{
	rte_thread_unregister();
}

unsigned int pr_lcore_id(void)
{
	return rte_lcore_id();
}

int pr_dev_probe(const char *devargs)
{
	return rte_dev_probe(devargs);
}

int pr_dev_remove(const char *bus, const char *name)
{
	return rte_eal_hotplug_remove(bus, name);
}

/* Mempools and mbufs */

struct rte_mempool *pr_pool_create(const char *name, unsigned int n,
	unsigned int cache, uint16_t data_room, int socket, int *err)
{
	struct rte_mempool *mp = rte_pktmbuf_pool_create(name, n, cache, 0,
		data_room, socket);
	*err = mp == NULL ? neg_errno() : 0;
	return mp;
}

int pr_pool_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **pkts,
	unsigned int n)
{
	return rte_pktmbuf_alloc_bulk(mp, pkts, n);
}

void pr_free_bulk(struct rte_mbuf **pkts, unsigned int n)
{
	rte_pktmbuf_free_bulk(pkts, n);
}

void pr_free(struct rte_mbuf *m)
{
	rte_pktmbuf_free(m);
}

/*
 * pr_pool_flush_cache returns the calling lcore's cached mbufs of mp to the
 * pool, so that they are not stranded when the thread unregisters.
 */
void pr_pool_flush_cache(struct rte_mempool *mp)
{
	struct rte_mempool_cache *c = rte_mempool_default_cache(mp,
		rte_lcore_id());

	if (c != NULL)
		rte_mempool_cache_flush(c, mp);
}

/* Rings */

struct rte_ring *pr_ring_create(const char *name, unsigned int count,
	int socket, unsigned int flags, int *err)
{
	struct rte_ring *r = rte_ring_create(name, count, socket, flags);
	*err = r == NULL ? neg_errno() : 0;
	return r;
}

unsigned int pr_ring_enqueue_burst(struct rte_ring *r, struct rte_mbuf **pkts,
	unsigned int n)
{
	return rte_ring_enqueue_burst(r, (void *const *)pkts, n, NULL);
}

unsigned int pr_ring_dequeue_burst(struct rte_ring *r, struct rte_mbuf **pkts,
	unsigned int n)
{
	return rte_ring_dequeue_burst(r, (void **)pkts, n, NULL);
}

unsigned int pr_ring_count(const struct rte_ring *r)
{
	return rte_ring_count(r);
}

/* Ports */

int pr_port_by_name(const char *name)
{
	uint16_t id;
	int r = rte_eth_dev_get_port_by_name(name, &id);
	return r < 0 ? r : (int)id;
}

int pr_port_info(uint16_t port, struct pr_dev_info *info)
{
	struct rte_eth_dev_info di;
	int r = rte_eth_dev_info_get(port, &di);
	if (r < 0)
		return r;
	info->max_rx_queues = di.max_rx_queues;
	info->max_tx_queues = di.max_tx_queues;
	info->min_mtu = di.min_mtu;
	info->max_mtu = di.max_mtu;
	info->flow_type_rss_offloads = di.flow_type_rss_offloads;
	snprintf(info->driver, sizeof(info->driver), "%s",
		di.driver_name != NULL ? di.driver_name : "");
	return 0;
}

int pr_port_configure(uint16_t port, struct pr_port_setup *s)
{
	struct rte_eth_conf conf;
	int r;
	uint16_t q;

	memset(&conf, 0, sizeof(conf));
	if (s->rss_hf != 0) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf = s->rss_hf;
	}
	r = rte_eth_dev_configure(port, s->rx_queues, s->tx_queues, &conf);
	if (r < 0)
		return r;
	r = rte_eth_dev_adjust_nb_rx_tx_desc(port, &s->rx_desc, &s->tx_desc);
	if (r < 0)
		return r;
	for (q = 0; q < s->rx_queues; q++) {
		r = rte_eth_rx_queue_setup(port, q, s->rx_desc, s->socket, NULL,
			s->pool);
		if (r < 0)
			return r;
	}
	for (q = 0; q < s->tx_queues; q++) {
		r = rte_eth_tx_queue_setup(port, q, s->tx_desc, s->socket, NULL);
		if (r < 0)
			return r;
	}
	return 0;
}

int pr_port_start(uint16_t port)
{
	return rte_eth_dev_start(port);
}

int pr_port_stop(uint16_t port)
{
	return rte_eth_dev_stop(port);
}

int pr_port_close(uint16_t port)
{
	return rte_eth_dev_close(port);
}

int pr_port_set_mtu(uint16_t port, uint16_t mtu)
{
	return rte_eth_dev_set_mtu(port, mtu);
}

int pr_port_promiscuous(uint16_t port)
{
	return rte_eth_promiscuous_enable(port);
}

int pr_port_link(uint16_t port, struct pr_link *link)
{
	struct rte_eth_link l;
	int r = rte_eth_link_get_nowait(port, &l);
	if (r < 0)
		return r;
	link->speed = l.link_speed;
	link->up = l.link_status == RTE_ETH_LINK_UP;
	link->full_duplex = l.link_duplex == RTE_ETH_LINK_FULL_DUPLEX;
	link->autoneg = l.link_autoneg == RTE_ETH_LINK_AUTONEG;
	return 0;
}

int pr_port_mac(uint16_t port, uint8_t mac[6])
{
	struct rte_ether_addr a;
	int r = rte_eth_macaddr_get(port, &a);
	if (r < 0)
		return r;
	memcpy(mac, a.addr_bytes, 6);
	return 0;
}

int pr_port_stats(uint16_t port, struct rte_eth_stats *st)
{
	return rte_eth_stats_get(port, st);
}

int pr_port_xstats_names(uint16_t port, struct rte_eth_xstat_name *names,
	unsigned int n)
{
	return rte_eth_xstats_get_names(port, names, n);
}

/*
 * pr_port_xstats fills values[i] with the value of xstat id i, in the order
 * of the names, so that Go needs no rte_eth_xstat array of its own.
 */
int pr_port_xstats(uint16_t port, uint64_t *values, unsigned int n)
{
	struct rte_eth_xstat *xs;
	int r;
	unsigned int i;

	xs = calloc(n == 0 ? 1 : n, sizeof(*xs));
	if (xs == NULL)
		return -ENOMEM;
	r = rte_eth_xstats_get(port, xs, n);
	if (r >= 0 && (unsigned int)r <= n) {
		for (i = 0; i < (unsigned int)r; i++)
			if (xs[i].id < n)
				values[xs[i].id] = xs[i].value;
	}
	free(xs);
	return r;
}

/* Bursts */

struct pr_burst *pr_burst_new(uint16_t size, uint16_t n_tx, int socket)
{
	struct pr_burst *b;
	struct rte_mbuf **arrays;
	uint16_t i;

	if (size == 0 || size > PR_BURST_MAX)
		return NULL;
	b = rte_zmalloc_socket("pr_burst", sizeof(*b), RTE_CACHE_LINE_SIZE,
		socket);
	if (b == NULL)
		return NULL;
	/*
	 * One block for rx, drop, punt, every TX buffer and every TX buffer's
	 * collected inject frames, in that order.
	 */
	arrays = rte_zmalloc_socket("pr_burst_pkts",
		sizeof(*arrays) * size * (3 + 2 * (size_t)n_tx),
		RTE_CACHE_LINE_SIZE, socket);
	b->tx = rte_zmalloc_socket("pr_burst_tx",
		sizeof(*b->tx) * (n_tx == 0 ? 1 : n_tx), RTE_CACHE_LINE_SIZE,
		socket);
	if (arrays == NULL || b->tx == NULL) {
		rte_free(arrays);
		rte_free(b->tx);
		rte_free(b);
		return NULL;
	}
	b->size = size;
	b->n_tx = n_tx;
	b->rx = arrays;
	b->drop = arrays + size;
	b->punt = arrays + 2 * (size_t)size;
	for (i = 0; i < n_tx; i++) {
		b->tx[i].cap = size;
		b->tx[i].pkts = arrays + (3 + (size_t)i) * size;
		b->tx[i].inj = arrays + (3 + (size_t)n_tx + i) * size;
	}
	return b;
}

void pr_burst_free(struct pr_burst *b)
{
	if (b == NULL)
		return;
	rte_free(b->rx);
	rte_free(b->tx);
	rte_free(b);
}

/*
 * pr_burst_discard frees what a closing burst still holds: refused frames
 * kept for a retry (counted as unsent) and collected inject frames Go never
 * took.
 */
void pr_burst_discard(struct pr_burst *b)
{
	uint16_t i;

	for (i = 0; i < b->n_tx; i++) {
		struct pr_txbuf *t = &b->tx[i];
		if (t->n != 0) {
			rte_pktmbuf_free_bulk(t->pkts, t->n);
			t->unsent += t->n;
			t->n = 0;
		}
		if (t->n_inj != 0) {
			rte_pktmbuf_free_bulk(t->inj, t->n_inj);
			t->n_inj = 0;
		}
	}
}

uint64_t pr_tsc_hz(void)
{
	return rte_get_tsc_hz();
}

static void flush_tx(struct pr_txbuf *t)
{
	uint16_t n = t->n;
	uint16_t sent;

	if (t->inject != NULL) {
		if (t->collect) {
			/* Go takes these and queues them itself. */
			if (t->n_inj == 0) {
				t->n_inj = rte_ring_dequeue_burst(t->inject,
					(void **)t->inj, t->cap, NULL);
				t->injected += t->n_inj;
			}
		} else if (n < t->cap) {
			unsigned int got = rte_ring_dequeue_burst(t->inject,
				(void **)&t->pkts[n], t->cap - n, NULL);
			t->injected += got;
			n += got;
		}
	}
	if (n == 0)
		return;
	sent = rte_eth_tx_burst(t->port, t->queue, t->pkts, n);
	t->sent += sent;
	if (sent < n) {
		if (t->keep) {
			/* The refused tail moves to the head, in order. */
			if (sent != 0)
				memmove(t->pkts, &t->pkts[sent],
					sizeof(*t->pkts) * (n - sent));
			t->refused += n - sent;
			t->n = n - sent;
			return;
		}
		rte_pktmbuf_free_bulk(&t->pkts[sent], n - sent);
		t->unsent += n - sent;
	}
	t->n = 0;
}

/*
 * burst_flush sends every TX buffer (topped up from its inject ring, or
 * collecting from it), frees the frames marked for dropping and enqueues the
 * punted ones, freeing what the punt ring has no room for.
 */
static void burst_flush(struct pr_burst *b)
{
	uint16_t i;

	for (i = 0; i < b->n_tx; i++)
		flush_tx(&b->tx[i]);
	if (b->n_drop != 0) {
		rte_pktmbuf_free_bulk(b->drop, b->n_drop);
		b->dropped += b->n_drop;
		b->n_drop = 0;
	}
	if (b->n_punt != 0) {
		unsigned int done = 0;
		if (b->punt_ring != NULL)
			done = rte_ring_enqueue_burst(b->punt_ring,
				(void *const *)b->punt, b->n_punt, NULL);
		b->punted += done;
		if (done < b->n_punt) {
			rte_pktmbuf_free_bulk(&b->punt[done], b->n_punt - done);
			b->punt_full += b->n_punt - done;
		}
		b->n_punt = 0;
	}
}

/* pr_burst_flush is burst_flush, then a TSC read for the worker's clock. */
void pr_burst_flush(uintptr_t burst)
{
	struct pr_burst *b = (struct pr_burst *)burst;

	burst_flush(b);
	b->tsc = rte_rdtsc();
}

/*
 * pr_burst_cycle is the worker's one call per burst: it settles the previous
 * burst (burst_flush) and receives the next one from rx_port/rx_queue. The
 * TSC read after the receive is the worker's clock for the burst: one rdtsc
 * instruction here instead of a cgo call of its own.
 */
uint16_t pr_burst_cycle(uintptr_t burst)
{
	struct pr_burst *b = (struct pr_burst *)burst;

	burst_flush(b);
	b->n_rx = rte_eth_rx_burst(b->rx_port, b->rx_queue, b->rx, b->size);
	b->rx_total += b->n_rx;
	b->tsc = rte_rdtsc();
	return b->n_rx;
}

size_t pr_mbuf_offset(int field)
{
	switch (field) {
	case PR_OFF_BUF_ADDR: return offsetof(struct rte_mbuf, buf_addr);
	case PR_OFF_DATA_OFF: return offsetof(struct rte_mbuf, data_off);
	case PR_OFF_REFCNT: return offsetof(struct rte_mbuf, refcnt);
	case PR_OFF_NB_SEGS: return offsetof(struct rte_mbuf, nb_segs);
	case PR_OFF_PORT: return offsetof(struct rte_mbuf, port);
	case PR_OFF_PKT_LEN: return offsetof(struct rte_mbuf, pkt_len);
	case PR_OFF_DATA_LEN: return offsetof(struct rte_mbuf, data_len);
	case PR_OFF_BUF_LEN: return offsetof(struct rte_mbuf, buf_len);
	case PR_OFF_POOL: return offsetof(struct rte_mbuf, pool);
	case PR_OFF_NEXT: return offsetof(struct rte_mbuf, next);
	case PR_SIZEOF_MBUF: return sizeof(struct rte_mbuf);
	case PR_HEADROOM: return RTE_PKTMBUF_HEADROOM;
	}
	return (size_t)-1;
}
