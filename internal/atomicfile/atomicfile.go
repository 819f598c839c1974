// Package atomicfile writes files that a crash leaves either as they were
// or complete, and that are on disk once written: the one implementation of
// the write-temporary, fsync, rename, fsync-directory sequence for the
// identity key, the journal's header, the kept peers, the saved
// configuration and the exports.
//
// Each step's error is returned: a file whose fsync failed may be lost, and
// so may a rename whose directory fsync failed, so a caller that acknowledges
// or relies on the write must hear of either.
package atomicfile

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Options says how Write creates the file.
type Options struct {
	// Perm is the file's mode; zero means 0600.
	Perm fs.FileMode
	// NoReplace makes Write fail with an error matching fs.ErrExist where
	// path already exists, instead of replacing it: the file is linked
	// into place (link(2) refuses an existing name, rename(2) does not),
	// so of two processes creating the same file one wins and the other
	// learns of it.
	NoReplace bool
	// Prepare, if set, is called on the temporary file after its mode is
	// set and before anything is written to it (to give it an owner, say);
	// its error aborts the write and is returned as it is.
	Prepare func(*os.File) error
}

// WriteFile writes data to path atomically and durably (see Write).
func WriteFile(path string, data []byte, o Options) error {
	return Write(path, o, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write creates path with what fill writes: into a temporary file beside
// path, which is fsynced, closed, renamed (or with NoReplace linked) over
// path, after which path's directory is fsynced. Once Write returns nil the
// file survives a crash; if it fails, path is as it was and no temporary
// file is left. fill's own error is returned unwrapped, so callers can test
// it; the file system's come prefixed "atomicfile: ".
func Write(path string, o Options, fill func(io.Writer) error) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	// After a rename the name is gone and this fails harmlessly; after a
	// link or a failure it removes the temporary file.
	defer os.Remove(tmp.Name())
	if err := fillTemp(tmp, o, fill); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	if o.NoReplace {
		err = os.Link(tmp.Name(), path)
	} else {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	return SyncDir(dir)
}

// fillTemp sets tmp's mode, lets the caller prepare it, writes it and
// fsyncs it.
func fillTemp(tmp *os.File, o Options, fill func(io.Writer) error) error {
	perm := o.Perm
	if perm == 0 {
		perm = 0o600
	}
	// CreateTemp makes the file 0600 whatever the umask; Chmod gives it
	// the mode asked for, also regardless of the umask.
	if err := tmp.Chmod(perm); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	if o.Prepare != nil {
		if err := o.Prepare(tmp); err != nil {
			return err
		}
	}
	if err := fill(tmp); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	return nil
}

// SyncDir fsyncs the directory dir, which makes the names created in,
// renamed into or removed from it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("atomicfile: sync %s: %w", dir, err)
	}
	return nil
}
