package socket

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
)

// Cred is the identity of a connecting process as the kernel reports it.
type Cred struct {
	PID      int32
	UID, GID uint32
}

// Policy decides who may use the socket.
type Policy struct {
	// Self is the daemon's effective uid, always allowed.
	Self uint32
	// Group is the socket file's group: its members are allowed.
	Group uint32
	// AllowUIDs are further users allowed regardless of group.
	AllowUIDs []uint32
	// groupsOf returns the supplementary groups of a uid; nil uses the
	// system's group database. Tests replace it.
	groupsOf func(uid uint32) ([]uint32, error)
	// procGroupsOf returns the groups a running process holds, and its
	// effective uid; nil reads /proc. Tests replace it.
	procGroupsOf func(pid int32) (euid uint32, gids []uint32, err error)
}

// Allow reports whether c may use the socket, and why not.
func (p *Policy) Allow(c Cred) error {
	switch {
	case c.UID == 0, c.UID == p.Self, c.GID == p.Group, slices.Contains(p.AllowUIDs, c.UID):
		return nil
	}
	// SO_PEERCRED carries only the primary group; a member through a
	// supplementary group is found in the group database.
	groupsOf := p.groupsOf
	if groupsOf == nil {
		groupsOf = systemGroups
	}
	gids, err := groupsOf(c.UID)
	if err == nil && slices.Contains(gids, p.Group) {
		return nil
	}
	// A process given the group without the database knowing (sg,
	// setpriv, newgrp, a container's injected groups) passed the kernel's
	// check of the socket file's mode with the groups it holds: those
	// count too, read from /proc while the connection is open. The
	// effective uid must still be the one SO_PEERCRED reported, so a pid
	// reused since the connect cannot lend its groups.
	procGroupsOf := p.procGroupsOf
	if procGroupsOf == nil {
		procGroupsOf = processGroups
	}
	if euid, gids, err := procGroupsOf(c.PID); err == nil && euid == c.UID && slices.Contains(gids, p.Group) {
		return nil
	}
	return fmt.Errorf("uid %d (gid %d, pid %d) is neither root, the relay's user, nor a member of group %d", c.UID, c.GID, c.PID, p.Group)
}

// systemGroups looks up uid's groups in the group database (/etc/group
// without cgo, which is what the relay is built with).
func systemGroups(uid uint32) ([]uint32, error) {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		return nil, err
	}
	ids, err := u.GroupIds()
	if err != nil {
		return nil, err
	}
	gids := make([]uint32, 0, len(ids))
	for _, s := range ids {
		if g, err := strconv.ParseUint(s, 10, 32); err == nil {
			gids = append(gids, uint32(g))
		}
	}
	return gids, nil
}

// processGroups reads a process's effective uid and supplementary groups
// from /proc/PID/status.
func processGroups(pid int32) (uint32, []uint32, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(int(pid)) + "/status")
	if err != nil {
		return 0, nil, err
	}
	return parseStatus(b)
}

// parseStatus takes the effective uid (the second field of the Uid line)
// and the Groups line out of a /proc/PID/status file. A status without
// both, or with a number that does not parse, is an error: the caller
// then decides on the group database alone.
func parseStatus(b []byte) (euid uint32, gids []uint32, err error) {
	var haveUID, haveGroups bool
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, val, ok := bytes.Cut(sc.Bytes(), []byte(":"))
		if !ok {
			continue
		}
		switch string(key) {
		case "Uid":
			f := bytes.Fields(val)
			if len(f) < 2 {
				return 0, nil, fmt.Errorf("socket: /proc status: Uid line %q", val)
			}
			u, err := strconv.ParseUint(string(f[1]), 10, 32)
			if err != nil {
				return 0, nil, fmt.Errorf("socket: /proc status: Uid: %w", err)
			}
			euid, haveUID = uint32(u), true
		case "Groups":
			for _, f := range bytes.Fields(val) {
				g, err := strconv.ParseUint(string(f), 10, 32)
				if err != nil {
					return 0, nil, fmt.Errorf("socket: /proc status: Groups: %w", err)
				}
				gids = append(gids, uint32(g))
			}
			haveGroups = true
		}
	}
	if err := sc.Err(); err != nil {
		return 0, nil, fmt.Errorf("socket: /proc status: %w", err)
	}
	if !haveUID || !haveGroups {
		return 0, nil, fmt.Errorf("socket: /proc status without Uid and Groups lines")
	}
	return euid, gids, nil
}
