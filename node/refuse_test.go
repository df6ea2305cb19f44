package node

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dafnet/daf/gossip"
	"github.com/dafnet/daf/p2p"
	"github.com/dafnet/daf/seal"
)

// A peer that sends garbage or an oversize message is refused with a
// reason, and the refusal is counted.
func TestNodeRefusesBadDeltas(t *testing.T) {
	key, _ := seal.NewScopeKey(rand.Reader, "tenant", "lab", 1)
	n, err := New(Config{Fed: testFed(3), DataDir: t.TempDir(), ScopeKeys: []*seal.ScopeKey{key}, MaxMessageBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	peer, err := p2p.New(p2p.Config{Identity: priv, Bootstrap: n.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	waitCond(t, "connection", 10*time.Second, func() bool { return len(peer.Peers()) == 1 })
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	err = peer.Send(sctx, n.ID(), gossip.ProtoDelta, []byte("not an envelope"))
	if !errors.Is(err, gossip.ErrRefused) || !strings.Contains(err.Error(), "malformed") {
		t.Fatalf("garbage: err = %v, want a refusal naming it malformed", err)
	}
	err = peer.Send(sctx, n.ID(), gossip.ProtoDelta, make([]byte, 2<<20))
	if !errors.Is(err, gossip.ErrRefused) || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("oversize: err = %v, want a refusal naming the limit", err)
	}
	waitCond(t, "the rejection counted", 10*time.Second, func() bool {
		return metricValue(t, n.Metrics(), "daf_updates_received_total", "result", gossip.ResultRejectedMalformed) >= 1
	})
	if err := peer.Send(sctx, n.ID(), gossip.ProtoPeers, []byte{0xff}); !errors.Is(err, gossip.ErrRefused) {
		t.Fatalf("bad peer list: err = %v", err)
	}
}
