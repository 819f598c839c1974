package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// leftovers fails the test if Write left a temporary file in dir.
func leftovers(t *testing.T, dir string) {
	t.Helper()
	tmps, err := filepath.Glob(filepath.Join(dir, ".*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(tmps) != 0 {
		t.Errorf("temporary files left behind: %v", tmps)
	}
}

func TestWriteFileReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := WriteFile(path, []byte("one"), Options{}); err != nil {
		t.Fatal(err)
	}
	// 0666 is wider than the usual umask lets a create make: the mode is
	// set, not masked.
	if err := WriteFile(path, []byte("two"), Options{Perm: 0o666}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != "two" {
		t.Fatalf("read %q, %v; want \"two\"", got, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o666 {
		t.Errorf("mode %04o, want 0666", st.Mode().Perm())
	}
	leftovers(t, dir)
}

func TestDefaultPerm(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := WriteFile(path, nil, Options{}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o, want 0600", st.Mode().Perm())
	}
}

func TestNoReplace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := WriteFile(path, []byte("first"), Options{NoReplace: true}); err != nil {
		t.Fatal(err)
	}
	err := WriteFile(path, []byte("second"), Options{NoReplace: true})
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second write: %v, want fs.ErrExist", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "first" {
		t.Errorf("file holds %q, want the first write's", got)
	}
	leftovers(t, dir)
}

// A failing fill leaves the old file whole, returns fill's error as it is
// and no temporary file.
func TestFillErrorKeepsOld(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := WriteFile(path, []byte("old"), Options{}); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := Write(path, Options{}, func(w io.Writer) error {
		if _, err := w.Write([]byte("half")); err != nil {
			return err
		}
		return boom
	})
	if err != boom {
		t.Fatalf("Write: %v, want fill's error unwrapped", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "old" {
		t.Errorf("file holds %q after a failed write, want \"old\"", got)
	}
	leftovers(t, dir)
}

func TestPrepare(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	no := errors.New("no")
	var saw os.FileMode
	err := WriteFile(path, []byte("x"), Options{Perm: 0o640, Prepare: func(f *os.File) error {
		st, err := f.Stat()
		if err != nil {
			return err
		}
		saw = st.Mode().Perm()
		return no
	}})
	if err != no {
		t.Fatalf("Write: %v, want Prepare's error", err)
	}
	if saw != 0o640 {
		t.Errorf("Prepare saw mode %04o, want 0640 set before it", saw)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("file created despite Prepare's error: %v", err)
	}
	leftovers(t, dir)
}

func TestMissingDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no", "f")
	if err := WriteFile(path, nil, Options{}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Write into a missing directory: %v, want fs.ErrNotExist", err)
	}
	if err := SyncDir(filepath.Dir(path)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("SyncDir of a missing directory: %v, want fs.ErrNotExist", err)
	}
}
