// Package owner hands work to the one goroutine that owns some state: the
// control core's and the end node's loops keep their state unshared and take
// requests from other goroutines (the control socket, helpers that finished
// a puzzle) as closures run between packets, never under a lock.
package owner

import "context"

// Queue carries closures to the owner goroutine. The owner receives them
// from C and runs them; it closes the done channel given to New when it
// stops, which fails every waiting and later Do with the stopped error.
type Queue struct {
	reqs    chan func()
	done    <-chan struct{}
	stopped error
}

// New returns a queue whose owner signals its end by closing done; Do then
// returns stopped (the owner package's sentinel, such as ErrStopped).
func New(done <-chan struct{}, stopped error) *Queue {
	return &Queue{reqs: make(chan func()), done: done, stopped: stopped}
}

// C is what the owner selects on.
func (q *Queue) C() <-chan func() { return q.reqs }

// Do runs fn on the owner goroutine and waits until it has run. It returns
// ctx's error if ctx ends before the owner took fn, or the stopped error if
// the owner stopped first; once taken, fn runs to completion.
func (q *Queue) Do(ctx context.Context, fn func()) error {
	ran := make(chan struct{})
	select {
	case q.reqs <- func() { fn(); close(ran) }:
	case <-q.done:
		return q.stopped
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ran:
		return nil
	case <-q.done:
		return q.stopped
	}
}

// Post hands fn to the owner and returns once the owner has taken it,
// without waiting for it to run. The queue is unbuffered, so Post blocks
// while the owner is busy (a caller that must not block wants Do with a
// context), and the owner goroutine itself must never call it. If the owner
// has stopped, fn is dropped.
func (q *Queue) Post(fn func()) {
	select {
	case q.reqs <- fn:
	case <-q.done:
	}
}
