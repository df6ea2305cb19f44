package node

import (
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/dafnet/daf/gossip"
	"github.com/dafnet/daf/p2p"
	"github.com/dafnet/daf/privacy"
	"github.com/dafnet/daf/seal"
	"github.com/dafnet/daf/wire"
)

// A peer list is checked entry by entry: a record already verified for
// its identity is taken without a second check, a changed one is checked
// again, so a forged signature is refused even for a known identity.
func TestPeerListRecordsCheckedOncePerContent(t *testing.T) {
	key, err := seal.NewScopeKey(rand.Reader, "tenant", "lab", 1)
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(Config{Fed: testFed(1), DataDir: t.TempDir(), Listen: []string{"/ip4/127.0.0.1/tcp/0"}, ScopeKeys: []*seal.ScopeKey{key}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.host.Close(); n.store.Close() })

	other, err := seal.GenerateIdentity(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := p2p.PeerIDFromPublicKey(other.Public())
	if err != nil {
		t.Fatal(err)
	}
	good, err := seal.NewKeyRecord(other, time.Now().Unix()).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	list := func(rec []byte) []byte {
		msg, err := wire.MarshalPeerList([]wire.PeerEntry{{KeyRecord: rec, Memberships: []wire.Membership{{Tier: 2, Scope: "lab"}}}})
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	// The node is not running: its event queue (256) holds what the
	// handler submits.
	for range 2 {
		if err := n.handlePeers(id, list(good)); err != nil {
			t.Fatalf("good record refused: %v", err)
		}
		if !n.knownRecord(id, good) {
			t.Fatal("verified record not kept")
		}
	}
	forged := append([]byte(nil), good...)
	forged[len(forged)-1] ^= 1 // the signature's last byte
	if err := n.handlePeers(id, list(forged)); !errors.Is(err, gossip.ErrSignature) {
		t.Fatalf("forged record of a known identity: err = %v, want ErrSignature", err)
	}
	if !n.knownRecord(id, good) {
		t.Fatal("a forged record replaced the verified one")
	}
}

// Memberships in a peer list are the peers' claims: a peer's own entry
// says what it is in, none included, but another peer's entry without
// memberships only means the sender does not know them, and must not
// erase what the peer itself said.
func TestPeerListMembershipsFromThirdPartiesDoNotErase(t *testing.T) {
	key, err := seal.NewScopeKey(rand.Reader, "tenant", "lab", 1)
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(Config{Fed: testFed(1), DataDir: t.TempDir(), Listen: []string{"/ip4/127.0.0.1/tcp/0"}, ScopeKeys: []*seal.ScopeKey{key}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.host.Close(); n.store.Close() })
	type peer struct {
		id  gossip.PeerID
		rec []byte
	}
	mk := func() peer {
		ident, err := seal.GenerateIdentity(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		id, err := p2p.PeerIDFromPublicKey(ident.Public())
		if err != nil {
			t.Fatal(err)
		}
		rec, err := seal.NewKeyRecord(ident, time.Now().Unix()).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return peer{id, rec}
	}
	b, c := mk(), mk()
	lab := []wire.Membership{{Tier: 2, Scope: "lab"}}
	send := func(from peer, entries ...wire.PeerEntry) {
		t.Helper()
		msg, err := wire.MarshalPeerList(entries)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.handlePeers(from.id, msg); err != nil {
			t.Fatal(err)
		}
		// The node is not running: carry out what the handler queued.
		for len(n.events) > 0 {
			(<-n.events)(time.Now())
		}
	}
	inLab := func(id gossip.PeerID) bool {
		p, ok := n.machine.Engine().Table().Get(id)
		return ok && p.MemberOf(gossip.Membership{Tier: privacy.Tenant, Scope: "lab"})
	}
	send(b, wire.PeerEntry{KeyRecord: b.rec, Memberships: lab})
	if !inLab(b.id) {
		t.Fatal("b's own claim not taken")
	}
	send(c, wire.PeerEntry{KeyRecord: c.rec, Memberships: lab}, wire.PeerEntry{KeyRecord: b.rec})
	if !inLab(b.id) {
		t.Fatal("c's entry for b without memberships erased b's own claim")
	}
	send(b, wire.PeerEntry{KeyRecord: b.rec})
	if inLab(b.id) {
		t.Fatal("b's own entry without memberships not taken as none")
	}
}
