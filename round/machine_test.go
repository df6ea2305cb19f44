package round_test

import (
	"crypto/ed25519"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dafnet/daf/adapter"
	"github.com/dafnet/daf/config"
	"github.com/dafnet/daf/gossip"
	"github.com/dafnet/daf/privacy"
	"github.com/dafnet/daf/round"
	"github.com/dafnet/daf/sim"
)

var public = gossip.Membership{Tier: privacy.Public}

func testConfig(t *testing.T, self gossip.PeerID) round.Config {
	t.Helper()
	rc, err := round.FromConfig(config.Default(), self, true)
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

func newMachine(t *testing.T, rc round.Config, st round.State) (*round.Machine, *sim.Keyring) {
	t.Helper()
	keys := sim.NewKeyring()
	priv := sim.NewIdentity(rc.Self, 1)
	keys.Add(rc.Self, priv.Public().(ed25519.PublicKey))
	m, err := round.New(rc, round.Deps{Codec: &sim.Codec{Self: rc.Self, Priv: priv, Keys: keys}, Rand: rand.New(rand.NewPCG(1, 1))}, st)
	if err != nil {
		t.Fatal(err)
	}
	return m, keys
}

func upd() *adapter.Update {
	u := adapter.New()
	u.Set("coarse", "m.lora_A.weight", &adapter.Tensor{Shape: []int{2}, Data: []float32{1, 2}})
	return u
}

// slot returns a time offset into round r of a 120 s schedule from the epoch.
func slot(r uint64, offset time.Duration) time.Time {
	return time.Unix(int64(r)*120, 0).Add(offset)
}

func TestFromConfig(t *testing.T) {
	rc := testConfig(t, "me")
	if rc.Interval != 120*time.Second || rc.PropagationTimeout != 30*time.Second || rc.MinNodes != 3 ||
		rc.MaxNodes != 50 || rc.FanOut != 4 || rc.MaxHops != 3 || !rc.Enabled || !rc.ByzantineDetection ||
		rc.PeerTimeout != 300*time.Second || len(rc.Memberships) != 1 || rc.Memberships[0] != public {
		t.Fatalf("FromConfig(default) = %+v", rc)
	}
	c := config.Default()
	c.Federation.Node.Tier = "tenant"
	if _, err := round.FromConfig(c, "me", true); err == nil || !strings.Contains(err.Error(), "federation.node.scope") {
		t.Fatalf("tenant without scope: err = %v", err)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	err := round.Config{MinNodes: 5, MaxNodes: 2, MaxHops: 0, FanOut: -1}.Validate()
	for _, key := range []string{"Self", "round_interval_secs", "max_nodes_per_round", "max_hops", "fan_out", "federation.node.tier"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("Validate error %q does not name %s", err, key)
		}
	}
}

func TestLoneNodeSkipsWithReason(t *testing.T) {
	m, _ := newMachine(t, testConfig(t, "me"), round.State{})
	rd := m.Tick(slot(10, 0))
	if len(rd.Train) != 1 || rd.Train[0] != 10 {
		t.Fatalf("first tick in Init: train %v, want [10]", rd.Train)
	}
	rd, err := m.LocalUpdateReady(slot(10, 2*time.Second), 10, round.LocalUpdate{Scope: public, Update: upd()})
	if err != nil || len(rd.Send) != 0 {
		t.Fatalf("update before the Gossip mark: %d sends, %v", len(rd.Send), err)
	}
	rd = m.Tick(slot(10, 10*time.Second))
	// Released (a Released record), and with no peers all expected updates
	// (its own) are in: Collect ends at once with 1 < min_nodes updates.
	var released bool
	for _, p := range rd.Persist {
		released = released || (p.Kind == round.RecordReleased && p.Round == 10)
	}
	if !released {
		t.Fatal("no Released record for the node's own update")
	}
	if len(rd.Skipped) != 1 || rd.Skipped[0].Reason != round.SkipTooFew || !strings.Contains(rd.Skipped[0].Detail, "1 updates, min_nodes_for_aggregation 3") {
		t.Fatalf("skipped %+v", rd.Skipped)
	}
	if len(rd.Train) != 1 || rd.Train[0] != 11 {
		t.Fatalf("after the round settled: train %v, want [11]", rd.Train)
	}
	if m.Phase() != round.PhaseDone || m.Stats().RoundsSkipped[round.SkipTooFew] != 1 {
		t.Fatalf("phase %v, stats %+v", m.Phase(), m.Stats())
	}
}

func TestRestartDoesNotReleaseTwice(t *testing.T) {
	m, _ := newMachine(t, testConfig(t, "me"), round.State{Released: 10, HasReleased: true})
	rd := m.Tick(slot(10, 20*time.Second))
	// With no peer, Collect ends at once and training for 11 may start; 10 never.
	if slices.Contains(rd.Train, 10) {
		t.Fatalf("restarted after releasing round 10: asked to train for %v", rd.Train)
	}
	_, err := m.LocalUpdateReady(slot(10, 21*time.Second), 10, round.LocalUpdate{Scope: public, Update: upd()})
	if !errors.Is(err, round.ErrStale) {
		t.Fatalf("second local update for a released round: err = %v, want ErrStale", err)
	}
}

func TestJoinAfterCollect(t *testing.T) {
	m, _ := newMachine(t, testConfig(t, "me"), round.State{})
	rd := m.Tick(slot(7, 70*time.Second))
	if len(rd.Skipped) != 1 || rd.Skipped[0].Reason != round.SkipJoinedLate {
		t.Fatalf("skipped %+v, want joined_after_collect", rd.Skipped)
	}
	if len(rd.Train) != 1 || rd.Train[0] != 8 {
		t.Fatalf("train %v, want [8]", rd.Train)
	}
	if m.NextDeadline() != slot(8, 0) {
		t.Fatalf("next deadline %v, want the next slot", m.NextDeadline())
	}
}

func TestLateLocalUpdateDropped(t *testing.T) {
	m, _ := newMachine(t, testConfig(t, "me"), round.State{})
	m.Tick(slot(3, 0))
	m.Tick(slot(3, 61*time.Second))
	_, err := m.LocalUpdateReady(slot(3, 62*time.Second), 3, round.LocalUpdate{Scope: public, Update: upd()})
	if !errors.Is(err, round.ErrStale) || m.Stats().OwnLate != 1 {
		t.Fatalf("update after Collect: err = %v, own late %d", err, m.Stats().OwnLate)
	}
	if _, err := m.AggregateDone(slot(3, 63*time.Second), 2, public, upd(), nil); !errors.Is(err, round.ErrStale) {
		t.Fatalf("aggregate for a past round: err = %v, want ErrStale", err)
	}
}

func TestDisabledAndPrivate(t *testing.T) {
	rc := testConfig(t, "me")
	rc.Enabled = false
	m, _ := newMachine(t, rc, round.State{})
	rd := m.Tick(slot(1, 0))
	if len(rd.Skipped) != 1 || rd.Skipped[0].Reason != round.SkipDisabled || len(rd.Train) != 0 {
		t.Fatalf("disabled: %+v", rd)
	}
	if _, err := m.DeltaReceived(slot(1, time.Second), "peer", []byte("x"), nil); !errors.Is(err, gossip.ErrDisabled) {
		t.Fatalf("disabled node took a delta: %v", err)
	}
	if m.Stats().Gossip.Received[gossip.ResultRejectedDisabled] != 1 {
		t.Fatal("refused delta not counted")
	}
	rc = testConfig(t, "me")
	rc.Memberships = []gossip.Membership{{Tier: privacy.Private}}
	m, _ = newMachine(t, rc, round.State{})
	rd = m.Tick(slot(1, 0))
	if len(rd.Skipped) != 1 || rd.Skipped[0].Reason != round.SkipPrivate || len(rd.Train) != 0 {
		t.Fatalf("private tier: %+v", rd)
	}
}

func TestRestartInFinishedRound(t *testing.T) {
	m, _ := newMachine(t, testConfig(t, "me"), round.State{Finished: 4, HasFinished: true, Released: 4, HasReleased: true})
	rd := m.Tick(slot(4, 80*time.Second))
	if len(rd.Skipped) != 0 || len(rd.Persist) != 0 {
		t.Fatalf("restart in a finished round logged it again: %+v", rd)
	}
	if len(rd.Train) != 1 || rd.Train[0] != 5 || m.Phase() != round.PhaseDone {
		t.Fatalf("train %v phase %v, want training for 5 and phase done", rd.Train, m.Phase())
	}
}

func TestOneAggregationPerScope(t *testing.T) {
	rc := testConfig(t, "me")
	acme := gossip.Membership{Tier: privacy.Tenant, Scope: "acme"}
	rc.Memberships = []gossip.Membership{public, acme}
	rc.MinNodes, rc.MaxNodes = 1, 50
	keys := sim.NewKeyring()
	priv := sim.NewIdentity("me", 1)
	keys.Add("me", priv.Public().(ed25519.PublicKey))
	codec := &sim.Codec{Self: "me", Priv: priv, Keys: keys, ScopeKeys: map[gossip.Membership][]byte{acme: make([]byte, 32)}}
	m, err := round.New(rc, round.Deps{Codec: codec, Rand: rand.New(rand.NewPCG(1, 1))}, round.State{})
	if err != nil {
		t.Fatal(err)
	}
	m.Tick(slot(2, 0))
	for _, p := range []gossip.PeerInfo{
		{ID: "pub", Memberships: []gossip.Membership{public}, Contributes: true},
		{ID: "both", Memberships: []gossip.Membership{public, acme}, Contributes: true},
	} {
		if _, err := m.PeerSeen(slot(2, time.Second), p); err != nil {
			t.Fatal(err)
		}
	}
	rd, err := m.LocalUpdateReady(slot(2, 11*time.Second), 2,
		round.LocalUpdate{Scope: public, Update: upd()}, round.LocalUpdate{Scope: acme, Update: upd()})
	if err != nil {
		t.Fatal(err)
	}
	to := map[gossip.Membership][]gossip.PeerID{}
	for _, s := range rd.Send {
		to[s.Scope] = append(to[s.Scope], s.To)
	}
	if len(to[public]) != 2 || len(to[acme]) != 1 || to[acme][0] != "both" {
		t.Fatalf("sends by scope %v: want public to both peers, acme only to the member", to)
	}
	rd = m.Tick(slot(2, 61*time.Second))
	if len(rd.Aggregate) != 2 || rd.Aggregate[0].Scope != acme || rd.Aggregate[1].Scope != public {
		t.Fatalf("aggregate jobs %+v, want one per scope (tenant/acme, public)", rd.Aggregate)
	}
	for _, j := range rd.Aggregate {
		if len(j.Contributions) != 1 || j.Contributions[0].Source != "me" {
			t.Fatalf("job %s holds %+v", j.Scope, j.Contributions)
		}
	}
}

func TestPeerSeenOffersOnlyToReturningPeers(t *testing.T) {
	rc := testConfig(t, "me")
	m, _ := newMachine(t, rc, round.State{})
	m.Tick(slot(2, 0))
	var peers []gossip.PeerInfo
	for _, id := range []gossip.PeerID{"a", "b", "c", "d", "e", "f", "g"} {
		p := gossip.PeerInfo{ID: id, Memberships: []gossip.Membership{public}, Contributes: true}
		peers = append(peers, p)
		m.PeerSeen(slot(2, time.Second), p)
	}
	rd, _ := m.LocalUpdateReady(slot(2, 10*time.Second), 2, round.LocalUpdate{Scope: public, Update: upd()})
	if len(rd.Send) != 4 { // max(⌈√7⌉, fan_out 4)
		t.Fatalf("released to %d peers, want 4", len(rd.Send))
	}
	got := map[gossip.PeerID]bool{}
	for _, s := range rd.Send {
		got[s.To] = true
	}
	// Live peers seen again get nothing: no broadcast by heartbeat.
	for _, p := range peers {
		if rd, _ := m.PeerSeen(slot(2, 12*time.Second), p); len(rd.Send) != 0 {
			t.Fatalf("heartbeat of live peer %s sent %d deltas", p.ID, len(rd.Send))
		}
	}
	// A send that failed on the network is made good when the peer is seen again.
	var failed gossip.Outbound
	for _, s := range rd.Send {
		failed = s
		break
	}
	m.SendFailed(slot(2, 13*time.Second), failed, errors.New("connection reset"))
	rd, _ = m.PeerSeen(slot(2, 14*time.Second), gossip.PeerInfo{ID: failed.To})
	if len(rd.Send) != 1 || rd.Send[0].To != failed.To {
		t.Fatalf("unreached peer %s seen again: sends %+v", failed.To, rd.Send)
	}
	// A restarted peer (new incarnation) that had the release gets it again.
	var holder gossip.PeerID
	for id := range got {
		if id != failed.To {
			holder = id
			break
		}
	}
	m.PeerSeen(slot(2, 15*time.Second), gossip.PeerInfo{ID: holder, Incarnation: 1})
	rd, _ = m.PeerSeen(slot(2, 16*time.Second), gossip.PeerInfo{ID: holder, Incarnation: 2})
	if len(rd.Send) != 1 || rd.Send[0].To != holder {
		t.Fatalf("restarted peer %s: sends %+v", holder, rd.Send)
	}
}
