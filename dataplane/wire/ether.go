package wire

import "encoding/binary"

// Ethernet geometry and the EtherTypes the codec knows.
const (
	// EthernetLen is the length of an Ethernet II header without tags.
	EthernetLen = 14
	// VLANTagLen is the length of one 802.1Q or 802.1ad tag.
	VLANTagLen = 4
	// MaxVLANTags is the deepest tag stack accepted: a customer tag inside a
	// service tag (Q-in-Q) is as deep as provider networks go in practice.
	MaxVLANTags = 2
	// MinFrameLen is the shortest Ethernet frame without its FCS; builders
	// pad shorter frames to it.
	MinFrameLen = 60

	EtherTypeIPv4 = 0x0800
	EtherTypeARP  = 0x0806
	EtherTypeVLAN = 0x8100 // 802.1Q customer tag
	EtherTypeQinQ = 0x88a8 // 802.1ad service tag
	EtherTypeIPv6 = 0x86dd
)

// MAC is an Ethernet address. Unlike net.HardwareAddr it is a value: copying
// it or comparing it allocates nothing.
type MAC [6]byte

// BroadcastMAC is ff:ff:ff:ff:ff:ff.
var BroadcastMAC = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// String returns the address as six colon-separated hexadecimal bytes.
func (m MAC) String() string {
	var b [17]byte
	for i, v := range m {
		if i > 0 {
			b[3*i-1] = ':'
		}
		b[3*i], b[3*i+1] = hexDigits[v>>4], hexDigits[v&0xf]
	}
	return string(b[:])
}

const hexDigits = "0123456789abcdef"

// IsMulticast reports whether the group bit is set (broadcast included).
func (m MAC) IsMulticast() bool { return m[0]&1 != 0 }

// VLANTag is one 802.1Q or 802.1ad tag: its TPID (EtherTypeVLAN or
// EtherTypeQinQ) and its tag control information.
type VLANTag struct {
	TPID uint16
	TCI  uint16
}

// ID returns the VLAN identifier (the low 12 bits of the TCI).
func (t VLANTag) ID() uint16 { return t.TCI & 0x0fff }

// Priority returns the priority code point (the top 3 bits of the TCI).
func (t VLANTag) Priority() uint8 { return uint8(t.TCI >> 13) }

// DropEligible returns the drop eligible indicator.
func (t VLANTag) DropEligible() bool { return t.TCI&0x1000 != 0 }

// Ethernet is a view of an Ethernet II header, at least EthernetLen bytes.
type Ethernet []byte

// Dst returns the destination address.
func (e Ethernet) Dst() MAC { return MAC(e[0:6]) }

// Src returns the source address.
func (e Ethernet) Src() MAC { return MAC(e[6:12]) }

// EtherType returns the EtherType or TPID at offset 12.
func (e Ethernet) EtherType() uint16 { return binary.BigEndian.Uint16(e[12:]) }

// SetDst sets the destination address.
func (e Ethernet) SetDst(m MAC) { copy(e[0:6], m[:]) }

// SetSrc sets the source address.
func (e Ethernet) SetSrc(m MAC) { copy(e[6:12], m[:]) }

// SetEtherType sets the EtherType or TPID at offset 12.
func (e Ethernet) SetEtherType(t uint16) { binary.BigEndian.PutUint16(e[12:], t) }

// Tag returns the i-th VLAN tag (0 is outermost); the caller knows from
// Classify (Result.VLANs) that it exists.
func (e Ethernet) Tag(i int) VLANTag {
	o := 12 + VLANTagLen*i
	return VLANTag{TPID: binary.BigEndian.Uint16(e[o:]), TCI: binary.BigEndian.Uint16(e[o+2:])}
}

// SetTag writes the i-th VLAN tag over the bytes already there.
func (e Ethernet) SetTag(i int, t VLANTag) {
	o := 12 + VLANTagLen*i
	binary.BigEndian.PutUint16(e[o:], t.TPID)
	binary.BigEndian.PutUint16(e[o+2:], t.TCI)
}
