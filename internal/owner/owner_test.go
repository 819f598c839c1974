package owner

import (
	"context"
	"errors"
	"testing"
	"time"
)

var errStopped = errors.New("stopped")

func TestDoRunsOnOwner(t *testing.T) {
	done := make(chan struct{})
	q := New(done, errStopped)
	state := 0
	go func() {
		for fn := range q.C() {
			fn()
			if state == 3 {
				close(done)
				return
			}
		}
	}()
	for i := 0; i < 2; i++ {
		if err := q.Do(context.Background(), func() { state++ }); err != nil {
			t.Fatal(err)
		}
	}
	q.Post(func() { state++ })
	<-done
	if state != 3 {
		t.Fatalf("state %d", state)
	}
	if err := q.Do(context.Background(), func() { state++ }); !errors.Is(err, errStopped) {
		t.Fatalf("Do after the owner stopped: %v", err)
	}
	q.Post(func() { state++ }) // dropped, must not block
	if state != 3 {
		t.Fatalf("ran after stop: %d", state)
	}
}

func TestDoHonoursContext(t *testing.T) {
	q := New(make(chan struct{}), errStopped)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := q.Do(ctx, func() {}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Do with nobody receiving: %v", err)
	}
}
