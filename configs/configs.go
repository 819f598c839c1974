// Package configs is the relay's configuration file: the TOML format, the
// embedded default (default.toml, the one the demo runs), strict decoding and
// validation of the whole file.
//
// Each subsystem owns its section's struct, defaults and Validate method; this
// package composes them and is the only place that decodes files. Decoding is
// strict: an unknown key or a value of the wrong type is an error that names
// the key and its line, so a typo never silently falls back to a default.
package configs

import (
	_ "embed"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/poolrelay/poolrelay/control"
	"github.com/poolrelay/poolrelay/dataplane"
	"github.com/poolrelay/poolrelay/dataplane/neigh"
	"github.com/poolrelay/poolrelay/internal/confcheck"
	"github.com/poolrelay/poolrelay/internal/logging"
	"github.com/poolrelay/poolrelay/ledger"
	"github.com/poolrelay/poolrelay/sched"
)

// Default is the embedded default configuration, configs/default.toml.
//
//go:embed default.toml
var Default []byte

// NodeConfig is the [node] section: who this relay is and where it keeps state.
type NodeConfig struct {
	// DataDir holds the identity key, the journal and the ledger store.
	DataDir string `toml:"data_dir"`
	// IdentityFile is the Ed25519 identity key; empty means DataDir/identity.key.
	IdentityFile string `toml:"identity_file"`
	// NetworkID separates POOL networks: cheques and handshakes of another
	// network are refused.
	NetworkID uint32 `toml:"network_id"`
}

// File is a whole configuration file.
type File struct {
	Log       logging.Config         `toml:"log"`
	Node      NodeConfig             `toml:"node"`
	EAL       dataplane.EALConfig    `toml:"eal"`
	Ports     []dataplane.PortConfig `toml:"port"`
	Dataplane dataplane.Config       `toml:"dataplane"`
	Ctl       CtlConfig              `toml:"ctl"`
	Ledger    ledger.Config          `toml:"ledger"`
	Sched     sched.Config           `toml:"sched"`
	Neigh     neigh.Config           `toml:"neigh"`
	Control   control.Config         `toml:"control"`
}

// Defaults returns a File holding every default, with no ports.
func Defaults() File {
	return File{
		Log:       logging.DefaultConfig(),
		Node:      NodeConfig{DataDir: "/var/lib/pool_relay", NetworkID: 1},
		EAL:       dataplane.DefaultEALConfig(),
		Dataplane: dataplane.DefaultConfig(),
		Ctl:       DefaultCtlConfig(),
		Ledger:    ledger.DefaultConfig(),
		Sched:     sched.DefaultConfig(),
		Neigh:     neigh.DefaultConfig(),
		Control:   control.DefaultConfig(),
	}
}

// IdentityPath is where the identity key lives.
func (n NodeConfig) IdentityPath() string {
	if n.IdentityFile != "" {
		return n.IdentityFile
	}
	return filepath.Join(n.DataDir, "identity.key")
}

// Problem is one error in a configuration file, located as precisely as the
// file allows.
type Problem struct {
	// Line is 1-based; 0 when the key does not appear in the file (a missing
	// required value).
	Line int
	// Key is the dotted path of the key ("port[0].mtu").
	Key string
	// Msg says what is wrong and what to change.
	Msg string
}

// String formats the problem as file: line N: key: message, as the CLI prints it.
func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Key != "" {
		b.WriteString(p.Key + ": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Error is returned by Parse and Load for a file that does not decode or
// does not validate. It lists every problem found.
type Error struct {
	// Name is the file's name as given to Parse.
	Name     string
	Problems []Problem
}

// ErrInvalid is matched by errors.Is for every *Error.
var ErrInvalid = errors.New("configs: invalid configuration")

// Error lists every problem, one per line.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = e.Name + ": " + p.String()
	}
	return "configs: " + strings.Join(lines, "\n")
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Load reads, decodes and validates the file at path.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("configs: %w", err)
	}
	return Parse(path, data)
}

// rawFile is File with the array tables kept undecoded, so that each
// element can be decoded over its defaults: its Ports, the shallower
// field, stands in for File's under the same key.
type rawFile struct {
	File
	Ports []toml.Primitive `toml:"port"`
}

// Parse decodes and validates a configuration held in memory; name is used
// in error messages.
func Parse(name string, data []byte) (*File, error) {
	raw := rawFile{File: Defaults()}
	loc := newLocator(data)
	fail := func(ps ...Problem) error { return &Error{Name: name, Problems: ps} }

	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		return nil, fail(decodeProblem(err, loc))
	}
	f := &raw.File
	for i, p := range raw.Ports {
		pc := dataplane.DefaultPortConfig()
		if err := md.PrimitiveDecode(p, &pc); err != nil {
			pr := decodeProblem(err, loc)
			pr.Key = fmt.Sprintf("port[%d]", i)
			return nil, fail(pr)
		}
		f.Ports = append(f.Ports, pc)
	}
	var problems []Problem
	for _, k := range md.Undecoded() {
		key := k.String()
		problems = append(problems, Problem{Line: loc.line(key), Key: key,
			Msg: "unknown key: check its spelling and section against configs/default.toml"})
	}
	if len(problems) > 0 {
		return nil, fail(problems...)
	}
	if err := f.Validate(); err != nil {
		for _, fe := range fieldErrors(err) {
			problems = append(problems, Problem{Line: loc.line(fe.Key), Key: fe.Key, Msg: fe.Msg})
		}
		return nil, fail(problems...)
	}
	return f, nil
}

// Validate checks every section and the relations between them.
func (f *File) Validate() error {
	errs := confcheck.New("")
	f.Log.Validate(errs.Sub("log"))
	if f.Node.DataDir == "" || !filepath.IsAbs(f.Node.DataDir) {
		errs.Sub("node").Addf("data_dir", "%q must be an absolute path", f.Node.DataDir)
	}
	if f.Node.NetworkID == 0 {
		errs.Sub("node").Addf("network_id", "0 is reserved: use 1 for the public POOL network")
	}
	f.EAL.Validate(errs.Sub("eal"))
	if cores, err := dataplane.ParseCoreList(f.EAL.Cores); err == nil && len(cores) < 2 {
		errs.Sub("eal").Addf("cores", "%q has no worker core: list the main core and at least one worker, e.g. \"0-1\"", f.EAL.Cores)
	}
	if len(f.Ports) == 0 {
		errs.Addf("port", "no [[port]] tables: the relay needs at least one port")
	}
	names := make([]string, 0, len(f.Ports))
	for i, p := range f.Ports {
		pe := errs.Index("port", i)
		p.Validate(pe)
		for _, n := range names {
			if n == p.Name && n != "" {
				pe.Addf("name", "%q is used by another port", p.Name)
			}
		}
		names = append(names, p.Name)
	}
	f.Dataplane.Validate(errs.Sub("dataplane"), names)
	f.Ctl.Validate(errs.Sub("ctl"))
	f.Ledger.Validate(errs.Sub("ledger"))
	f.Sched.Validate(errs.Sub("sched"))
	f.Neigh.Validate(errs.Sub("neigh"))
	f.Control.Validate(errs.Sub("control"))
	f.validateStatic(errs.Sub("control"))
	return errs.Err()
}

// validateStatic checks what the static peers and routes need of the other
// sections: a port by the peer's name with an address of its family to send
// from, and room in the route table for every session and its reverse.
func (f *File) validateStatic(errs confcheck.Errors) {
	for i, sp := range f.Control.StaticPeers {
		pe := errs.Index("static_peer", i)
		ip, err := netip.ParseAddr(sp.IP)
		found := false
		for _, p := range f.Ports {
			if p.Name != sp.Port {
				continue
			}
			found = true
			family := false
			for _, a := range p.Addresses {
				if pfx, perr := netip.ParsePrefix(a); perr == nil && err == nil && pfx.Addr().Unmap().Is4() == ip.Unmap().Is4() {
					family = true
				}
			}
			if err == nil && !family {
				pe.Addf("ip", "port %q has no address of %s's family in its addresses: the relay could not send to it", p.Name, ip)
			}
		}
		if !found && sp.Port != "" {
			pe.Addf("port", "%q is not the name of a [[port]]", sp.Port)
		}
	}
	total := 0
	for i, r := range f.Control.StaticRoutes {
		if r.Count < 1 {
			continue
		}
		total += 2 * r.Count
		if total > f.Dataplane.MaxRoutes {
			errs.Index("static_route", i).Addf("count", "the static routes need %d route table entries (each session and its reverse) by this one, above [dataplane] max_routes = %d",
				total, f.Dataplane.MaxRoutes)
			return
		}
	}
}

func fieldErrors(err error) []*confcheck.FieldError {
	var out []*confcheck.FieldError
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			var fe *confcheck.FieldError
			if errors.As(e, &fe) {
				out = append(out, fe)
			}
		}
	}
	return out
}

// decodeProblem turns a TOML syntax or type error into a Problem.
func decodeProblem(err error, loc *locator) Problem {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		msg := pe.Message
		if pe.Usage != "" {
			msg += " (" + strings.TrimSpace(pe.Usage) + ")"
		}
		return Problem{Line: pe.Position.Line, Key: pe.LastKey, Msg: msg}
	}
	// Type mismatches come back as plain errors that carry the line and key
	// only in their text.
	if m := reTypeError.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Problem{Line: line, Key: m[2], Msg: m[3]}
	}
	return Problem{Msg: strings.TrimPrefix(err.Error(), "toml: ")}
}

var reTypeError = regexp.MustCompile(`^toml: line (\d+) \(last key "([^"]*)"\): (.*)$`)
