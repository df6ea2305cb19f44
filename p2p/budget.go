package p2p

import (
	"context"
	"sync"
)

// byteBudget bounds the bytes of inbound messages held at once across all
// streams. The per-message limit alone would still let a peer open many
// streams and make the node allocate limit × streams.
type byteBudget struct {
	mu   sync.Mutex
	free int64
	wake chan struct{} // closed and replaced on every release
}

func newByteBudget(capacity int64) *byteBudget {
	return &byteBudget{free: capacity, wake: make(chan struct{})}
}

// acquire waits until n bytes are free or ctx ends. n must not exceed the
// capacity (the caller has already checked it against the message limit,
// which is never above the capacity).
func (b *byteBudget) acquire(ctx context.Context, n int64) error {
	for {
		b.mu.Lock()
		if b.free >= n {
			b.free -= n
			b.mu.Unlock()
			return nil
		}
		wake := b.wake
		b.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (b *byteBudget) release(n int64) {
	b.mu.Lock()
	b.free += n
	close(b.wake)
	b.wake = make(chan struct{})
	b.mu.Unlock()
}
