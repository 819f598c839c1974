//go:build linux && cgo

package dpdk

// #include "shim.h"
import "C"

// mbufLayout pairs each mbuf constant of the binding with the C compiler's
// value for it, for TestMbufOffsets.
func mbufLayout() []layoutCheck {
	return []layoutCheck{
		{"offsetof(buf_addr)", offBufAddr, uintptr(C.pr_mbuf_offset(C.PR_OFF_BUF_ADDR))},
		{"offsetof(data_off)", offDataOff, uintptr(C.pr_mbuf_offset(C.PR_OFF_DATA_OFF))},
		{"offsetof(refcnt)", offRefcnt, uintptr(C.pr_mbuf_offset(C.PR_OFF_REFCNT))},
		{"offsetof(nb_segs)", offNbSegs, uintptr(C.pr_mbuf_offset(C.PR_OFF_NB_SEGS))},
		{"offsetof(port)", offPort, uintptr(C.pr_mbuf_offset(C.PR_OFF_PORT))},
		{"offsetof(pkt_len)", offPktLen, uintptr(C.pr_mbuf_offset(C.PR_OFF_PKT_LEN))},
		{"offsetof(data_len)", offDataLen, uintptr(C.pr_mbuf_offset(C.PR_OFF_DATA_LEN))},
		{"offsetof(buf_len)", offBufLen, uintptr(C.pr_mbuf_offset(C.PR_OFF_BUF_LEN))},
		{"offsetof(pool)", offPool, uintptr(C.pr_mbuf_offset(C.PR_OFF_POOL))},
		{"offsetof(next)", offNext, uintptr(C.pr_mbuf_offset(C.PR_OFF_NEXT))},
		{"sizeof(struct rte_mbuf)", mbufSize, uintptr(C.pr_mbuf_offset(C.PR_SIZEOF_MBUF))},
		{"RTE_PKTMBUF_HEADROOM", Headroom, uintptr(C.pr_mbuf_offset(C.PR_HEADROOM))},
		{"RTE_MBUF_DEFAULT_BUF_SIZE", DefaultDataRoom, uintptr(C.RTE_MBUF_DEFAULT_BUF_SIZE)},
		{"PR_BURST_MAX", MaxBurst, uintptr(C.PR_BURST_MAX)},
	}
}

// layoutCheck is one constant of the binding against the C truth.
type layoutCheck struct {
	name   string
	goVal  uintptr
	cValue uintptr
}
