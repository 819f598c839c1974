package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/poolrelay/poolrelay/configs"
	"github.com/poolrelay/poolrelay/control"
	"github.com/poolrelay/poolrelay/ctl/api"
	"github.com/poolrelay/poolrelay/internal/atomicfile"
)

// ConfigShow implements api.Backend.
func (d *Daemon) ConfigShow(ctx context.Context) (api.ConfigState, error) {
	return d.configState(), nil
}

// ConfigApply implements api.Backend: the text is parsed and validated as
// `config check` would, then applied through the configctl manager,
// tentatively when ConfirmWithin is set.
func (d *Daemon) ConfigApply(ctx context.Context, a api.ConfigApplyArgs) (api.ConfigState, error) {
	f, err := configs.Parse("config", []byte(a.Config))
	if err != nil {
		return api.ConfigState{}, api.Errorf(api.CodeInvalidArgument, "%v", err)
	}
	sum := sha256.Sum256([]byte(a.Config))
	note := "sha256=" + hex.EncodeToString(sum[:])
	if err := d.configs.Apply(&running{file: f, text: a.Config}, time.Duration(a.ConfirmWithin), note); err != nil {
		var ce *changeError
		if errors.As(err, &ce) {
			return api.ConfigState{}, api.Errorf(api.CodeConflict, "%v", err)
		}
		return api.ConfigState{}, err
	}
	s := d.configState()
	if a.ConfirmWithin == 0 {
		s.SavedTo = d.opts.ConfigPath
	}
	return s, nil
}

// ConfigConfirm implements api.Backend.
func (d *Daemon) ConfigConfirm(ctx context.Context) (api.ConfigState, error) {
	if _, ok := d.configs.Pending(); !ok {
		return api.ConfigState{}, api.Errorf(api.CodeConflict, "config confirm: no configuration is pending")
	}
	if err := d.configs.Confirm("by operator"); err != nil {
		return api.ConfigState{}, err
	}
	s := d.configState()
	s.SavedTo = d.opts.ConfigPath
	return s, nil
}

// ConfigRollback implements api.Backend.
func (d *Daemon) ConfigRollback(ctx context.Context) (api.ConfigState, error) {
	if _, ok := d.configs.Pending(); !ok {
		return api.ConfigState{}, api.Errorf(api.CodeConflict, "config rollback: no configuration is pending")
	}
	if err := d.configs.Rollback("by operator"); err != nil {
		return api.ConfigState{}, err
	}
	return d.configState(), nil
}

func (d *Daemon) configState() api.ConfigState {
	s := api.ConfigState{Config: d.configs.Current().text}
	if p, ok := d.configs.Pending(); ok {
		s.Pending = &api.PendingConfig{Applied: p.Applied.UTC(), Deadline: p.Deadline.UTC(), SHA256: strings.TrimPrefix(p.Note, "sha256=")}
	}
	return s
}

// changeError names the sections a configuration changes that the running
// relay cannot take without a restart.
type changeError struct{ sections []string }

func (e *changeError) Error() string {
	return fmt.Sprintf("daemon: %s cannot change while the relay runs: restart it with the new file (apply changes nothing)", strings.Join(e.sections, ", "))
}

// liveSections are the configuration sections that change on the running
// relay, each with the function applyConfig calls when the section changed;
// the log level is live too (restartSections masks it). A section is live
// only through its function here, so none is accepted and ignored: every
// other section, including one added to configs.File later, is refused
// while the relay runs unless it is unchanged.
var liveSections = map[string]func(d *Daemon, next *configs.File) error{
	"control": (*Daemon).applyControl,
}

// applyControl hands the control core its new settings.
func (d *Daemon) applyControl(next *configs.File) error {
	if err := d.core.SetConfig(next.Control); err != nil {
		if errors.Is(err, control.ErrNeedsRestart) {
			return &changeError{sections: []string{fmt.Sprintf("[control] (%v)", err)}}
		}
		return fmt.Errorf("daemon: [control]: %w", err)
	}
	return nil
}

// restartSections names, as "[section]", the sections that next changes
// from cur and that the running relay cannot take without a restart. It
// walks configs.File's fields, so a new section is refused until it is made
// live on purpose (TestApplyConfigSections checks every field).
func restartSections(cur, next *configs.File) []string {
	a, b := *cur, *next
	// The log level is set live; the rest of [log] (the format) is fixed
	// once the logger is built.
	a.Log.Level, b.Log.Level = "", ""
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	var fixed []string
	for i := range va.NumField() {
		name := sectionName(va.Type().Field(i))
		if liveSections[name] != nil {
			continue
		}
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			fixed = append(fixed, "["+name+"]")
		}
	}
	return fixed
}

// sectionName is a configs.File field's TOML section name.
func sectionName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	if name == "" {
		return strings.ToLower(f.Name)
	}
	return name
}

// applyConfig is the configctl Apply function. What changes live: the log
// level, and the control core's settings (liveSections). Sections that shape
// DPDK memory, ports, tables or the ledger's files need a restart; a
// configuration that changes one is refused whole, so the running one stays
// in force.
//
// It runs under the configctl manager's lock, so it must not call back into
// the manager: d.running is its own record of what runs.
func (d *Daemon) applyConfig(r *running) error {
	d.runMu.Lock()
	defer d.runMu.Unlock()
	cur := d.running.file
	next := r.file
	if fixed := restartSections(cur, next); len(fixed) > 0 {
		return &changeError{sections: fixed}
	}
	va, vb := reflect.ValueOf(*cur), reflect.ValueOf(*next)
	for i := range va.NumField() {
		apply := liveSections[sectionName(va.Type().Field(i))]
		if apply != nil && !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			if err := apply(d, next); err != nil {
				return err
			}
		}
	}
	if lvl, ok := levelChange(cur, next); ok {
		zerolog.SetGlobalLevel(lvl)
	}
	d.running = r
	return nil
}

// levelChange is the log level to set when next replaces cur, and whether
// there is one: only a [log] level that changed is set, so applying a file
// whose level is unchanged (a rollback to one, or the start file applied
// again) keeps the level start's --log-level put in force.
func levelChange(cur, next *configs.File) (zerolog.Level, bool) {
	if next.Log.Level == cur.Log.Level {
		return zerolog.NoLevel, false
	}
	lvl, err := zerolog.ParseLevel(next.Log.Level)
	return lvl, err == nil
}

// persistConfig saves a configuration that became permanent where the relay
// was started from, atomically and durably (internal/atomicfile), so a
// restart runs it.
func (d *Daemon) persistConfig(r *running) error {
	path := d.opts.ConfigPath
	if path == "" {
		return nil
	}
	// The file keeps its mode and owner: the operator chose them (a 0644
	// lab file, a root:pool_relay 0640 one under /etc), and a confirmation
	// must not change who can read it. A file that is gone is recreated
	// 0640, readable by the daemon's group only: it may name key paths.
	mode, uid, gid := os.FileMode(0o640), -1, -1
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
	}
	chown := func(f *os.File) error {
		if uid >= 0 {
			// Only root may give a file away; a daemon running as the
			// file's owner already has the right owner, so the error is
			// ignored.
			_ = f.Chown(uid, gid)
		}
		return nil
	}
	if err := atomicfile.WriteFile(path, []byte(r.text), atomicfile.Options{Perm: mode, Prepare: chown}); err != nil {
		return fmt.Errorf("daemon: save config: %w", err)
	}
	d.log.Info().Str("path", path).Str("mode", mode.String()).Msg("confirmed configuration saved over the start file")
	return nil
}
