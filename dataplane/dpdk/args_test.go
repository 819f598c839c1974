package dpdk

import (
	"slices"
	"strings"
	"testing"

	"github.com/poolrelay/poolrelay/dataplane"
)

func TestArgs(t *testing.T) {
	base := dataplane.EALConfig{Cores: "2,0-1", FilePrefix: "pr1", LogLevel: 4}
	tests := []struct {
		name      string
		cfg       func(c *dataplane.EALConfig)
		devices   []string
		want      []string // must appear, in this order, as adjacent arguments
		absent    []string
		shouldErr string
	}{
		{name: "vdevs only: no PCI scan", devices: []string{"net_null0,size=128", "net_ring0"},
			want:   []string{"-l 2,0-1", "--main-lcore 2", "--file-prefix pr1", "--log-level 4", "--vdev net_null0,size=128", "--vdev net_ring0", "--no-pci"},
			absent: []string{"-a", "--no-huge", "--in-memory", "-m"}},
		{name: "PCI devices are allowed one by one", devices: []string{"0000:03:00.0", "04:00.1,txq_inline_max=128", "net_tap0,iface=t0"},
			want:   []string{"-a 0000:03:00.0", "-a 04:00.1,txq_inline_max=128", "--vdev net_tap0,iface=t0"},
			absent: []string{"--no-pci"}},
		{name: "no hugepages", cfg: func(c *dataplane.EALConfig) { c.NoHuge, c.MemoryMB = true, 512 },
			want: []string{"--no-huge", "-m 512"}},
		{name: "in memory", cfg: func(c *dataplane.EALConfig) { c.InMemory = true },
			want: []string{"--in-memory"}, absent: []string{"-m"}},
		{name: "extra arguments last", cfg: func(c *dataplane.EALConfig) { c.ExtraArgs = []string{"--huge-dir", "/mnt/h"} },
			want: []string{"--no-pci --huge-dir /mnt/h"}},
		{name: "in-memory refused with no-huge", cfg: func(c *dataplane.EALConfig) { c.NoHuge, c.InMemory, c.MemoryMB = true, true, 64 },
			shouldErr: "in_memory"},
		{name: "no-huge needs memory", cfg: func(c *dataplane.EALConfig) { c.NoHuge = true }, shouldErr: "memory_mb"},
		{name: "bad core list", cfg: func(c *dataplane.EALConfig) { c.Cores = "1-0" }, shouldErr: "cores"},
		{name: "empty device", devices: []string{" "}, shouldErr: "empty device"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			args, err := Args(cfg, tt.devices)
			if tt.shouldErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.shouldErr) || !strings.HasPrefix(err.Error(), "dpdk: ") {
					t.Fatalf("Args = %q, %v; want an error about %s", args, err, tt.shouldErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if args[0] != argv0 {
				t.Errorf("argv[0] = %q", args[0])
			}
			joined := " " + strings.Join(args, " ") + " "
			for _, w := range tt.want {
				if !strings.Contains(joined, " "+w+" ") {
					t.Errorf("%q lacks %q", args, w)
				}
			}
			for _, a := range tt.absent {
				if slices.Contains(args, a) {
					t.Errorf("%q has %q", args, a)
				}
			}
		})
	}
}

func TestPortName(t *testing.T) {
	for dev, want := range map[string]string{
		"net_null0,size=128":           "net_null0",
		"net_af_xdp0,iface=veth0":      "net_af_xdp0",
		"net_ring0":                    "net_ring0",
		"0000:03:00.0":                 "0000:03:00.0",
		"03:00.0,txq_inline_max=128":   "0000:03:00.0",
		"net_pcap0,rx_pcap=/a,b":       "net_pcap0",
		"0000:af:00.1,representor=[0]": "0000:af:00.1",
	} {
		if got := PortName(dev); got != want {
			t.Errorf("PortName(%q) = %q, want %q", dev, got, want)
		}
	}
	for dev, pci := range map[string]bool{"0000:03:00.0": true, "03:00.7": true, "03:00.8": false, "net_null0": false, "0000:03:00": false} {
		if IsPCI(dev) != pci {
			t.Errorf("IsPCI(%q) = %v", dev, !pci)
		}
	}
}
