package sim

import (
	"math/rand/v2"
	"runtime"
	"sort"
	"sync"
)

// graph is an undirected graph of relays as adjacency lists.
type graph struct {
	adj [][]int32
}

// scaleFree grows a Barabási–Albert graph of n nodes: each new node links
// to m distinct existing nodes chosen with probability proportional to
// their degree, which gives the few large hubs and many small edges of an
// ISP-like relay network.
func scaleFree(n, m int, rng *rand.Rand) graph {
	g := graph{adj: make([][]int32, n)}
	// ends holds every edge's two ends, so a uniform pick from it is a
	// degree-proportional pick of a node.
	ends := make([]int32, 0, 2*n*m)
	core := min(m+1, n)
	for i := 0; i < core; i++ {
		for j := 0; j < i; j++ {
			g.link(int32(i), int32(j))
			ends = append(ends, int32(i), int32(j))
		}
	}
	picked := make([]int32, 0, m)
	for v := core; v < n; v++ {
		picked = picked[:0]
		for len(picked) < m {
			u := ends[rng.IntN(len(ends))]
			dup := false
			for _, p := range picked {
				dup = dup || p == u
			}
			if !dup {
				picked = append(picked, u)
			}
		}
		for _, u := range picked {
			g.link(int32(v), u)
			ends = append(ends, int32(v), u)
		}
	}
	return g
}

func (g *graph) link(a, b int32) {
	g.adj[a] = append(g.adj[a], b)
	g.adj[b] = append(g.adj[b], a)
}

func (g *graph) linked(a, b int32) bool {
	for _, x := range g.adj[a] {
		if x == b {
			return true
		}
	}
	return false
}

// byDegree returns the nodes sorted by decreasing degree.
func (g *graph) byDegree() []int32 {
	out := make([]int32, len(g.adj))
	for i := range out {
		out[i] = int32(i)
	}
	sort.SliceStable(out, func(i, j int) bool { return len(g.adj[out[i]]) > len(g.adj[out[j]]) })
	return out
}

// routes finds the paths from src to dst whose inner nodes all carry
// transit (transit[v]), one per first hop that starts a path at most one
// hop longer than the shortest, shortest first, at most maxAlts. dist and
// next are scratch of len(g.adj); queue is reused.
func (g *graph) routes(src, dst int32, transit []bool, dist, next []int32, queue []int32) [][]int32 {
	for i := range dist {
		dist[i] = -1
	}
	dist[dst], next[dst] = 0, dst
	queue = append(queue[:0], dst)
	for h := 0; h < len(queue); h++ {
		v := queue[h]
		if v != dst && (!transit[v] || v == src) {
			continue
		}
		for _, u := range g.adj[v] {
			if dist[u] < 0 {
				dist[u], next[u] = dist[v]+1, v
				queue = append(queue, u)
			}
		}
	}
	if dist[src] < 0 {
		return nil
	}
	var out [][]int32
	for d := dist[src] - 1; d <= dist[src]; d++ {
		for _, n := range g.adj[src] {
			if dist[n] != d || (n != dst && !transit[n]) || len(out) == maxAlts {
				continue
			}
			p := []int32{src}
			for v := n; ; v = next[v] {
				p = append(p, v)
				if v == dst {
					break
				}
			}
			out = append(out, p)
		}
	}
	return out
}

// maxAlts bounds the first hops a source considers.
const maxAlts = 4

// routeAll recomputes the paths of every flow that is not pinned, in
// parallel over the machine's cores (a BFS each).
func (g *graph) routeAll(flows []flow, transit []bool) {
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	next := make(chan int, 256)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dist := make([]int32, len(g.adj))
			nxt := make([]int32, len(g.adj))
			queue := make([]int32, 0, len(g.adj))
			for i := range next {
				f := &flows[i]
				f.alts = g.routes(f.src, f.dst, transit, dist, nxt, queue)
			}
		}()
	}
	for i := range flows {
		if !flows[i].fixed {
			next <- i
		}
	}
	close(next)
	wg.Wait()
}
