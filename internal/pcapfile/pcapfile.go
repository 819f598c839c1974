// Package pcapfile writes and reads the classic pcap capture format: a
// 24-byte file header and a 16-byte header per frame, too little to take a
// dependency for (gopacket's pcapgo would pull golang.org/x/net into the
// module). Writer writes little-endian files with microsecond timestamps,
// which every capture tool reads; Parse reads either byte order and either
// timestamp precision (DPDK's net_pcap writes nanoseconds).
package pcapfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// LinkTypeEthernet is pcap's LINKTYPE_ETHERNET.
const LinkTypeEthernet = 1

// The magic numbers, as read little-endian: microsecond and nanosecond
// timestamps, each in either byte order.
const (
	magicMicro        = 0xa1b2c3d4
	magicNano         = 0xa1b23c4d
	magicMicroSwapped = 0xd4c3b2a1
	magicNanoSwapped  = 0x4d3cb2a1
)

// Header sizes.
const (
	fileHeaderLen   = 24
	recordHeaderLen = 16
)

// ErrFormat is the error Parse returns (wrapped, with what is wrong) for
// bytes that are not a whole classic pcap capture.
var ErrFormat = errors.New("pcapfile: not a classic pcap capture")

// Writer writes a capture, one frame at a time.
type Writer struct {
	w       io.Writer
	snaplen uint32
	rec     [recordHeaderLen]byte
}

// NewWriter writes the file header to w (snaplen and linkType as given,
// microsecond timestamps) and returns a Writer for the frames.
func NewWriter(w io.Writer, snaplen, linkType uint32) (*Writer, error) {
	le := binary.LittleEndian
	var h [fileHeaderLen]byte
	le.PutUint32(h[0:], magicMicro)
	le.PutUint16(h[4:], 2) // version 2.4
	le.PutUint16(h[6:], 4)
	// thiszone and sigfigs (8:16) stay zero.
	le.PutUint32(h[16:], snaplen)
	le.PutUint32(h[20:], linkType)
	if _, err := w.Write(h[:]); err != nil {
		return nil, fmt.Errorf("pcapfile: %w", err)
	}
	return &Writer{w: w, snaplen: snaplen}, nil
}

// WriteFrame writes one frame captured at ts: data cut to the snap length,
// and origLen (at least len(data)) as the length it had on the wire.
func (w *Writer) WriteFrame(ts time.Time, data []byte, origLen int) error {
	origLen = max(origLen, len(data))
	if uint32(len(data)) > w.snaplen {
		data = data[:w.snaplen]
	}
	le := binary.LittleEndian
	le.PutUint32(w.rec[0:], uint32(ts.Unix()))
	le.PutUint32(w.rec[4:], uint32(ts.Nanosecond()/1000))
	le.PutUint32(w.rec[8:], uint32(len(data)))
	le.PutUint32(w.rec[12:], uint32(origLen))
	if _, err := w.w.Write(w.rec[:]); err != nil {
		return fmt.Errorf("pcapfile: %w", err)
	}
	if _, err := w.w.Write(data); err != nil {
		return fmt.Errorf("pcapfile: %w", err)
	}
	return nil
}

// WriteFile writes frames to path as an Ethernet capture with snap length
// 65535, the first frame at start and each next one step later.
func WriteFile(path string, frames [][]byte, start time.Time, step time.Duration) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("pcapfile: %w", err)
	}
	w, err := NewWriter(f, 65535, LinkTypeEthernet)
	for i := 0; err == nil && i < len(frames); i++ {
		err = w.WriteFrame(start.Add(time.Duration(i)*step), frames[i], len(frames[i]))
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("pcapfile: %w", cerr)
	}
	return err
}

// Parse returns the frames (their captured bytes) of the capture b. They
// alias b, with their capacity cut at their end.
func Parse(b []byte) ([][]byte, error) {
	if len(b) < fileHeaderLen {
		return nil, fmt.Errorf("%w: %d bytes, no file header", ErrFormat, len(b))
	}
	var bo binary.ByteOrder = binary.LittleEndian
	switch binary.LittleEndian.Uint32(b) {
	case magicMicro, magicNano:
	case magicMicroSwapped, magicNanoSwapped:
		bo = binary.BigEndian
	default:
		return nil, fmt.Errorf("%w: magic %x", ErrFormat, b[:4])
	}
	var frames [][]byte
	for off := fileHeaderLen; off < len(b); {
		if len(b)-off < recordHeaderLen {
			return nil, fmt.Errorf("%w: %d trailing bytes at %d", ErrFormat, len(b)-off, off)
		}
		n := bo.Uint32(b[off+8:])
		if uint64(n) > uint64(len(b)-off-recordHeaderLen) {
			return nil, fmt.Errorf("%w: record at %d truncated", ErrFormat, off)
		}
		end := off + recordHeaderLen + int(n)
		frames = append(frames, b[off+recordHeaderLen:end:end])
		off = end
	}
	return frames, nil
}

// ReadFile parses the capture in the file at path.
func ReadFile(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pcapfile: %w", err)
	}
	frames, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return frames, nil
}
