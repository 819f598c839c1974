package socket

import (
	"fmt"
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
