package p2p

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dafnet/daf/gossip"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func newHost(t *testing.T, cfg Config) *Host {
	t.Helper()
	if cfg.Identity == nil {
		cfg.Identity = newKey(t)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func connected(h *Host, id gossip.PeerID) bool {
	for _, p := range h.Peers() {
		if p == id {
			return true
		}
	}
	return false
}

func TestPeerIDIsTheIdentityKey(t *testing.T) {
	key := newKey(t)
	h := newHost(t, Config{Identity: key})
	id, err := PeerIDFromPublicKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	if h.Self() != id || !strings.HasPrefix(string(id), "12D3Koo") {
		t.Fatalf("host id %s, key id %s", h.Self(), id)
	}
	pub, err := PublicKeyOf(id)
	if err != nil || !bytes.Equal(pub, key.Public().(ed25519.PublicKey)) {
		t.Fatalf("PublicKeyOf = %x, %v", pub, err)
	}
	if _, err := PublicKeyOf("not-a-peer"); err == nil {
		t.Fatal("PublicKeyOf accepted garbage")
	}
	var hasTCP, hasQUIC bool
	for _, a := range h.Addrs() {
		hasTCP = hasTCP || strings.Contains(a, "/tcp/")
		hasQUIC = hasQUIC || strings.Contains(a, "/quic-v1/")
		if !strings.HasSuffix(a, "/p2p/"+string(id)) {
			t.Errorf("addr %s lacks /p2p/ suffix", a)
		}
	}
	if !hasTCP || !hasQUIC {
		t.Fatalf("addrs %v: want TCP and QUIC", h.Addrs())
	}
}

func TestSendDeliversAndReportsVerdict(t *testing.T) {
	a := newHost(t, Config{})
	b := newHost(t, Config{Bootstrap: a.Addrs()})
	type got struct {
		from gossip.PeerID
		msg  []byte
	}
	recv := make(chan got, 4)
	a.Handle(gossip.ProtoDelta, func(from gossip.PeerID, msg []byte) error {
		recv <- got{from, msg}
		if bytes.Equal(msg, []byte("stale")) {
			return errors.New("round 3 outside window [7, 9]")
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	payload := bytes.Repeat([]byte{1, 2, 3, 4, 5}, 300_000) // 1.5 MB: many flow-control windows
	if err := b.Send(ctx, a.Self(), gossip.ProtoDelta, payload); err != nil {
		t.Fatal(err)
	}
	g := <-recv
	if g.from != b.Self() || !bytes.Equal(g.msg, payload) {
		t.Fatalf("got %d bytes from %s, want %d from %s", len(g.msg), g.from, len(payload), b.Self())
	}
	err := b.Send(ctx, a.Self(), gossip.ProtoDelta, []byte("stale"))
	if !errors.Is(err, gossip.ErrRefused) || !strings.Contains(err.Error(), "round 3 outside window") {
		t.Fatalf("refusal err = %v", err)
	}
	<-recv
	if got, want := b.BytesSent(), uint64(4+len(payload)); got < want {
		t.Fatalf("BytesSent = %d, want at least %d", got, want)
	}
	if got, want := a.BytesReceived(), uint64(4+len(payload)+4+5); got < want {
		t.Fatalf("BytesReceived = %d, want at least %d", got, want)
	}
	if err := b.Send(ctx, a.Self(), "/daf/unknown/1", []byte("x")); err == nil {
		t.Fatal("send on a protocol the peer does not speak succeeded")
	}
}

func TestOversizeRefusedBeforeHandler(t *testing.T) {
	var calls atomic.Int32
	a := newHost(t, Config{MaxMessageBytes: 1024})
	a.Handle(gossip.ProtoDelta, func(gossip.PeerID, []byte) error { calls.Add(1); return nil })
	b := newHost(t, Config{Bootstrap: a.Addrs()})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// 8 MiB: far more than yamux's window, so a receiver that did not
	// answer before reading would leave the sender blocked until timeout.
	start := time.Now()
	err := b.Send(ctx, a.Self(), gossip.ProtoDelta, make([]byte, 8<<20))
	if !errors.Is(err, gossip.ErrRefused) || !strings.Contains(err.Error(), "limit 1024") {
		t.Fatalf("err = %v, want refusal naming the limit", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("refusal took %v", time.Since(start))
	}
	if err := b.Send(ctx, a.Self(), gossip.ProtoDelta, make([]byte, 1024)); err != nil {
		t.Fatalf("message at the limit: %v", err)
	}
	if calls.Load() != 1 {
		t.Fatalf("handler ran %d times, want 1", calls.Load())
	}
	small := newHost(t, Config{MaxMessageBytes: 10})
	if err := small.Send(ctx, a.Self(), gossip.ProtoDelta, make([]byte, 11)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("local limit: err = %v, want ErrTooLarge", err)
	}
}

func TestQUICOnly(t *testing.T) {
	a := newHost(t, Config{Listen: []string{"/ip4/127.0.0.1/udp/0/quic-v1"}})
	b := newHost(t, Config{Listen: []string{"/ip4/127.0.0.1/udp/0/quic-v1"}, Bootstrap: a.Addrs()})
	done := make(chan []byte, 1)
	a.Handle(gossip.ProtoKeys, func(_ gossip.PeerID, msg []byte) error { done <- msg; return nil })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.Send(ctx, a.Self(), gossip.ProtoKeys, []byte("key record")); err != nil {
		t.Fatal(err)
	}
	if got := <-done; string(got) != "key record" {
		t.Fatalf("got %q", got)
	}
}

func TestAddAddrsJoinsLearnedPeers(t *testing.T) {
	hub := newHost(t, Config{RedialInterval: 100 * time.Millisecond})
	var hosts []*Host
	for range 3 {
		hosts = append(hosts, newHost(t, Config{Bootstrap: hub.Addrs(), RedialInterval: 100 * time.Millisecond}))
	}
	// Each leaf is told the others' addresses, as peer exchange would.
	for _, h := range hosts {
		for _, o := range hosts {
			if err := h.AddAddrs(o.Self(), o.Addrs()); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, h := range hosts {
		for j, o := range hosts {
			if i != j {
				waitFor(t, "leaf-to-leaf connection", 20*time.Second, func() bool { return connected(h, o.Self()) })
			}
		}
	}
	// A leaf's connection to the hub can be replaced while the leaves dial
	// each other (the redial loop restores it), so the hub's count is
	// awaited, not sampled once.
	waitFor(t, "hub connected to all 3 leaves", 20*time.Second, func() bool { return len(hub.Peers()) == 3 })
	if len(hosts[0].PeerAddrs(hosts[1].Self())) == 0 {
		t.Fatal("no addresses recorded for a learned peer")
	}
	if err := hosts[0].AddAddrs(hosts[1].Self(), []string{"garbage"}); !errors.Is(err, ErrBadAddr) {
		t.Fatalf("bad learned address: err = %v", err)
	}
}

func TestRedialAfterRestart(t *testing.T) {
	keyB := newKey(t)
	var mu sync.Mutex
	var events []bool
	a := newHost(t, Config{RedialInterval: 100 * time.Millisecond, MaxRedialInterval: 200 * time.Millisecond,
		OnPeer: func(_ gossip.PeerID, up bool) { mu.Lock(); events = append(events, up); mu.Unlock() }})
	b, err := New(Config{Identity: keyB, Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	addrB := b.Addrs()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Connect(ctx, addrB[0]); err != nil {
		t.Fatal(err)
	}
	_ = b.Close()
	waitFor(t, "disconnect", 10*time.Second, func() bool { return !connected(a, b.Self()) })
	listen := strings.TrimSuffix(addrB[0], "/p2p/"+string(b.Self()))
	b2 := newHost(t, Config{Identity: keyB, Listen: []string{listen}})
	waitFor(t, "redial of the restarted peer", 10*time.Second, func() bool { return connected(a, b2.Self()) })
	waitFor(t, "peer events", 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(events) >= 3
	})
	mu.Lock()
	defer mu.Unlock()
	if !events[0] || events[1] || !events[2] {
		t.Fatalf("peer events %v, want up, down, up", events)
	}
}

func TestLatencyMeasured(t *testing.T) {
	a := newHost(t, Config{PingInterval: 50 * time.Millisecond})
	b := newHost(t, Config{Bootstrap: a.Addrs()})
	if _, ok := a.Latency(b.Self()); ok && !connected(a, b.Self()) {
		t.Fatal("latency before any connection")
	}
	waitFor(t, "a ping", 10*time.Second, func() bool {
		d, ok := a.Latency(b.Self())
		return ok && d > 0 && d < time.Second
	})
	if _, ok := a.Latency("garbage"); ok {
		t.Fatal("latency for an invalid peer id")
	}
}

func TestBadConfig(t *testing.T) {
	if _, err := New(Config{Identity: newKey(t), Bootstrap: []string{"/ip4/127.0.0.1/tcp/1"}}); !errors.Is(err, ErrBadAddr) {
		t.Fatalf("bootstrap without /p2p/: err = %v", err)
	}
	if _, err := New(Config{Identity: newKey(t), Listen: []string{"nonsense"}}); !errors.Is(err, ErrBadAddr) {
		t.Fatalf("bad listen: err = %v", err)
	}
	if _, err := New(Config{Identity: make([]byte, 5)}); err == nil {
		t.Fatal("short identity accepted")
	}
}

func TestByteBudgetBlocksThenReleases(t *testing.T) {
	b := newByteBudget(10)
	ctx := context.Background()
	if err := b.acquire(ctx, 8); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	if err := b.acquire(short, 3); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("over budget: err = %v", err)
	}
	got := make(chan error, 1)
	go func() { got <- b.acquire(ctx, 3) }()
	time.Sleep(20 * time.Millisecond)
	b.release(8)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

// TestLyingLengthDoesNotAllocate: on a real stream, a request header that
// announces 60 MiB followed by 10 bytes and the end of the stream must not
// make the receiving host allocate the announced length.
func TestLyingLengthDoesNotAllocate(t *testing.T) {
	var calls atomic.Int32
	a := newHost(t, Config{})
	a.Handle(gossip.ProtoDelta, func(gossip.PeerID, []byte) error { calls.Add(1); return nil })
	b := newHost(t, Config{Bootstrap: a.Addrs()})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pid, err := peer.Decode(string(a.Self()))
	if err != nil {
		t.Fatal(err)
	}
	// Warm the connection up so that its buffers are not counted.
	if err := b.Send(ctx, a.Self(), gossip.ProtoDelta, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	grew := allocatedBy(func() {
		s, err := b.h.NewStream(ctx, pid, protocol.ID(gossip.ProtoDelta))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Reset()
		if _, err := s.Write(append([]byte{0x03, 0xc0, 0, 0}, make([]byte, 10)...)); err != nil {
			t.Fatal(err)
		}
		if err := s.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		// The receiver resets the stream once the body is cut short; by
		// then it has done whatever allocating it was going to do.
		_ = s.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := io.Copy(io.Discard, s); err == nil {
			t.Fatalf("truncated request answered with %d bytes and a clean close", n)
		}
	})
	if grew > 16<<20 {
		t.Fatalf("%d bytes allocated while a peer announced 60 MiB and sent 10", grew)
	}
	if calls.Load() != 1 {
		t.Fatalf("handler ran %d times, want 1 (only the warm-up)", calls.Load())
	}
}
