package p2p

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dafnet/daf/gossip"
)

// The two-step stream: a wanted body arrives whole, a refused offer costs
// the offer alone (the body is never sent), a body over the limit is
// refused on the offer's announcement, and a body of another length than
// announced fails the transfer.
func TestSendOffered(t *testing.T) {
	a := newHost(t, Config{MaxMessageBytes: 4 << 20})
	b := newHost(t, Config{Bootstrap: a.Addrs()})
	var bodies atomic.Int64
	a.HandleOffered(gossip.ProtoDelta, func(from gossip.PeerID, offer []byte, fetch func(int) ([]byte, error)) error {
		if from != b.Self() {
			return errors.New("wrong sender")
		}
		var size int
		switch o := string(offer[:4]); o {
		case "have":
			return errors.New("duplicate: held")
		case "huge":
			size = 8 << 20
		case "want":
			size = 1_500_000
		case "less":
			size = 10
		case "take":
			return nil // accepted on the offer alone
		}
		body, err := fetch(size)
		if err != nil {
			return err
		}
		bodies.Add(int64(len(body)))
		if !bytes.Equal(body[:5], []byte{1, 2, 3, 4, 5}) {
			return errors.New("body mangled")
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	body := bytes.Repeat([]byte{1, 2, 3, 4, 5}, 300_000) // 1.5 MB: many flow-control windows

	if err := b.SendOffered(ctx, a.Self(), gossip.ProtoDelta, []byte("want-offer"), body); err != nil {
		t.Fatal(err)
	}
	if bodies.Load() != int64(len(body)) {
		t.Fatalf("handler got %d body bytes, want %d", bodies.Load(), len(body))
	}
	sent := b.BytesSent()
	if want := uint64(4 + 10 + 4 + len(body)); sent != want {
		t.Fatalf("BytesSent = %d, want %d", sent, want)
	}
	err := b.SendOffered(ctx, a.Self(), gossip.ProtoDelta, []byte("have-offer"), body)
	if !errors.Is(err, gossip.ErrRefused) || !strings.Contains(err.Error(), "duplicate: held") {
		t.Fatalf("refused offer: err = %v", err)
	}
	if got := b.BytesSent() - sent; got != 4+10 {
		t.Fatalf("a refused offer cost %d bytes, want the offer's 14", got)
	}
	if err := b.SendOffered(ctx, a.Self(), gossip.ProtoDelta, []byte("take-offer"), body); err != nil {
		t.Fatalf("accepted on the offer: %v", err)
	}
	start := time.Now()
	err = b.SendOffered(ctx, a.Self(), gossip.ProtoDelta, []byte("huge-offer"), make([]byte, 8<<20))
	if !errors.Is(err, gossip.ErrRefused) || !strings.Contains(err.Error(), "limit 4194304") {
		t.Fatalf("body over the limit: err = %v, want a refusal naming the limit", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("refusal took %v", time.Since(start))
	}
	err = b.SendOffered(ctx, a.Self(), gossip.ProtoDelta, []byte("less-offer"), body)
	if err == nil || errors.Is(err, gossip.ErrRefused) {
		t.Fatalf("body longer than announced: err = %v, want a failed transfer", err)
	}
	if bodies.Load() != int64(len(body)) {
		t.Fatal("a body was taken that should not have been")
	}
	small := newHost(t, Config{MaxOfferBytes: 4, Bootstrap: a.Addrs()})
	if err := small.SendOffered(ctx, a.Self(), gossip.ProtoDelta, []byte("want-offer"), body); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("offer over the local limit: err = %v, want ErrTooLarge", err)
	}
	tiny := newHost(t, Config{Bootstrap: a.Addrs()})
	a2 := newHost(t, Config{MaxOfferBytes: 4})
	a2.HandleOffered(gossip.ProtoDelta, func(gossip.PeerID, []byte, func(int) ([]byte, error)) error {
		t.Error("handler ran for an offer over the limit")
		return nil
	})
	if err := tiny.Connect(ctx, a2.Addrs()[0]); err != nil {
		t.Fatal(err)
	}
	if err := tiny.SendOffered(ctx, a2.Self(), gossip.ProtoDelta, []byte("want-offer"), body); !errors.Is(err, gossip.ErrRefused) {
		t.Fatalf("offer over the receiver's limit: err = %v, want a refusal", err)
	}
}
