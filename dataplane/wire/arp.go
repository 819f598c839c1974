package wire

import (
	"encoding/binary"
	"net/netip"
)

// ARP geometry and operations (RFC 826), for IPv4 over Ethernet only.
const (
	// ARPLen is the length of an Ethernet/IPv4 ARP packet.
	ARPLen = 28

	ARPOpRequest = 1
	ARPOpReply   = 2

	arpHardwareEthernet = 1
)

// ARP is a view of an Ethernet/IPv4 ARP packet, at least ARPLen bytes.
type ARP []byte

// HardwareType returns the hardware type (1 for Ethernet).
func (a ARP) HardwareType() uint16 { return binary.BigEndian.Uint16(a[0:]) }

// ProtocolType returns the protocol type (EtherTypeIPv4).
func (a ARP) ProtocolType() uint16 { return binary.BigEndian.Uint16(a[2:]) }

// HardwareLen returns the hardware address length (6).
func (a ARP) HardwareLen() uint8 { return a[4] }

// ProtocolLen returns the protocol address length (4).
func (a ARP) ProtocolLen() uint8 { return a[5] }

// Op returns the operation: ARPOpRequest or ARPOpReply.
func (a ARP) Op() uint16 { return binary.BigEndian.Uint16(a[6:]) }

// SenderMAC returns the sender's hardware address.
func (a ARP) SenderMAC() MAC { return MAC(a[8:14]) }

// SenderIP returns the sender's IPv4 address.
func (a ARP) SenderIP() [4]byte { return [4]byte(a[14:18]) }

// TargetMAC returns the target's hardware address (zero in a request).
func (a ARP) TargetMAC() MAC { return MAC(a[18:24]) }

// TargetIP returns the target's IPv4 address: the address being asked
// about, in a request.
func (a ARP) TargetIP() [4]byte { return [4]byte(a[24:28]) }

// SetHeader writes the fixed part of an Ethernet/IPv4 ARP packet and op.
func (a ARP) SetHeader(op uint16) {
	binary.BigEndian.PutUint16(a[0:], arpHardwareEthernet)
	binary.BigEndian.PutUint16(a[2:], EtherTypeIPv4)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:], op)
}

// SetSender sets the sender's hardware and IPv4 addresses.
func (a ARP) SetSender(m MAC, ip [4]byte) {
	copy(a[8:14], m[:])
	copy(a[14:18], ip[:])
}

// SetTarget sets the target's hardware and IPv4 addresses.
func (a ARP) SetTarget(m MAC, ip [4]byte) {
	copy(a[18:24], m[:])
	copy(a[24:28], ip[:])
}

// Check validates the packet: Ethernet and IPv4 address types and lengths,
// and an operation that is a request or a reply.
func (a ARP) Check() DropReason {
	if len(a) < ARPLen {
		return DropTruncated
	}
	return checkARP((*[ARPLen]byte)(a))
}

func checkARP(a *[ARPLen]byte) DropReason {
	// The first eight bytes of a valid packet are one of two constants.
	const request, reply = 0x0001_0800_0604_0001, 0x0001_0800_0604_0002
	if v := binary.BigEndian.Uint64(a[0:]); v != request && v != reply {
		return DropBadARP
	}
	return DropNone
}

// AnswerARP turns an ARP request that Classify accepted into the reply, in
// place: the frame keeps its length and VLAN tags, and is addressed back to
// the requester from mac. The caller decides first that the request's target
// (ARP(frame[r.L3Off:]).TargetIP()) is one of its addresses. It returns false,
// and leaves the frame alone, for anything but a valid request.
func AnswerARP(frame []byte, r *Result, mac MAC) bool {
	if r.Kind != KindARP || r.Drop != DropNone {
		return false
	}
	a := (*[ARPLen]byte)(frame[r.L3Off:])
	if binary.BigEndian.Uint16(a[6:]) != ARPOpRequest {
		return false
	}
	sha := MAC(a[8:14])
	spa := [4]byte(a[14:18])
	tpa := [4]byte(a[24:28])
	binary.BigEndian.PutUint16(a[6:], ARPOpReply)
	*(*MAC)(a[8:14]) = mac
	*(*[4]byte)(a[14:18]) = tpa
	*(*MAC)(a[18:24]) = sha
	*(*[4]byte)(a[24:28]) = spa
	e := (*[12]byte)(frame)
	*(*MAC)(e[0:6]) = sha
	*(*MAC)(e[6:12]) = mac
	return true
}

// BuildARPRequest writes into buf a broadcast ARP request from mac and src
// asking for target's hardware address, with the given VLAN tags, and returns
// the frame's length (padded to MinFrameLen).
func BuildARPRequest(buf []byte, tags []VLANTag, mac MAC, src, target netip.Addr) (int, error) {
	if !src.Is4() || !target.Is4() {
		return 0, ErrAddrFamily
	}
	l3, err := putL2(buf, BroadcastMAC, mac, tags, EtherTypeARP, ARPLen)
	if err != nil {
		return 0, err
	}
	a := ARP(buf[l3 : l3+ARPLen])
	a.SetHeader(ARPOpRequest)
	a.SetSender(mac, src.As4())
	a.SetTarget(MAC{}, target.As4())
	return pad(buf, l3+ARPLen), nil
}
