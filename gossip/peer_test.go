package gossip

import (
	"errors"
	"testing"
	"time"

	"github.com/dafnet/daf/privacy"
)

func TestPeerTable(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tab := NewPeerTable("self")
	if _, err := tab.Upsert(PeerInfo{}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("record without ID: err = %v, want ErrMalformed", err)
	}
	if _, err := tab.Upsert(PeerInfo{ID: "self"}); err != nil || tab.Len() != 0 {
		t.Fatalf("self must not be stored (len %d, err %v)", tab.Len(), err)
	}
	pub := Membership{Tier: privacy.Public}
	if _, err := tab.Upsert(PeerInfo{ID: "a", Memberships: []Membership{pub}, LastSeen: t0, Incarnation: 1}); err != nil {
		t.Fatal(err)
	}
	p, _ := tab.Get("a")
	if p.Reputation != InitialReputation {
		t.Fatalf("new peer reputation %v, want %v", p.Reputation, InitialReputation)
	}
	// A record from the network never sets reputation.
	tab.Upsert(PeerInfo{ID: "a", Reputation: 1, LastSeen: t0.Add(-time.Hour)})
	p, _ = tab.Get("a")
	if p.Reputation != InitialReputation || !p.LastSeen.Equal(t0) {
		t.Fatalf("after upsert: reputation %v last seen %v; want %v and %v", p.Reputation, p.LastSeen, InitialReputation, t0)
	}
	for i, want := range []float64{0.4, 0.3, 0.2, 0.1, 0, 0} {
		got, _ := tab.Adjust("a", -PenaltyBad)
		if d := got - want; d > 1e-12 || d < -1e-12 {
			t.Fatalf("penalty %d: reputation %v, want %v", i+1, got, want)
		}
	}
	for range 200 {
		tab.Adjust("a", RewardAccepted)
	}
	if p, _ := tab.Get("a"); p.Reputation != 1 {
		t.Fatalf("reputation %v after many rewards, want clamped to 1", p.Reputation)
	}
	if _, ok := tab.Adjust("nobody", 1); ok {
		t.Fatal("Adjust of an unknown peer reported ok")
	}
	tab.Seen("b", t0.Add(-10*time.Minute))
	if live := tab.Live(t0, 5*time.Minute); len(live) != 1 || live[0].ID != "a" {
		t.Fatalf("live peers %v, want only a", live)
	}
	if m := tab.LiveMembers(pub, t0, 0); len(m) != 1 || m[0].ID != "a" {
		t.Fatalf("members of public %v, want only a (b has no known membership)", m)
	}
	if restarted, _ := tab.Upsert(PeerInfo{ID: "a", Incarnation: 1}); restarted {
		t.Fatal("same incarnation reported as a restart")
	}
	if restarted, _ := tab.Upsert(PeerInfo{ID: "a", Incarnation: 2}); !restarted {
		t.Fatal("new incarnation not reported as a restart")
	}
}

func TestHomeTier(t *testing.T) {
	p := PeerInfo{Memberships: []Membership{{Tier: privacy.Public}, {Tier: privacy.Tenant, Scope: "acme"}}}
	if p.HomeTier() != privacy.Tenant {
		t.Fatalf("home tier %v, want tenant", p.HomeTier())
	}
	if (PeerInfo{}).HomeTier() != privacy.Public {
		t.Fatal("a peer with no membership must count as public")
	}
}
