package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/poolrelay/poolrelay/ctl/api"
)

func init() {
	register("trace", command{summary: "capture N frames of a port to a pcap file (trace PORT -n N -w FILE)", run: runTrace})
}

func runTrace(e *env, args []string) error {
	const usage = "trace PORT [-n N] -w FILE.pcap [--snaplen B] [--timeout D] [--socket PATH]"
	fs, cf := ctlCommand(e, "trace", usage, `
Capture frames received on the relay's port PORT and write them to a pcap
file (readable by tcpdump -r and Wireshark). The relay copies up to N frames
as they arrive, off the packet path, and sends them back; the file is written
here, with your permissions. The capture ends after N frames, after
--timeout, or on Ctrl-C.`)
	n := fs.Int("n", 100, fmt.Sprintf("frames to capture, 1 to %d", api.MaxTraceFrames))
	out := fs.String("w", "", "pcap file to write (- for standard output)")
	snaplen := fs.Int("snaplen", 0, "keep at most this many bytes of each frame (0: whole frames)")
	timeout := fs.Duration("timeout", 30*time.Second, "stop capturing after this long")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *out == "" {
		fs.Usage()
		return usagef("expected: %s", usage)
	}
	if *n < 1 || *n > api.MaxTraceFrames {
		return usagef("-n %d is out of range: use 1 to %d", *n, api.MaxTraceFrames)
	}
	if *snaplen < 0 || *timeout < 0 {
		return usagef("--snaplen and --timeout must not be negative")
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	ctx, cancel := callContext()
	defer cancel()
	tr, err := c.Trace(ctx, api.TraceArgs{Port: pos[0], Count: *n, Snaplen: *snaplen, Timeout: api.Duration(*timeout)})
	if err != nil {
		return ctlError(err)
	}
	w := e.stdout
	info := e.stdout // the summary; stderr when the pcap itself goes to stdout
	if *out == "-" {
		info = e.stderr
	} else {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	snap := uint32(65535)
	if *snaplen > 0 {
		snap = uint32(*snaplen)
	}
	link := tr.LinkType
	if link == 0 {
		link = linkTypeEthernet
	}
	bw := bufio.NewWriter(w)
	if err := writePcap(bw, snap, link, tr.Frames); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if f, ok := w.(*os.File); ok {
		if err := f.Close(); err != nil {
			return err
		}
	}
	if cf.json {
		return writeJSON(info, map[string]any{"port": tr.Port, "frames": len(tr.Frames), "file": *out})
	}
	fmt.Fprintf(info, "captured %d frames on %s to %s\n", len(tr.Frames), tr.Port, *out)
	return nil
}

// linkTypeEthernet is pcap's LINKTYPE_ETHERNET.
const linkTypeEthernet = 1

// writePcap writes frames in the classic pcap format (microsecond
// timestamps, little-endian), which every capture tool reads. It is a
// 24-byte file header and a 16-byte header per frame: too little to take a
// dependency for.
func writePcap(w io.Writer, snaplen, linkType uint32, frames []api.TraceFrame) error {
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], snaplen)
	binary.LittleEndian.PutUint32(h[20:], linkType)
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	for _, f := range frames {
		data := f.Data
		if uint32(len(data)) > snaplen {
			data = data[:snaplen]
		}
		orig := max(f.Length, len(f.Data))
		var r [16]byte
		binary.LittleEndian.PutUint32(r[0:], uint32(f.Time.Unix()))
		binary.LittleEndian.PutUint32(r[4:], uint32(f.Time.Nanosecond()/1000))
		binary.LittleEndian.PutUint32(r[8:], uint32(len(data)))
		binary.LittleEndian.PutUint32(r[12:], uint32(orig))
		if _, err := w.Write(r[:]); err != nil {
			return err
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
	}
	return nil
}
