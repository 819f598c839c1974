package dpdk

// TakeAll allocates every mbuf of p that can be allocated now (those in a
// core's cache stay there) and returns them with done, which frees them
// and the vector they are held in. AllocBulk takes all or nothing, so it
// asks for chunks of 256 and halves the chunk when the pool runs short,
// taking the last few too. It is for setting a pool up (writing a frame
// into every mbuf before any worker runs), not for a hot path.
func (p *Mempool) TakeAll() (ms []*Mbuf, done func(), err error) {
	v, err := NewMbufVec(p.Size())
	if err != nil {
		return nil, nil, err
	}
	all := v.Mbufs()
	n := 0
	for chunk := 256; chunk > 0 && n < len(all); {
		end := min(n+chunk, len(all))
		if err := p.AllocBulk(all[n:end]); err != nil {
			chunk /= 2 // the pool is nearly empty: take what is left
			continue
		}
		n = end
	}
	return all[:n], func() { FreeBulk(all[:n]); v.Close() }, nil
}
