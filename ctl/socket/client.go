package socket

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/poolrelay/poolrelay/ctl/api"
)

// ErrNoDaemon: nothing listens on the socket (the relay is not running, or
// runs with another [ctl] socket).
var ErrNoDaemon = errors.New("socket: no relay is listening")

// Client talks to a Server. It implements api.Backend, so code written
// against the daemon's interface runs unchanged over the socket. Each call
// uses its own connection: CLI invocations make one call, and a connection
// per call keeps a slow call from holding up another.
type Client struct {
	// Path is the socket's file name.
	Path string
	// Timeout bounds a call when the context has no deadline; 0 means
	// DefaultCommandTimeout plus a little, so the server's own timeout
	// answers first.
	Timeout time.Duration
}

var _ api.Backend = (*Client)(nil)

// Call sends cmd with args (nil for none) and decodes the result into
// result (nil to discard it). A failed response is returned as its
// *api.Error.
func (c *Client) Call(ctx context.Context, cmd string, args, result any) error {
	req := api.Request{V: api.Version, Cmd: cmd}
	if args != nil {
		raw, err := json.Marshal(args)
		if err != nil {
			return fmt.Errorf("socket: encoding %s args: %w", cmd, err)
		}
		req.Args = raw
	}
	line, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	resp, err := c.RoundTrip(ctx, append(line, '\n'))
	if err != nil {
		return err
	}
	if !resp.OK {
		if resp.Error == nil {
			return api.Errorf(api.CodeInternal, "failed response without an error")
		}
		return resp.Error
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(resp.Result, result); err != nil {
		return fmt.Errorf("socket: decoding the %s result: %w", cmd, err)
	}
	return nil
}

// RoundTrip sends raw bytes (one request line, or anything else: tests send
// malformed ones) and reads one response.
func (c *Client) RoundTrip(ctx context.Context, raw []byte) (api.Response, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultCommandTimeout + 5*time.Second
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.Path)
	if err != nil {
		return api.Response{}, dialError(c.Path, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	// Closing the connection when ctx ends unblocks the read below.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	if _, err := conn.Write(raw); err != nil {
		// The server may have answered (permission_denied) and closed
		// before we finished writing; its answer is still worth reading.
		if resp, rerr := readResponse(conn); rerr == nil {
			return resp, nil
		}
		return api.Response{}, fmt.Errorf("socket: sending to %s: %w", c.Path, err)
	}
	resp, err := readResponse(conn)
	if err != nil {
		if ctx.Err() != nil {
			return api.Response{}, fmt.Errorf("socket: %s: %w", c.Path, ctx.Err())
		}
		return api.Response{}, err
	}
	return resp, nil
}

func readResponse(r io.Reader) (api.Response, error) {
	br := bufio.NewReader(io.LimitReader(r, api.MaxResponseSize+1))
	line, err := br.ReadBytes('\n')
	if err != nil && !(errors.Is(err, io.EOF) && len(line) > 0) {
		if errors.Is(err, io.EOF) {
			return api.Response{}, errors.New("socket: the relay closed the connection without answering")
		}
		return api.Response{}, fmt.Errorf("socket: reading the response: %w", err)
	}
	var resp api.Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return api.Response{}, fmt.Errorf("socket: malformed response: %w", err)
	}
	if resp.V != api.Version {
		return api.Response{}, fmt.Errorf("socket: the relay answered with protocol version %d; this CLI speaks %d", resp.V, api.Version)
	}
	return resp, nil
}

func dialError(path string, err error) error {
	switch {
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w on %s (is pool_relay running? --socket names another socket)", ErrNoDaemon, path)
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return api.Errorf(api.CodePermissionDenied, "%s: permission denied (run as root or as a member of the socket's group)", path)
	}
	return fmt.Errorf("socket: connecting to %s: %w", path, err)
}

// Status implements api.Backend.
func (c *Client) Status(ctx context.Context) (r api.Status, err error) {
	err = c.Call(ctx, api.CmdStatus, nil, &r)
	return r, err
}

// Peers implements api.Backend.
func (c *Client) Peers(ctx context.Context) (r []api.Peer, err error) {
	err = c.Call(ctx, api.CmdPeers, nil, &r)
	return r, err
}

// Stats implements api.Backend.
func (c *Client) Stats(ctx context.Context) (r api.Stats, err error) {
	err = c.Call(ctx, api.CmdStats, nil, &r)
	return r, err
}

// Routes implements api.Backend.
func (c *Client) Routes(ctx context.Context) (r []api.Route, err error) {
	err = c.Call(ctx, api.CmdRoutes, nil, &r)
	return r, err
}

// RouteAdd implements api.Backend.
func (c *Client) RouteAdd(ctx context.Context, spec api.RouteSpec) (r api.Route, err error) {
	err = c.Call(ctx, api.CmdRouteAdd, spec, &r)
	return r, err
}

// RouteDel implements api.Backend.
func (c *Client) RouteDel(ctx context.Context, session string) error {
	return c.Call(ctx, api.CmdRouteDel, api.RouteDelArgs{Session: session}, nil)
}

// Score implements api.Backend.
func (c *Client) Score(ctx context.Context) (r api.Score, err error) {
	err = c.Call(ctx, api.CmdScore, nil, &r)
	return r, err
}

// Cheques implements api.Backend.
func (c *Client) Cheques(ctx context.Context) (r []api.Cheque, err error) {
	err = c.Call(ctx, api.CmdCheques, nil, &r)
	return r, err
}

// Enroll implements api.Backend.
func (c *Client) Enroll(ctx context.Context, address string) (r api.Peer, err error) {
	err = c.Call(ctx, api.CmdEnroll, api.EnrollArgs{Address: address}, &r)
	return r, err
}

// Unenroll implements api.Backend.
func (c *Client) Unenroll(ctx context.Context, peer string) (r api.Unenrolled, err error) {
	err = c.Call(ctx, api.CmdUnenroll, api.UnenrollArgs{Peer: peer}, &r)
	return r, err
}

// Stop implements api.Backend.
func (c *Client) Stop(ctx context.Context) error {
	return c.Call(ctx, api.CmdStop, nil, nil)
}

// ConfigShow implements api.Backend.
func (c *Client) ConfigShow(ctx context.Context) (r api.ConfigState, err error) {
	err = c.Call(ctx, api.CmdConfigShow, nil, &r)
	return r, err
}

// ConfigApply implements api.Backend.
func (c *Client) ConfigApply(ctx context.Context, a api.ConfigApplyArgs) (r api.ConfigState, err error) {
	err = c.Call(ctx, api.CmdConfigApply, a, &r)
	return r, err
}

// ConfigConfirm implements api.Backend.
func (c *Client) ConfigConfirm(ctx context.Context) (r api.ConfigState, err error) {
	err = c.Call(ctx, api.CmdConfigConfirm, nil, &r)
	return r, err
}

// ConfigRollback implements api.Backend.
func (c *Client) ConfigRollback(ctx context.Context) (r api.ConfigState, err error) {
	err = c.Call(ctx, api.CmdConfigRollback, nil, &r)
	return r, err
}

// Trace implements api.Backend.
func (c *Client) Trace(ctx context.Context, a api.TraceArgs) (r api.Trace, err error) {
	err = c.Call(ctx, api.CmdTrace, a, &r)
	return r, err
}

// JournalVerify implements api.Backend.
func (c *Client) JournalVerify(ctx context.Context) (r api.JournalSummary, err error) {
	err = c.Call(ctx, api.CmdJournalVerify, nil, &r)
	return r, err
}
