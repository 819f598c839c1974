package main

import (
	"bufio"
	"fmt"
	"os"
	"time"

	"github.com/poolrelay/poolrelay/ctl/api"
	"github.com/poolrelay/poolrelay/internal/pcapfile"
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
		link = pcapfile.LinkTypeEthernet
	}
	bw := bufio.NewWriter(w)
	pw, err := pcapfile.NewWriter(bw, snap, link)
	if err != nil {
		return err
	}
	for _, f := range tr.Frames {
		if err := pw.WriteFrame(f.Time, f.Data, f.Length); err != nil {
			return err
		}
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
