// Package tmpfs mounts small tmpfs file systems for tests that need a disk
// that fills up (the journal's degraded state, the daemon on a full disk),
// and fills and frees them.
package tmpfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// Mount mounts a tmpfs of size bytes on a new directory under t.TempDir()
// and unmounts it when the test ends. It needs root: without it the test is
// skipped, or failed under CI (CI runs as root, so a skip there would hide
// the test).
func Mount(t testing.TB, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("tmpfs: mounting needs root; CI runs as root")
		}
		t.Skip("skipping: mounting a tmpfs needs root")
	}
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		t.Fatalf("tmpfs: mount: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("tmpfs: unmount %s: %v", dir, err)
		}
	})
	return dir
}

// Free is the space left on the file system holding dir, in bytes.
func Free(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("tmpfs: statfs %s: %w", dir, err)
	}
	return int64(st.Bavail) * st.Bsize, nil
}

// Fill writes a file named name in dir until the file system has at most
// leave bytes free (rounded down to pages by the kernel), and returns its
// path; remove it to give the space back.
func Fill(dir, name string, leave int64) (string, error) {
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return "", fmt.Errorf("tmpfs: %w", err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		free, err := Free(dir)
		if err != nil {
			return "", err
		}
		if free <= leave {
			return path, nil
		}
		n := min(int64(len(buf)), free-leave)
		if _, err := f.Write(buf[:n]); err != nil {
			if errors.Is(err, unix.ENOSPC) {
				return path, nil
			}
			return "", fmt.Errorf("tmpfs: %w", err)
		}
	}
}
