// Package proto is the relay-control protocol, as relays and end nodes both
// speak it: how the handshake and the messages of an established session ride
// in POOL frames on channel 2.
//
// # Carriage
//
// Every control frame is a POOL frame (80-byte header, then the payload) with
// channel ChannelControl (2):
//
//   - Handshake messages (INIT, CHALLENGE, RESPONSE, ACK) and the session's
//     own REKEY and CLOSE travel in the clear as the payload of a frame whose
//     type is the message's kind (crypto/handshake authenticates them itself).
//     INIT, CHALLENGE, RESPONSE and ACK carry the all-zero session id; REKEY
//     and CLOSE the session's id.
//   - Relay-control messages (TERMS, ROUTE_OPEN, ROUTE_OK, ROUTE_ERROR,
//     ROUTE_CLOSE, CHEQUE, CHEQUE_ACK) travel in DATA frames and heartbeats
//     in HEARTBEAT frames, sealed by a Channel of the session.
//
// # Sealed messages
//
//	header  type, flags ENCRYPTED, seq = message sequence (the nonce), ack 0,
//	        session id, timestamp (sender's clock, ns), payload length,
//	        channel 2, MAC field = Poly1305 tag (16) || 16 zero bytes
//	payload off 0 version (1), 1 kind, 2 reserved (2, zero),
//	        4 key generation (4), 8 ciphertext of the body
//
// The body is sealed with ChaCha20-Poly1305; the additional data is the
// 80-byte header with its MAC field zeroed followed by the 8-byte clear
// prefix, so that nothing in the frame can change without the tag failing.
// The nonce is the sequence number, which a sender never repeats under one
// key; the receiver keeps an anti-replay window per key generation
// (crypto/hopmac's Window) and refuses timestamps further than the configured
// skew from its own clock, so a recorded message cannot be replayed and an
// old one cannot be delayed and delivered late.
//
// The keys: crypto/handshake does not export its control key, so a Channel
// derives one per direction and generation as
//
//	HKDF-SHA256(secret = Keys.DataSend (or DataRecv), salt = session id,
//	            info = "poolrelay/v1 relay-control")
//
// On a session with a relay the data keys are otherwise unused (end-to-end
// payloads are protected by the end-to-end session between two end nodes),
// so no key serves two purposes. Rejections are sentinel errors the caller
// counts with errors.Is.
//
// # Bodies
//
// Every body has one canonical encoding: fixed fields in a fixed order,
// integers big-endian, reserved bytes zero, and exactly one valid length, so
// that a signature (heartbeats) or a journal entry can cover the bytes as
// they are. The layouts are documented on each type.
package proto
