// Package poolhdr is the layout of the POOL v1 header (POOL spec v1,
// pool_proto.h): its length and where each field starts, big-endian
// throughout. It is a leaf with nothing but constants so that the codec
// (dataplane/wire) and the hop MAC (crypto/hopmac) read the one layout
// without the crypto tree importing the data plane's.
package poolhdr

// Len is the length of the POOL header.
const Len = 80

// Offsets of the header's fields, in bytes from its start, and the sizes of
// those that are not plain integers.
const (
	VerType   = 0  // u8: version<<4 | type
	Reserved1 = 1  // u8, must be zero
	Flags     = 2  // u16
	Seq       = 4  // u64: the hop's sequence number
	Ack       = 12 // u64
	Session   = 20 // SessionLen bytes: the route's session id
	Timestamp = 36 // u64, ns
	PayLen    = 44 // u16: the payload's length
	Channel   = 46 // u8
	Reserved2 = 47 // u8, must be zero
	MAC       = 48 // MACLen bytes: the hop MAC field, to the header's end

	SessionLen = 16
	MACLen     = Len - MAC
)
