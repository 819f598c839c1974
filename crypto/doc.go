// Package crypto holds the relay's cryptography: identities (Ed25519 signing
// keys with a bound X25519 agreement key), POOL addresses, the stateless
// authenticated handshake built on the Noise framework, per-hop frame MACs with
// anti-replay windows, and signatures over canonical encodings. Each job is a
// subpackage; this package documents the choices that span them.
package crypto
