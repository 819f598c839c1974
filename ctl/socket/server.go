package socket

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/poolrelay/poolrelay/ctl/api"
)

// Defaults of Options.
const (
	// DefaultIdleTimeout closes a connection that sends nothing for this
	// long: a CLI sends its request at once, so only a stuck or hostile
	// client waits longer.
	DefaultIdleTimeout = 10 * time.Second
	// DefaultCommandTimeout bounds one command. The slowest legitimate one is
	// a trace waiting for frames, which an operator watches; two minutes
	// leaves room for it and still frees a forgotten one.
	DefaultCommandTimeout = 2 * time.Minute
	// DefaultMaxConns bounds concurrent connections: operators and scrapers
	// use a handful, so 32 is generous and caps what a loop of clients costs.
	DefaultMaxConns = 32
	// DefaultReserved of those are kept for root and the relay's own user,
	// so that a flood by the socket's group never locks the operator out
	// (stop, config confirm).
	DefaultReserved = 8
	// DefaultMaxPerUID bounds the connections of one other user: a CLI
	// needs one, `top` and a scraper one each.
	DefaultMaxPerUID = 4
	// DefaultFirstRequestTimeout closes a connection that has not sent its
	// first request in this long: a CLI writes it as soon as it connects,
	// so a slot held longer is a stuck or hostile client's.
	DefaultFirstRequestTimeout = 2 * time.Second
	// refuseLogEvery rate-limits the log of refused connections: the first
	// is logged, then one line per interval with the count.
	refuseLogEvery = 10 * time.Second
)

// Sentinel errors of Listen.
var (
	// ErrInUse: a live server already answers on the path.
	ErrInUse = errors.New("socket: another process is serving this socket")
	// ErrNotSocket: the path exists and is not a socket, so it is not ours
	// to remove.
	ErrNotSocket = errors.New("socket: path exists and is not a socket")
)

// Options configure Listen.
type Options struct {
	// Path is the socket's file name ([ctl] socket).
	Path string
	// Group names the group given the socket file, by name or number; its
	// members may use the socket. Empty keeps the daemon's group.
	Group string
	// AllowUIDs are further users allowed to connect whatever their group
	// (the file's mode must let them reach it too).
	AllowUIDs []uint32
	// Backend serves the commands. Required.
	Backend api.Backend
	// Log receives refused connections and I/O failures; logging.Nop()
	// when there is nothing to log to.
	Log zerolog.Logger
	// MaxRequest bounds a request line; 0 means api.MaxRequestSize.
	MaxRequest int
	// IdleTimeout, CommandTimeout, FirstRequestTimeout, MaxConns, Reserved
	// and MaxPerUID: 0 means the defaults. Reserved of the MaxConns slots
	// are for root and the daemon's own user only; any other user holds at
	// most MaxPerUID at once.
	IdleTimeout         time.Duration
	CommandTimeout      time.Duration
	FirstRequestTimeout time.Duration
	MaxConns            int
	Reserved            int
	MaxPerUID           int
}

// Server serves the control socket. Listen creates it, Serve runs it and
// Close stops it.
type Server struct {
	// Immutable after Listen.
	opts   Options
	path   string
	policy Policy
	ln     *net.UnixListener
	log    zerolog.Logger
	ctx    context.Context // cancelled by Close: ends running commands
	cancel context.CancelFunc
	wg     sync.WaitGroup // one per connection goroutine

	mu     sync.Mutex
	conns  map[*net.UnixConn]struct{}
	closed bool
	// others counts the connections of users other than root and the
	// daemon's, perUID each one's.
	others int
	perUID map[uint32]int
	// refused and refusedLog rate-limit the refusal log.
	refused    uint64
	refusedLog time.Time
}

// umaskMu serialises Listen's umask change within this process. The umask
// is process-wide, so another goroutine creating a file at that instant
// would get the restrictive mask too: harmless, and only at startup.
var umaskMu sync.Mutex

// Listen creates the socket: the parent directory (0750) if missing, a stale
// socket removed, the socket bound under umask 0117 so it is never
// accessible beyond 0660, then chmod 0660 and chown to Group.
func Listen(o Options) (*Server, error) {
	if o.Backend == nil {
		return nil, errors.New("socket: Options.Backend is required")
	}
	if o.MaxRequest <= 0 {
		o.MaxRequest = api.MaxRequestSize
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = DefaultCommandTimeout
	}
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.FirstRequestTimeout <= 0 {
		o.FirstRequestTimeout = DefaultFirstRequestTimeout
	}
	if o.Reserved <= 0 {
		o.Reserved = min(DefaultReserved, o.MaxConns/2)
	}
	if o.MaxPerUID <= 0 {
		o.MaxPerUID = DefaultMaxPerUID
	}
	if o.Reserved >= o.MaxConns {
		return nil, fmt.Errorf("socket: %d reserved connections leave none of %d for other users", o.Reserved, o.MaxConns)
	}
	gid := uint32(os.Getegid())
	if o.Group != "" {
		g, err := lookupGroup(o.Group)
		if err != nil {
			return nil, err
		}
		gid = g
	}
	if err := os.MkdirAll(filepath.Dir(o.Path), 0o750); err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	if err := removeStale(o.Path); err != nil {
		return nil, err
	}

	umaskMu.Lock()
	old := unix.Umask(0o117)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: o.Path, Net: "unix"})
	unix.Umask(old)
	umaskMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	// Close must not race a new daemon that already replaced the file, so
	// the path is removed by Close explicitly, not by the listener.
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(o.Path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("socket: %w", err)
	}
	if gid != uint32(os.Getegid()) {
		if err := os.Chown(o.Path, -1, int(gid)); err != nil {
			ln.Close()
			os.Remove(o.Path)
			return nil, fmt.Errorf("socket: giving the socket to group %s: %w", o.Group, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		opts:   o,
		path:   o.Path,
		policy: Policy{Self: uint32(os.Geteuid()), Group: gid, AllowUIDs: o.AllowUIDs},
		ln:     ln,
		log:    o.Log,
		ctx:    ctx,
		cancel: cancel,
		conns:  make(map[*net.UnixConn]struct{}),
		perUID: make(map[uint32]int),
	}, nil
}

// lookupGroup resolves a group name or number.
func lookupGroup(name string) (uint32, error) {
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		return uint32(n), nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, fmt.Errorf("socket: group %q: %w", name, err)
	}
	n, err := strconv.ParseUint(g.Gid, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("socket: group %q has gid %q", name, g.Gid)
	}
	return uint32(n), nil
}

// removeStale removes a socket left behind by a daemon that died, after
// checking that nobody answers on it: removing a live daemon's socket would
// leave it running but unreachable.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%w: %s", ErrNotSocket, path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%w: %s", ErrInUse, path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("socket: probing %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("socket: removing stale %s: %w", path, err)
	}
	return nil
}

// Path is the socket's file name.
func (s *Server) Path() string { return s.path }

// Serve accepts connections until Close, serving each on its own
// goroutine. It returns nil after Close.
//
// Who connected is checked at once, from the kernel's credentials, before
// the connection takes a slot: a refused user never holds one, and is told
// why. Slots are then counted per user (see Options), so that root always
// finds one free.
func (s *Server) Serve() error {
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if s.isClosed() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// EMFILE and the like: back off briefly rather than spin.
			s.log.Error().Err(err).Msg("accept failed")
			time.Sleep(50 * time.Millisecond)
			continue
		}
		cred, err := peerCred(c)
		if err == nil {
			err = s.policy.Allow(cred)
		}
		if err != nil {
			s.refuse(c, cred, "control connection refused", api.Errorf(api.CodePermissionDenied, "%v", err))
			continue
		}
		if why := s.track(c, cred); why != "" {
			s.refuse(c, cred, "control connection refused: "+why, api.Errorf(api.CodeUnavailable, "control socket busy: %s; try again", why))
			continue
		}
		go func() {
			defer s.untrack(c, cred)
			s.serveConn(c, cred)
		}()
	}
}

// refuseWrite bounds the write of a refusal: the answer fits in the socket
// buffer of a fresh connection, so only a broken client makes it wait.
const refuseWrite = 50 * time.Millisecond

// refuse answers a connection that gets no slot with the reason, closes it,
// and logs it, rate-limited: a flood must not flood the log too.
func (s *Server) refuse(c *net.UnixConn, cred Cred, msg string, err error) {
	b, _ := json.Marshal(api.Failure(err))
	c.SetWriteDeadline(time.Now().Add(refuseWrite))
	c.Write(append(b, '\n'))
	c.Close()
	s.mu.Lock()
	s.refused++
	n, now := s.refused, time.Now()
	logIt := now.Sub(s.refusedLog) >= refuseLogEvery
	if logIt {
		s.refusedLog, s.refused = now, 0
	}
	s.mu.Unlock()
	if logIt {
		s.log.Warn().Err(err).Int32("pid", cred.PID).Uint32("uid", cred.UID).Uint64("refused", n).
			Dur("per", refuseLogEvery).Msg(msg)
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// privileged: root and the daemon's own user, for whom Reserved slots are
// kept.
func (s *Server) privileged(c Cred) bool { return c.UID == 0 || c.UID == s.policy.Self }

// track registers a connection, or says why it gets no slot.
func (s *Server) track(c *net.UnixConn, cred Cred) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return "closing"
	case len(s.conns) >= s.opts.MaxConns:
		return fmt.Sprintf("all %d connections in use", s.opts.MaxConns)
	case s.privileged(cred):
	case s.others >= s.opts.MaxConns-s.opts.Reserved:
		return fmt.Sprintf("the %d connections open to other users than root are in use", s.opts.MaxConns-s.opts.Reserved)
	case s.perUID[cred.UID] >= s.opts.MaxPerUID:
		return fmt.Sprintf("uid %d already holds %d connections", cred.UID, s.opts.MaxPerUID)
	}
	if !s.privileged(cred) {
		s.others++
		s.perUID[cred.UID]++
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return ""
}

func (s *Server) untrack(c *net.UnixConn, cred Cred) {
	c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	if !s.privileged(cred) {
		s.others--
		if s.perUID[cred.UID]--; s.perUID[cred.UID] <= 0 {
			delete(s.perUID, cred.UID)
		}
	}
	s.mu.Unlock()
	s.wg.Done()
}

// Close stops accepting, cancels running commands, wakes idle connections,
// lets each write the response it owes, waits for them and removes the
// socket file. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	err := s.ln.Close()
	s.cancel()
	now := time.Now()
	for c := range s.conns {
		// A past read deadline ends a connection waiting for its next
		// request; one running a command still writes its response.
		c.SetReadDeadline(now)
	}
	s.mu.Unlock()
	s.wg.Wait()
	if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	return nil
}

// serveConn answers an admitted client's requests in turn.
func (s *Server) serveConn(c *net.UnixConn, cred Cred) {
	r := bufio.NewReaderSize(c, 64<<10)
	// The first request must come quickly (a CLI sends it as it connects);
	// later ones within IdleTimeout (a client such as top that asks again).
	wait := min(s.opts.FirstRequestTimeout, s.opts.IdleTimeout)
	for {
		// Checked and set under mu so that Close's wake-up deadline cannot
		// be overwritten by a fresh idle deadline.
		s.mu.Lock()
		closed := s.closed
		if !closed {
			c.SetReadDeadline(time.Now().Add(wait))
		}
		s.mu.Unlock()
		wait = s.opts.IdleTimeout
		if closed {
			return
		}
		line, err := readLine(r, s.opts.MaxRequest)
		if errors.Is(err, errTooLarge) {
			s.log.Warn().Uint32("uid", cred.UID).Int("limit", s.opts.MaxRequest).Msg("control request too large")
			s.respond(c, api.Failure(api.Errorf(api.CodeTooLarge, "request exceeds %d bytes", s.opts.MaxRequest)))
			return
		}
		if err != nil && (len(line) == 0 || !errors.Is(err, io.EOF)) {
			// EOF, idle timeout or Close: nothing owed. A line cut short by a
			// timeout is discarded; one ended by EOF is a complete request
			// from a client that half-closed instead of sending a newline.
			return
		}
		var resp api.Response
		req, derr := api.Decode(line)
		if derr != nil {
			resp = api.Failure(derr)
		} else {
			ctx, cancel := context.WithTimeout(context.WithValue(s.ctx, credKey{}, cred), s.opts.CommandTimeout)
			resp = api.Run(ctx, s.opts.Backend, req)
			cancel()
		}
		switch {
		case derr == nil && api.Mutating(req.Cmd):
			// Who stopped the relay or changed its configuration is worth
			// a line at info; reads are not.
			ev := s.log.Info()
			if !resp.OK {
				ev = s.log.Warn().Str("code", string(resp.Error.Code)).Str("error", resp.Error.Message)
			}
			ev.Str("cmd", req.Cmd).Uint32("uid", cred.UID).Int32("pid", cred.PID).Bool("ok", resp.OK).Msg("control command")
		case !resp.OK:
			s.log.Debug().Str("code", string(resp.Error.Code)).Str("error", resp.Error.Message).Uint32("uid", cred.UID).Msg("control request failed")
		}
		if !s.respond(c, resp) || err != nil {
			return
		}
	}
}

// respond writes one response line; false if the connection is unusable.
func (s *Server) respond(c *net.UnixConn, resp api.Response) bool {
	b, err := json.Marshal(resp)
	if err != nil {
		b, _ = json.Marshal(api.Failure(api.Errorf(api.CodeInternal, "encoding the response: %v", err)))
	}
	b = append(b, '\n')
	c.SetWriteDeadline(time.Now().Add(s.opts.IdleTimeout))
	if _, err := c.Write(b); err != nil {
		s.log.Debug().Err(err).Msg("control response not delivered")
		return false
	}
	return true
}

var errTooLarge = errors.New("socket: line too large")

type credKey struct{}

// CredFrom returns the credentials of the client whose command ctx belongs
// to, so the Backend can say who did what (config.apply's journal entry).
func CredFrom(ctx context.Context) (Cred, bool) {
	c, ok := ctx.Value(credKey{}).(Cred)
	return c, ok
}

// readLine reads up to and excluding the next newline. A final line without
// a newline is returned with the read error (io.EOF). More than max bytes
// is errTooLarge, without buffering them.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		frag, err := r.ReadSlice('\n')
		if len(line)+len(frag) > max {
			return nil, errTooLarge
		}
		line = append(line, frag...)
		switch {
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return line, err
		}
	}
}
