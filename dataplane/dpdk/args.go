package dpdk

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/poolrelay/poolrelay/dataplane"
	"github.com/poolrelay/poolrelay/internal/confcheck"
)

// argv0 is the program name the EAL sees; it appears in its log lines.
const argv0 = "poolrelay"

// pciAddr matches a PCI address with an optional domain, followed by
// optional devargs: "0000:03:00.0", "03:00.0,txq_inline_max=128".
var pciAddr = regexp.MustCompile(`^(?:[0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7](?:,.*)?$`)

// IsPCI reports whether a port device string names a PCI device (it goes
// to the EAL as -a) rather than a virtual device (--vdev).
func IsPCI(device string) bool { return pciAddr.MatchString(device) }

// PortName returns the ethdev name DPDK gives the port of a device string:
// the part before the first comma, with the PCI domain "0000:" added when
// the address has none.
func PortName(device string) string {
	name, _, _ := strings.Cut(device, ",")
	if IsPCI(device) && strings.Count(name, ":") == 1 {
		name = "0000:" + name
	}
	return name
}

// MainCore returns the EAL's main lcore for cfg: the first core of the list.
func MainCore(cfg dataplane.EALConfig) (int, error) {
	cores, err := dataplane.ParseCoreList(cfg.Cores)
	if err != nil {
		return 0, fmt.Errorf("dpdk: %w", err)
	}
	return cores[0], nil
}

// Args returns the EAL arguments, argv[0] included, for cfg and the
// devices of the configured ports.
//
// The whole core list goes to the EAL (-l) with the first core as the main
// lcore. The EAL starts an lcore thread on every other core and leaves it
// blocked, idle, for good: workers are goroutines registered with
// rte_thread_register instead (see StartWorker). Giving the EAL the worker
// cores still matters, because it keeps its control threads (interrupts,
// multi-process, telemetry) off them. PCI devices are allowed one by one
// (-a); with none configured the PCI bus is not scanned at all (--no-pci),
// so the relay never grabs a NIC it was not given.
func Args(cfg dataplane.EALConfig, devices []string) ([]string, error) {
	errs := confcheck.New("eal")
	cfg.Validate(errs)
	if err := errs.Err(); err != nil {
		return nil, fmt.Errorf("dpdk: %w", err)
	}
	main, err := MainCore(cfg)
	if err != nil {
		return nil, err
	}
	args := []string{argv0,
		"-l", cfg.Cores,
		"--main-lcore", strconv.Itoa(main),
		"--file-prefix", cfg.FilePrefix,
		"--log-level", strconv.Itoa(cfg.LogLevel),
	}
	if cfg.NoHuge {
		args = append(args, "--no-huge")
	}
	if cfg.InMemory {
		args = append(args, "--in-memory")
	}
	if cfg.MemoryMB > 0 {
		args = append(args, "-m", strconv.Itoa(cfg.MemoryMB))
	}
	pci := false
	for _, d := range devices {
		switch {
		case strings.TrimSpace(d) == "":
			return nil, fmt.Errorf("dpdk: empty device string")
		case IsPCI(d):
			args = append(args, "-a", d)
			pci = true
		default:
			args = append(args, "--vdev", d)
		}
	}
	if !pci {
		args = append(args, "--no-pci")
	}
	return append(args, cfg.ExtraArgs...), nil
}
