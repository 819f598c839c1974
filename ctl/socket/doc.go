// Package socket carries the control protocol of package ctl/api over a Unix
// stream socket: the daemon's Server and the CLI's Client.
//
// # Access
//
// The socket is the relay's administrative interface (it stops the relay and
// replaces its configuration), so access is checked twice. The file is
// created mode 0660 under a umask of 0117, in a directory created 0750, and
// given the configured group: only root, the daemon's user and that group can
// connect at all. Then each connection's peer credentials (SO_PEERCRED,
// reported by the kernel, not by the client) must show uid 0, the daemon's
// own uid, or membership of the socket's group (the primary group, the
// group database's members, or a group the connecting process holds, as
// sg or setpriv give one), unless more uids are allowed
// in Options; anyone else gets a permission_denied response and is
// disconnected. The second check still holds when the file's mode was
// widened by mistake or the socket was handed to another process.
//
// # Framing and limits
//
// Requests and responses are single JSON lines (see package ctl/api); a
// connection may carry several in turn. A line longer than api.MaxRequestSize
// is answered with too_large and the connection is closed (the stream cannot
// be resynchronised without reading the rest); a malformed, unknown or
// wrong-version request is answered with its error code and the connection
// stays usable. A connection idle for IdleTimeout is closed (one that has
// not sent its first request within FirstRequestTimeout, sooner), and a
// command runs under CommandTimeout. Nothing a client sends stops the server.
//
// # Slots
//
// The credentials are checked as soon as a connection is accepted, before it
// takes one of the MaxConns slots, so a refused user never holds one.
// Reserved slots are kept for root and the daemon's own user, and any other
// user holds at most MaxPerUID connections at once: a member of the socket's
// group looping on connect gets unavailable answers ("control socket busy")
// and never locks the operator out of stop or config confirm. Refusals are
// logged once, then at most once per 10 s with their count.
package socket
