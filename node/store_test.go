package node

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/dafnet/daf/defense"
	"github.com/dafnet/daf/gossip"
	"github.com/dafnet/daf/privacy"
	bolt "go.etcd.io/bbolt"
)

func openTestStore(t *testing.T, path string) *Store {
	t.Helper()
	s, err := OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStoreSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), StateFile)
	s := openTestStore(t, path)
	if _, ok, err := s.LastRound(); ok || err != nil {
		t.Fatalf("fresh store: LastRound ok=%v err=%v", ok, err)
	}
	if err := s.SaveLedger([]byte(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveStats("12D3KooA", defense.NodeStats{Accepted: 4, MeanMagnitude: 0.25}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutReputations(map[string]float64{"a": 0.51, "b": -0.2}); err != nil {
		t.Fatal(err)
	}
	seen := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := s.PutPeer(gossip.PeerInfo{ID: "p1", Addrs: []string{"/ip4/127.0.0.1/tcp/1"}, Reputation: 0.6,
		Memberships: []gossip.Membership{{Tier: privacy.Tenant, Scope: "acme"}}, LastSeen: seen}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []uint64{2, 10, 9} {
		if err := s.AppendRound(RoundRecord{Round: r, Scope: "tenant/acme", Completed: r != 9, SkipReason: map[bool]string{true: "too_few_updates"}[r == 9]}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PutMeta("genesis", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTestStore(t, path)
	defer s.Close()
	if b, ok, err := s.LoadLedger(); !ok || err != nil || string(b) != `{"v":1}` {
		t.Fatalf("ledger = %q ok=%v err=%v", b, ok, err)
	}
	if st, ok, err := s.LoadStats("12D3KooA"); !ok || err != nil || st.Accepted != 4 || st.MeanMagnitude != 0.25 {
		t.Fatalf("stats = %+v ok=%v err=%v", st, ok, err)
	}
	if _, ok, _ := s.LoadStats("unknown"); ok {
		t.Fatal("stats for an unknown node")
	}
	rep, err := s.Reputations()
	if err != nil || rep["a"] != 0.51 || rep["b"] != -0.2 || len(rep) != 2 {
		t.Fatalf("reputations = %v err=%v", rep, err)
	}
	peers, err := s.Peers()
	if err != nil || len(peers) != 1 || !peers[0].MemberOf(gossip.Membership{Tier: privacy.Tenant, Scope: "acme"}) || peers[0].Reputation != 0.6 || !peers[0].LastSeen.Equal(seen) {
		t.Fatalf("peers = %+v err=%v", peers, err)
	}
	last, ok, err := s.LastRound()
	if err != nil || !ok || last.Round != 10 {
		t.Fatalf("LastRound = %+v ok=%v err=%v, want round 10 (log order is by round, not by write)", last, ok, err)
	}
	rounds, err := s.Rounds(9)
	if err != nil || len(rounds) != 2 || rounds[0].Round != 9 || rounds[0].SkipReason != "too_few_updates" {
		t.Fatalf("Rounds(9) = %+v err=%v", rounds, err)
	}
	if v, ok, _ := s.Meta("genesis"); !ok || string(v) != "x" {
		t.Fatalf("meta = %q", v)
	}
	if _, ok, _ := s.Meta("absent"); ok {
		t.Fatal("absent meta key found")
	}
}

func TestStoreRejectsBadValues(t *testing.T) {
	path := filepath.Join(t.TempDir(), StateFile)
	s := openTestStore(t, path)
	defer s.Close()
	if err := s.PutReputations(map[string]float64{"x": nan()}); err == nil {
		t.Fatal("NaN reputation stored")
	}
	// Damage values behind the store's back: reading names the bucket/key.
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketReputation).Put([]byte("short"), []byte{1, 2}); err != nil {
			return err
		}
		return tx.Bucket(bucketPeers).Put([]byte("p"), []byte("{"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reputations(); !errors.Is(err, ErrCorruptState) {
		t.Fatalf("short reputation: err = %v", err)
	}
	if _, err := s.Peers(); !errors.Is(err, ErrCorruptState) {
		t.Fatalf("bad peer json: err = %v", err)
	}
}
