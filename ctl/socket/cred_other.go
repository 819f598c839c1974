//go:build !linux

package socket

import (
	"errors"
	"net"
)

// peerCred is unsupported off Linux: every connection is refused rather than
// admitted unchecked.
func peerCred(*net.UnixConn) (Cred, error) {
	return Cred{}, errors.New("socket: peer credentials are only supported on Linux")
}
