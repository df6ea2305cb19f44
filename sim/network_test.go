package sim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dafnet/daf/gossip"
)

func TestNetworkTransport(t *testing.T) {
	n := NewNetwork()
	a, b, c := n.Join("a"), n.Join("b"), n.Join("c")
	var got atomic.Int64
	b.Handle(gossip.ProtoDelta, func(from gossip.PeerID, msg []byte) error {
		if from != "a" {
			return fmt.Errorf("unexpected sender %s", from)
		}
		if string(msg) == "bad" {
			return gossip.ErrSignature
		}
		got.Add(int64(len(msg)))
		return nil
	})
	ctx := context.Background()
	if err := a.Send(ctx, "b", gossip.ProtoDelta, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	err := a.Send(ctx, "b", gossip.ProtoDelta, []byte("bad"))
	if !errors.Is(err, gossip.ErrRefused) || !errors.Is(err, gossip.ErrSignature) {
		t.Fatalf("refusal: err = %v, want ErrRefused wrapping the reason", err)
	}
	if err := a.Send(ctx, "b", gossip.ProtoKeys, nil); !errors.Is(err, gossip.ErrRefused) {
		t.Fatalf("unhandled protocol: err = %v", err)
	}
	n.Partition([]gossip.PeerID{"a"}, []gossip.PeerID{"b", "c"})
	if err := a.Send(ctx, "b", gossip.ProtoDelta, []byte("x")); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("across a partition: err = %v", err)
	}
	if p := c.Peers(); !slices.Equal(p, []gossip.PeerID{"b"}) {
		t.Fatalf("peers of c in partition: %v", p)
	}
	n.Heal()
	n.SetDown("b", true)
	if err := a.Send(ctx, "b", gossip.ProtoDelta, []byte("x")); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("to a down node: err = %v", err)
	}
	n.SetDown("b", false)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := a.Send(cctx, "b", gossip.ProtoDelta, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: err = %v", err)
	}
	// Concurrent senders (run with -race).
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				a.Send(ctx, "b", gossip.ProtoDelta, []byte("0123456789"))
			}
		}()
	}
	wg.Wait()
	if got.Load() != 5+8*100*10 {
		t.Fatalf("handler saw %d bytes, want %d", got.Load(), 5+8*100*10)
	}
	if n.BytesSent("a") != n.BytesReceived("b") || n.BytesSent("a") != 5+3+8*100*10 {
		t.Fatalf("byte counters: sent %d received %d", n.BytesSent("a"), n.BytesReceived("b"))
	}
}
