// Package wire is the POOL wire codec: zero-copy views over the bytes of a
// frame, a classifier that tells the data plane what a frame is and where its
// parts are, builders that write complete frames into caller-owned buffers,
// the in-place rewrite a relay applies before forwarding, and the ARP and
// neighbour-discovery answers the data plane gives for its own addresses.
//
// # Frames
//
// A POOL frame on the wire is
//
//	Ethernet [802.1Q/802.1ad tag [tag]] / IPv4 or IPv6 [extension headers]
//	  / (UDP to a POOL port) or (IP protocol 253) / POOL header (80 B) / payload
//
// On a relayed hop the payload is the inner, end-to-end POOL frame, which this
// package never looks into.
//
// # Views and ownership
//
// Ethernet, IPv4, IPv6, UDP, Header (the POOL header), ARP and ND are byte
// slices with accessor and setter methods, in the manner of gVisor's header
// package: converting a slice to a view copies nothing, and a setter writes
// straight into the caller's buffer. A view does not check its length; index
// it only after Classify (or the caller) has established that the bytes are
// there. Nothing in this package keeps a reference to a frame after it
// returns, and nothing allocates: not Classify, Rewrite, the ARP and ND
// answers, the checksum patches, nor the builders.
//
// # Classification
//
// Classify reads a frame once, front to back, and fills a Result: a small
// value with the frame's kind, its VLAN tags, the offsets and lengths of each
// layer, and the POOL header fields the data plane needs for its route lookup
// and anti-replay check. A frame that is malformed, unsupported or not for the
// relay gets a DropReason; Classify never panics, whatever the bytes. The
// checks run in the order the headers appear, and the first failing one names
// the reason; the fields of the layers decoded before it stay filled in for
// diagnostics.
//
// Decisions taken here, and why:
//
//   - Classify does not look at destination addresses: whether a frame is
//     for this relay (its MACs, its IPs) is the caller's test, on fields
//     the views read directly.
//   - UDP is matched on the destination port only, against a Matcher built
//     once from the configured ports: the relay is the server end of every
//     POOL conversation that reaches it.
//   - Ethernet padding after the IP datagram is legal and ignored; a frame
//     shorter than its IP length is truncated. The UDP length must equal the
//     IP payload length exactly: bytes inside the datagram but outside UDP
//     would be forwarded without being covered by anything.
//   - IPv4 options are skipped; the IPv4 header checksum is verified; any
//     fragment (MF set or a non-zero offset) is dropped, because a POOL frame
//     must be classified from its first bytes and the relay keeps no
//     reassembly state.
//   - IPv6 hop-by-hop (first only), destination-options and routing headers
//     with no segments left are skipped, at most MaxIPv6Extensions of them; a
//     fragment header is a fragment; AH, mobility, HIP and shim6 headers, or a
//     routing header that still has segments to visit, are unsupported.
//   - The UDP checksum is not verified on the packet path. Each relayed frame
//     carries a per-hop MAC over the POOL header and payload, which is a far
//     stronger check; Rewrite, PatchUDP and UDPPatch update it incrementally,
//     so a frame that arrived with a bad checksum leaves with a bad checksum
//     and the end host still detects the damage. A zero UDP checksum over IPv6
//     is dropped (RFC 8200 forbids it, and it cannot be updated incrementally).
//   - TTL and hop limit are checked when forwarding, not when classifying:
//     frames addressed to the relay itself (control traffic, ARP, neighbour
//     discovery) are not forwarded, so an expiring TTL is no reason to drop
//     them. Rewrite refuses a frame whose TTL or hop limit is 1 or 0 with
//     DropTTLExpired and leaves it untouched; no ICMP time-exceeded is sent.
//   - Neighbour-discovery messages are validated as RFC 4861 asks (hop limit
//     255, code 0, ICMPv6 checksum, well-formed options); they are rare, so
//     the checksum costs nothing that matters.
//
// # On the packet path
//
// A worker classifies each frame of a burst into a Result of its own, counts
// drops by reason, and acts on the kind: POOL frames go to the route lookup
// (keyed by Result.Session) and, for the next hop, to Rewrite and a UDPPatch
// around the new per-hop seq and MAC; ARP and neighbour solicitations for its
// own addresses are answered in place with AnswerARP and AnswerND; the
// answers to its own requests (built with BuildARPRequest and
// BuildNeighborSolicit) and everything else for the relay go to the control
// core. See the package example.
//
// # Checksums
//
// Internet checksums over data of any length add little-endian 64-bit words
// with carry and swap the folded result (RFC 1071 allows any byte order);
// the fixed headers on the packet path are summed as big-endian 32-bit
// halves in a 64-bit accumulator, unrolled. Incremental updates follow
// RFC 1624, equation 3, and equal a full recomputation bit for bit.
package wire
