package sim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dafnet/daf/config"
	"github.com/dafnet/daf/gossip"
	"github.com/dafnet/daf/round"
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
	// As over libp2p, the refusal carries the reason's text and label,
	// not the receiver's error value.
	err := a.Send(ctx, "b", gossip.ProtoDelta, []byte("bad"))
	var r *gossip.Refusal
	if !errors.Is(err, gossip.ErrRefused) || !errors.As(err, &r) || r.Label != gossip.ResultRejectedSignature {
		t.Fatalf("refusal: err = %v, want a Refusal labelled %s", err, gossip.ResultRejectedSignature)
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

// SendOffered delivers the body only when the handler fetches it: a
// refusal on the offer costs the offer's bytes alone.
func TestNetworkOffered(t *testing.T) {
	n := NewNetwork()
	a, b := n.Join("a"), n.Join("b")
	var bodies atomic.Int64
	b.HandleOffered(gossip.ProtoDelta, func(from gossip.PeerID, offer []byte, fetch func(int) ([]byte, error)) error {
		switch string(offer) {
		case "have":
			return gossip.ErrDuplicate
		case "short":
			_, err := fetch(3)
			return err
		}
		body, err := fetch(10)
		if err != nil {
			return err
		}
		bodies.Add(int64(len(body)))
		return nil
	})
	ctx := context.Background()
	body := []byte("0123456789")
	if err := a.SendOffered(ctx, "b", gossip.ProtoDelta, []byte("want"), body); err != nil {
		t.Fatal(err)
	}
	var r *gossip.Refusal
	if err := a.SendOffered(ctx, "b", gossip.ProtoDelta, []byte("have"), body); !errors.As(err, &r) || r.Label != gossip.ResultDuplicate {
		t.Fatalf("duplicate offer: err = %v", err)
	}
	if err := a.SendOffered(ctx, "b", gossip.ProtoDelta, []byte("short"), body); err == nil || errors.Is(err, gossip.ErrRefused) {
		t.Fatalf("a body of another size than asked: err = %v, want a transfer failure", err)
	}
	if bodies.Load() != 10 {
		t.Fatalf("handler took %d body bytes, want 10", bodies.Load())
	}
	if want := uint64(4 + 10 + 4 + 5); n.BytesSent("a") != want || n.BytesReceived("b") != want {
		t.Fatalf("byte counters: sent %d received %d, want %d (offers, and the one body fetched)", n.BytesSent("a"), n.BytesReceived("b"), want)
	}
	if err := a.SendOffered(ctx, "b", gossip.ProtoKeys, []byte("want"), body); !errors.Is(err, gossip.ErrRefused) {
		t.Fatalf("unhandled protocol: err = %v", err)
	}
}

// In a federation large enough that relays race (16 nodes, fan-out 4, so
// most releases reach a node from two relays at once), every node takes
// each other node's release exactly once: offers of held releases are
// refused, and an offer that arrives while the same body is on its way
// waits for it and is then refused too. No body travels twice.
func TestClusterSendsEachBodyOnce(t *testing.T) {
	rc, err := round.FromConfig(config.Default(), "template", true)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCluster(ClusterConfig{Nodes: 16, Round: rc, Params: 64, Seed: 3, Latency: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s := c.Schedule()
	c.RunUntil(s.End(2))
	var accepted, late uint64
	for _, n := range c.Nodes {
		st := n.M.Stats()
		if st.RoundsCompleted != 3 {
			t.Fatalf("%s completed %d rounds, want 3", n.ID, st.RoundsCompleted)
		}
		accepted += st.Gossip.Received[gossip.ResultAccepted]
		late += st.Gossip.Received[gossip.ResultLate]
	}
	if want := uint64(3 * 16 * 15); accepted != want || late != 0 {
		t.Fatalf("%d releases accepted, %d late, want %d and 0", accepted, late, want)
	}
	d := c.delivered
	if d.bodies != int(accepted) {
		t.Fatalf("%d bodies delivered for %d releases taken", d.bodies, accepted)
	}
	if d.offers <= d.bodies || d.parked == 0 {
		t.Fatalf("offers %d, bodies %d, parked %d: the run did not exercise refused and waiting offers", d.offers, d.bodies, d.parked)
	}
	t.Logf("offers %d, bodies %d, parked %d", d.offers, d.bodies, d.parked)
}
