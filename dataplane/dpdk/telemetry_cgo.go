//go:build linux && cgo

package dpdk

// /* Declarations only: this file has an //export, so its preamble is
//    copied into _cgo_export.h. */
// #include "telemetry.h"
import "C"

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// telemetrySocketName is the v2 socket's file in the EAL runtime directory.
const telemetrySocketName = "dpdk_telemetry.v2"

// telemetryCmd is one registered command.
type telemetryCmd struct {
	e    *EAL
	name string
	fn   TelemetryFunc

	// The fields below are reused from request to request; every answer
	// holds e.mu, which guards them.
	vals   []TelemetryValue
	layout telemetryLayout
	dicts  []*C.struct_rte_tel_data // the reply's groups, in layout order
	cname  [MaxTelemetryNameLen + 1]C.uchar
}

// telemetryCmds holds every command registered in the process, by name.
// DPDK's telemetry is process-wide like the EAL: its callbacks receive
// only the command name (22.11 has no user argument; later releases added
// one), and a command cannot be unregistered, so an entry stays until the
// process exits and answers with an empty object once its EAL is closed.
var telemetryCmds struct {
	mu     sync.Mutex
	byName map[string]*telemetryCmd
}

// RegisterTelemetry registers cmd (for example "/poolrelay/ports") on the
// EAL's telemetry socket, with help as the answer to "/help,cmd". Each
// request for cmd calls fn, on a DPDK telemetry thread, and sends the
// values it returns as a JSON object (see TelemetryValue and
// TelemetryFunc). A reply that would exceed DPDK's limits (256 members per
// object, 16 KiB of JSON) carries the values that fit and, under
// TelemetryTruncatedKey, the number of those left out.
//
// cmd must start with '/' and hold at most MaxTelemetryCmdLen ASCII
// letters, digits, '_' or '/'; help at most MaxTelemetryHelpLen bytes.
// Errors wrap ErrTelemetryName for a name DPDK would refuse (or one of the
// protocol's own, "/", "/info" and "/help"), ErrTelemetryExists for a
// name registered before, and ErrClosed after Close. The command cannot be
// removed: DPDK 22.11 has no unregister. After Close it answers {} and fn
// is never called again.
//
// Registering works whether or not the EAL has a telemetry socket
// (TelemetrySocket says); without one nobody can ask.
func (e *EAL) RegisterTelemetry(cmd, help string, fn TelemetryFunc) error {
	if err := checkTelemetryCmd(cmd, help, fn); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.checkLocked(); err != nil {
		return err
	}
	telemetryCmds.mu.Lock()
	defer telemetryCmds.mu.Unlock()
	if telemetryCmds.byName[cmd] != nil {
		return fmt.Errorf("%w: %s", ErrTelemetryExists, cmd)
	}
	// DPDK copies both strings; checkTelemetryCmd bounded their lengths.
	var ccmd [MaxTelemetryCmdLen + 1]C.char
	var chelp [MaxTelemetryHelpLen + 1]C.char
	cString(ccmd[:], cmd)
	cString(chelp[:], help)
	// Into the registry first: DPDK may call the handler as soon as the
	// command is registered.
	if telemetryCmds.byName == nil {
		telemetryCmds.byName = make(map[string]*telemetryCmd)
	}
	telemetryCmds.byName[cmd] = &telemetryCmd{e: e, name: cmd, fn: fn}
	if rc := C.pr_tel_register(&ccmd[0], &chelp[0]); rc < 0 {
		delete(telemetryCmds.byName, cmd)
		return rteError("register telemetry command "+cmd, rc)
	}
	e.log.Debug().Str("command", cmd).Str("socket", e.TelemetrySocket()).Msg("telemetry command registered")
	return nil
}

// TelemetrySocket returns the path of the EAL's telemetry socket, the one
// dpdk-telemetry.py connects to, or "" when there is none: the EAL was
// started with --no-telemetry (for example through ExtraArgs), the socket
// could not be created, or the EAL is closed (Close removes the runtime
// directory, socket included).
func (e *EAL) TelemetrySocket() string {
	enabled := true
	for _, a := range e.args {
		switch a {
		case "--no-telemetry":
			enabled = false
		case "--telemetry":
			enabled = true
		}
	}
	path := filepath.Join(e.runtimeDir, telemetrySocketName)
	if fi, err := os.Stat(path); !enabled || err != nil || fi.Mode().Type() != fs.ModeSocket {
		return ""
	}
	return path
}

// prTelemetryAnswer is pr_tel_handler's way into Go: it answers the
// request for cmd with params (NULL without any) into d. It returns 0, or
// -1 for DPDK to answer {"cmd": null}.
//
//export prTelemetryAnswer
func prTelemetryAnswer(cmd, params *C.char, d *C.struct_rte_tel_data) C.int {
	name := C.GoString(cmd)
	telemetryCmds.mu.Lock()
	c := telemetryCmds.byName[name]
	telemetryCmds.mu.Unlock()
	if c == nil {
		// Only registered commands reach pr_tel_handler.
		return -1
	}
	var p string
	if params != nil {
		p = C.GoString(params)
	}
	return c.answer(p, d)
}

// answer fills d with fn's values for params. It holds the EAL's lock, so
// that it never runs during or after Close.
func (c *telemetryCmd) answer(params string, d *C.struct_rte_tel_data) C.int {
	c.e.mu.Lock()
	defer c.e.mu.Unlock()
	if C.pr_tel_start_dict(d) < 0 {
		return -1
	}
	if c.e.closed {
		return 0
	}
	vals, err := c.call(params)
	defer func() {
		clear(vals) // let go of the names until the next request
		c.vals = vals[:0]
	}()
	if err != nil {
		c.e.log.Debug().Err(err).Str("command", c.name).Str("params", params).Msg("telemetry request refused")
		return -1
	}
	c.fill(d, vals)
	return 0
}

// call runs fn. A panic in it would take the whole process down from a
// foreign thread, so it becomes an error (and a null reply) instead.
func (c *telemetryCmd) call(params string) (vals []TelemetryValue, err error) {
	defer func() {
		if r := recover(); r != nil {
			vals, err = c.vals[:0], fmt.Errorf("dpdk: telemetry command %s panicked: %v", c.name, r)
			c.e.log.Error().Err(err).Msg("telemetry command failed")
		}
	}()
	return c.fn(params, c.vals[:0])
}

// fill adds vals to the dict d as the layout places them, and the count of
// those that did not fit under TelemetryTruncatedKey.
func (c *telemetryCmd) fill(d *C.struct_rte_tel_data, vals []TelemetryValue) {
	c.layout.reset(c.name)
	clear(c.dicts)
	c.dicts = c.dicts[:0]
	var lost uint64 // placed but refused by DPDK: allocation failures only
	for _, v := range vals {
		g, isNew, ok := c.layout.place(v)
		if !ok {
			continue
		}
		dst := d
		if g >= 0 {
			if isNew {
				sanitizeTelemetryName(&c.cname, v.Group)
				c.dicts = append(c.dicts, C.pr_tel_add_dict(d, &c.cname[0]))
			}
			if dst = c.dicts[g]; dst == nil {
				lost++
				continue
			}
		}
		sanitizeTelemetryName(&c.cname, v.Name)
		if C.pr_tel_add_u64(dst, &c.cname[0], C.uint64_t(v.Value)) < 0 {
			lost++
		}
	}
	if n := c.layout.dropped + lost; n > 0 {
		sanitizeTelemetryName(&c.cname, TelemetryTruncatedKey)
		C.pr_tel_add_u64(d, &c.cname[0], C.uint64_t(n))
	}
}

// cString copies s, NUL terminated, into dst, which must be longer.
func cString(dst []C.char, s string) {
	for i := 0; i < len(s); i++ {
		dst[i] = C.char(s[i])
	}
	dst[len(s)] = 0
}
