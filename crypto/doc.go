// Package crypto holds the relay's cryptography, one job per subpackage:
//
//   - identity: the Ed25519 identity key (PKCS#8 file, 0600, refused if more
//     open), the X25519 static key derived from it and bound to it by a
//     signed binding certificate, and domain-separated signing.
//   - address: POOL 256-bit addresses (type and version, organisation,
//     segment, node id = hash of the identity key, CRC-32C) and their text
//     form.
//   - hopmac: per-hop AES-GMAC of relayed frames in the POOL header's MAC
//     field, and the anti-replay window.
//   - handshake: the stateless INIT -> CHALLENGE -> RESPONSE -> ACK handshake
//     on Noise IK, sessions, rekey and CLOSE.
//
// This package has no code; it documents the choices that span the
// subpackages.
//
// # Handshake
//
// POOL's handshake keeps its stateless shape, with Noise doing all the key
// agreement (Noise_IK_25519_ChaChaPoly_SHA256, github.com/flynn/noise):
//
//	client C                                          server S
//	| INIT      net, C's Ed25519 key, C's ephemeral e,    |
//	|           zero padding to 192 B                     |
//	|---------------------------------------------------->| no state kept; no
//	|                                                     | public-key work
//	| CHALLENGE net, difficulty d, bucket b, cookie,      |
//	|           echo of e, S's binding (Ed25519 key,      |
//	|           X25519 static, signature), 192 B          |
//	|<----------------------------------------------------|
//	| C checks the binding and that it is the expected    |
//	| server (key or address node id), that d is not      |
//	| too hard; solves the puzzle                         |
//	| RESPONSE  net, d, b, cookie, solution, C's Ed25519  |
//	|           key, Noise IK msg 1: e, enc(C's static),  |
//	|           enc(C's binding signature || payload)     |
//	|---------------------------------------------------->| cookie, puzzle,
//	|                                                     | replay, policy; then
//	|                                                     | Noise (X25519) and
//	|                                                     | the binding
//	| ACK       net, Noise IK msg 2: e', enc(payload)     |
//	|<----------------------------------------------------|
//	| both ends: session keys from Noise's Split          |
//
// The server's binding is signed once at start and sent in every CHALLENGE,
// so answering an INIT costs a parse, a rate update, a policy lookup and one
// HMAC-SHA256: no signature and no Diffie-Hellman, and no allocation. The
// cookie is HMAC-SHA256 (truncated to 16 bytes) over the client's IP and
// port, the time bucket, the difficulty, the network id, the client's
// identity and its ephemeral, under a random secret per time bucket (one
// minute by default); the server keeps the current and the previous
// bucket's secret, so a cookie lives one to two minutes. The puzzle asks for
// a solution whose SHA-256 with the cookie and ephemeral has d leading zero
// bits. d rises with the estimated INIT rate (a 100 ms slot counter with a
// jump up under flood and a 10 s half-life down): the base (0) in normal
// operation, 16 bits past the flood rate (2,000 INIT/s), one more bit per
// doubling, at most 24 by default. INIT is padded to the CHALLENGE's size so that spoofed
// INITs cannot amplify.
//
// RESPONSE is checked from cheapest to dearest: length and fields, network
// id, cookie bucket (ErrCookieExpired if older than the previous bucket),
// cookie MAC (ErrBadCookie: forged, other address, other INIT, lowered
// difficulty), puzzle (ErrPuzzle), replay filter (ErrReplay: the
// ephemerals of handshakes accepted while their cookies can still verify),
// policy (ErrNotEnrolled), and only then Noise (ErrAuth) and the client's
// binding signature (ErrBadBinding). The client's ephemeral in RESPONSE is
// the one INIT announced (the cookie covers it), so cookie and puzzle are
// bound to the Noise handshake itself.
//
// The Noise prologue is "poolrelay/v1 handshake" || the RESPONSE's clear
// part (network, difficulty, bucket, cookie, solution, client identity) ||
// the server's Ed25519 key: the two ends must agree on all of it or Noise
// fails. IK message 1 proves the client holds the X25519 static key it
// sends; the binding signature inside it proves that key belongs to the
// Ed25519 identity it claims. Message 2 proves the server holds the static
// key of the binding the client verified. Each end also sends an
// application payload (up to 512 bytes, encrypted: thresholds, prices,
// capabilities).
//
// Network separation: the network id is in every handshake message
// (ErrWrongNetwork before any work), in the cookie and in the prologue, so a
// handshake can only complete between two ends of the same network, and the
// session keys of two networks can never coincide.
//
// What the design accepts: the client's identity travels in the clear in
// INIT and RESPONSE (the server checks policy before spending anything; IK's
// identity hiding is given up for that); a client that knows neither the
// server's key nor its address trusts the first identity that answers (the
// caller pins Session.Peer); as with any IK handshake, a stolen server
// static key lets its holder impersonate clients to that server.
//
// # Key schedule
//
// Noise's Split gives two 32-byte keys, one per direction (initiator to
// responder, responder to initiator). Each is used only as an HKDF-SHA256
// pseudorandom key and expanded into the traffic keys of that direction:
//
//	hop key     = HKDF-Expand(K_dir, "poolrelay/v1 hop-mac", 32)  -> hopmac (AES-256-GMAC)
//	data key    = HKDF-Expand(K_dir, "poolrelay/v1 data", 32)     -> end-to-end ChaCha20-Poly1305
//	control key = HKDF-Expand(K_dir, "poolrelay/v1 control", 32)  -> REKEY and CLOSE (ChaCha20-Poly1305)
//	session id  = SHA-256("poolrelay/v1 session-id" || handshake hash)[:16]
//
// No key serves two directions or two purposes, so each GMAC nonce space
// (the hop's seq) belongs to one sender. The session id is the POOL
// header's session id: both ends derive it and no one can choose it.
//
// Rekey (after 2^28 frames or an hour, the responder 30 s later than the
// initiator so that they rarely collide) runs a fresh Noise KK handshake
// between the two static keys inside the session, carried in REKEY control
// messages; its prologue binds the session id, the current generation's
// handshake hash and the new generation number. The new generation's keys
// come from KK's Split exactly as above, with new ephemerals, so each
// generation has forward secrecy on its own. The rekey initiator switches
// to the new keys when the reply arrives; the responder receives with them
// at once but sends with them only when the peer has been seen using them
// (a control message under the new generation, or Session.Confirm when the
// data plane verified a frame with the new hop key). The previous
// generation stays valid for receiving for two minutes. If both ends start
// a rekey at once, the handshake initiator's request wins. A lost request
// is retried with a new one; only the reply to the latest counts.
//
// Control messages (REKEY, CLOSE) are sealed with the sender's control key
// of a named generation, nonce = a per-generation sequence number, the
// clear header and the session id as associated data, and checked against
// a replay window. CLOSE is therefore authenticated: only the peer can end
// a session.
//
// # Per-hop MAC
//
// AES-256-GMAC, 16-byte tag in the first half of the 32-byte MAC field,
// nonce = the first 12 header bytes (which end with the hop seq), chosen by
// measurement over HMAC-SHA256 and the Poly1305 constructions; see the
// hopmac package for the figures and the reasons it is sound here.
//
// # Cost, and one finding
//
// flynn/noise's DH25519 calls x/crypto/curve25519.X25519, which builds a
// crypto/ecdh private key on every call, and building one computes its
// public half: each Diffie-Hellman and each key generation cost two scalar
// multiplications. The handshake gives Noise its own DH function over
// crypto/ecdh that keeps the private keys it has seen (handshake/dh.go, byte
// for byte the same results), which took the server's CPU per handshake
// from 792 us to 434 us. A server handshake is then five scalar
// multiplications (es, ss, its ephemeral, ee, se) and one Ed25519
// verification; for a returning peer the Responder also reuses the
// verified binding and the static-static secret (four multiplications, no
// verification).
//
// # Measurements
//
// On this machine (AMD EPYC, 2 vCPUs shared with other builds at load
// averages of 5 to 12, Go 1.26.8). Figures are the CPU time of the
// benchmarking thread per operation (the cpu-ns/op column, from
// internal/cputime), median of 5 runs; wall-clock ns/op was 1.5 to 8
// times higher depending on the load and is not a cost.
//
//	X25519 scalar multiplication             57-65 us
//	Ed25519 sign, tagged 160 B (heartbeat)   31-38 us     26,000-32,000/s
//	Ed25519 verify, tagged 160 B             66-68 us     15,000/s
//	CHALLENGE answered (INIT flood path)     440-547 ns   1.8-2.3 M/s, 0 allocs
//	handshake, server side, new peer         434 us       2,300/s
//	handshake, server side, returning peer   295 us       3,400/s
//	handshake, both ends on one core         819-928 us   1,080-1,220/s
//	rekey (Noise KK), both ends              685-707 us
//	hop MAC sign, 128 B / 1500 B             86 / 363-378 ns, 0 allocs
//	hop MAC verify, 128 B / 1500 B           86-114 / 419-425 ns, 0 allocs
//	relay hop: accept + re-sign, 128/1500 B  220 / 664 ns: 4.5 Mpps, 18 Gbps of crypto per core
//
//	go test -run '^$' -bench 'X25519|Challenge|Accept|Handshake|Rekey' -count 5 ./crypto/handshake
//	go test -run '^$' -bench Heartbeat -count 5 ./crypto/identity
//	go test -run '^$' -bench 'Candidates|Sign|Verify|RelayHop' -count 5 ./crypto/hopmac
//
// The server-side handshake rate is the one a relay core offers; X25519 is
// 73% of it, the binding's Ed25519 verification 15%.
package crypto
