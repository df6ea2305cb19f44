package gossip_test

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/dafnet/daf/adapter"
	"github.com/dafnet/daf/gossip"
	"github.com/dafnet/daf/privacy"
	"github.com/dafnet/daf/sim"
)

var (
	t0     = time.Unix(1_000_000, 0)
	public = gossip.Membership{Tier: privacy.Public}
	acme   = gossip.Membership{Tier: privacy.Tenant, Scope: "acme"}
)

type fixture struct {
	keys   *sim.Keyring
	codecs map[gossip.PeerID]*sim.Codec
	eng    *gossip.Engine
}

// normCap refuses updates whose L2 norm is above it: the smallest Filter
// that lets the engine's handling of a Byzantine verdict be tested.
type normCap float64

func (c normCap) Check(source gossip.PeerID, round uint64, _ gossip.Membership, u *adapter.Update) error {
	if n := u.L2(); n > float64(c) {
		return fmt.Errorf("%w: %s round %d norm %v above %v", gossip.ErrByzantine, source, round, n, float64(c))
	}
	return nil
}

// newFixture builds an engine for node "me" that knows peers a…e, all
// public members, plus codecs to forge messages from anyone.
func newFixture(t *testing.T, maxHops int) *fixture {
	t.Helper()
	f := &fixture{keys: sim.NewKeyring(), codecs: map[gossip.PeerID]*sim.Codec{}}
	scopeKeys := map[gossip.Membership][]byte{acme: make([]byte, 32)}
	for _, id := range []gossip.PeerID{"me", "a", "b", "c", "d", "e", "src"} {
		priv := sim.NewIdentity(id, 1)
		f.keys.Add(id, priv.Public().(ed25519.PublicKey))
		f.codecs[id] = &sim.Codec{Self: id, Priv: priv, Keys: f.keys, ScopeKeys: scopeKeys}
	}
	tab := gossip.NewPeerTable("me")
	for _, id := range []gossip.PeerID{"a", "b", "c", "d", "e", "src"} {
		tab.Upsert(gossip.PeerInfo{ID: id, Memberships: []gossip.Membership{public}, LastSeen: t0})
	}
	eng, err := gossip.NewEngine(gossip.EngineConfig{
		Self: "me", Memberships: []gossip.Membership{public, acme}, FanOut: 2, MaxHops: maxHops,
		PeerTimeout: time.Hour, ByzantineDetection: true,
	}, tab, f.codecs["me"], normCap(20), nil, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	f.eng = eng
	return f
}

func update(v float32) *adapter.Update {
	u := adapter.New()
	t := adapter.NewTensor(4)
	for i := range t.Data {
		t.Data[i] = v
	}
	u.Set("coarse", "m.lora_A.weight", t)
	return u
}

func (f *fixture) pack(t *testing.T, src gossip.PeerID, round uint64, scope gossip.Membership, hops int, v float32) []byte {
	t.Helper()
	msg, err := f.codecs[src].Pack(round, scope, hops, update(v))
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func rep(f *fixture, id gossip.PeerID) float64 {
	p, _ := f.eng.Table().Get(id)
	return p.Reputation
}

var window = gossip.Window{Lo: 5, Hi: 6}

func TestReceiveAcceptAndRelay(t *testing.T) {
	f := newFixture(t, 3)
	msg := f.pack(t, "src", 5, public, 3, 1)
	in, err := f.eng.Receive(t0, "a", msg, nil, window)
	if err != nil {
		t.Fatal(err)
	}
	if in.Env.Source != "src" || in.From != "a" || in.Update.Get("coarse", "m.lora_A.weight").Data[0] != 1 {
		t.Fatalf("inbound %+v", in.Env)
	}
	out, err := f.eng.Admit(t0, in, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := rep(f, "a"); got != gossip.InitialReputation+gossip.RewardAccepted {
		t.Fatalf("sender reputation %v, want %v", got, gossip.InitialReputation+gossip.RewardAccepted)
	}
	if rep(f, "src") != gossip.InitialReputation {
		t.Fatal("the source, not on the connection, must not be rewarded")
	}
	// fan-out max(⌈√6⌉=3, 2) = 3, never to a (sender) or src (source).
	if len(out) != 3 {
		t.Fatalf("relayed to %d peers, want 3", len(out))
	}
	for _, o := range out {
		if o.To == "a" || o.To == "src" || o.To == "me" {
			t.Fatalf("relayed back to %s", o.To)
		}
		env, err := f.codecs["me"].UnpackOffer(o.Offer)
		if err != nil || env.HopsLeft != 2 || env.Digest != in.Env.Digest || !slices.Equal(o.Body, in.Env.Body) {
			t.Fatalf("relayed envelope hops %d (want 2), same digest %v, err %v", env.HopsLeft, env.Digest == in.Env.Digest, err)
		}
	}
	// A copy from another peer is a duplicate: counted, no reward, and that
	// peer is now known to hold it.
	if _, err := f.eng.Receive(t0, "b", msg, nil, window); !errors.Is(err, gossip.ErrDuplicate) {
		t.Fatalf("second copy: err = %v, want ErrDuplicate", err)
	}
	if !slices.Contains(f.eng.Holders(in.Env.Digest), "b") {
		t.Fatal("b not recorded as a holder")
	}
	c := f.eng.Counters()
	if c.Received[gossip.ResultAccepted] != 1 || c.Received[gossip.ResultDuplicate] != 1 || c.DeltasSent != 3 {
		t.Fatalf("counters %+v", c)
	}
}

func TestRelayStopsAtLastHop(t *testing.T) {
	f := newFixture(t, 3)
	in, err := f.eng.Receive(t0, "a", f.pack(t, "src", 5, public, 1, 1), nil, window)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := f.eng.Admit(t0, in, nil)
	if len(out) != 0 {
		t.Fatalf("a delta on its last hop was relayed to %d peers", len(out))
	}
	_, err = f.eng.Receive(t0, "a", f.pack(t, "b", 5, public, 4, 1), nil, window)
	if !errors.Is(err, gossip.ErrHops) {
		t.Fatalf("hops above max_hops: err = %v, want ErrHops", err)
	}
}

func TestForgedSourcePenalisesSender(t *testing.T) {
	f := newFixture(t, 3)
	forger := *f.codecs["e"]
	forger.SignAs = "src"
	msg, _ := forger.Pack(5, public, 3, update(1000))
	_, err := f.eng.Receive(t0, "e", msg, nil, window)
	if !errors.Is(err, gossip.ErrSignature) {
		t.Fatalf("forged delta: err = %v, want ErrSignature", err)
	}
	if got := rep(f, "e"); got != gossip.InitialReputation-gossip.PenaltyBad {
		t.Fatalf("forger reputation %v, want %v", got, gossip.InitialReputation-gossip.PenaltyBad)
	}
	if rep(f, "src") != gossip.InitialReputation {
		t.Fatal("the claimed source was charged for a forgery")
	}
	if _, err := f.eng.Receive(t0, "e", []byte("garbage"), nil, window); !errors.Is(err, gossip.ErrMalformed) {
		t.Fatalf("garbage: err = %v, want ErrMalformed", err)
	}
	if c := f.eng.Counters(); c.Received[gossip.ResultRejectedSignature] != 1 || c.Received[gossip.ResultRejectedMalformed] != 1 {
		t.Fatalf("counters %v", c.Received)
	}
}

func TestRoundWindowAndEquivocation(t *testing.T) {
	f := newFixture(t, 3)
	if _, err := f.eng.Receive(t0, "a", f.pack(t, "a", 4, public, 3, 1), nil, window); !errors.Is(err, gossip.ErrReplay) {
		t.Fatalf("old round: err = %v, want ErrReplay", err)
	}
	if _, err := f.eng.Receive(t0, "a", f.pack(t, "a", 7, public, 3, 1), nil, window); !errors.Is(err, gossip.ErrReplay) {
		t.Fatalf("round too far ahead: err = %v, want ErrReplay", err)
	}
	in, err := f.eng.Receive(t0, "a", f.pack(t, "a", 6, public, 3, 1), nil, window)
	if err != nil {
		t.Fatalf("next round must be accepted: %v", err)
	}
	f.eng.Admit(t0, in, nil)
	_, err = f.eng.Receive(t0, "b", f.pack(t, "a", 6, public, 3, 2), nil, window)
	if !errors.Is(err, gossip.ErrEquivocation) {
		t.Fatalf("second update of a for round 6: err = %v, want ErrEquivocation", err)
	}
	if rep(f, "b") != gossip.InitialReputation-gossip.PenaltyBad {
		t.Fatal("relay of an equivocation not charged")
	}
	f.eng.ForgetBefore(7)
	if len(f.eng.Holders(in.Env.Digest)) != 0 {
		t.Fatal("ForgetBefore kept an old release")
	}
}

func TestScopeMembership(t *testing.T) {
	f := newFixture(t, 3)
	other := gossip.Membership{Tier: privacy.Tenant, Scope: "other"}
	f.codecs["a"].ScopeKeys[other] = make([]byte, 32)
	if _, err := f.eng.Receive(t0, "a", f.pack(t, "a", 5, other, 3, 1), nil, window); !errors.Is(err, gossip.ErrNotMember) {
		t.Fatalf("delta of a scope we are not in: err = %v, want ErrNotMember", err)
	}
	// a is known to be public only: it may not carry acme's deltas.
	if _, err := f.eng.Receive(t0, "a", f.pack(t, "src", 5, acme, 3, 1), nil, window); !errors.Is(err, gossip.ErrNotMember) {
		t.Fatalf("acme delta relayed by non-member: err = %v, want ErrNotMember", err)
	}
	// Publishing in acme reaches only acme members.
	f.eng.Table().Upsert(gossip.PeerInfo{ID: "c", Memberships: []gossip.Membership{public, acme}, LastSeen: t0})
	_, out, err := f.eng.Publish(t0, 5, acme, update(1))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].To != "c" {
		t.Fatalf("acme release sent to %v, want only c", out)
	}
	if _, _, err := f.eng.Publish(t0, 5, gossip.Membership{Tier: privacy.Private}, update(1)); !errors.Is(err, gossip.ErrNotMember) {
		t.Fatalf("private release: err = %v, want ErrNotMember", err)
	}
}

func TestSealedPayloadNeedsScopeKey(t *testing.T) {
	f := newFixture(t, 3)
	f.eng.Table().Upsert(gossip.PeerInfo{ID: "a", Memberships: []gossip.Membership{acme}, LastSeen: t0})
	msg := f.pack(t, "a", 5, acme, 3, 1)
	in, err := f.eng.Receive(t0, "a", msg, nil, window)
	if err != nil || in.Update == nil {
		t.Fatalf("sealed delta with the key: %v", err)
	}
	outsider := *f.codecs["me"]
	outsider.ScopeKeys = nil
	if _, err := gossip.Decode(&outsider, "a", msg); !errors.Is(err, gossip.ErrSeal) {
		t.Fatalf("without the scope key: err = %v, want ErrSeal", err)
	}
}

func TestByzantineBlameOnlyForSource(t *testing.T) {
	f := newFixture(t, 3)
	// honest norm: 4 values of 1 → L2 = 2; 4 values of 100 → 200 > 20
	if _, err := f.eng.Receive(t0, "b", f.pack(t, "src", 5, public, 3, 100), nil, window); !errors.Is(err, gossip.ErrByzantine) {
		t.Fatalf("oversize update: err = %v, want ErrByzantine", err)
	}
	if rep(f, "b") != gossip.InitialReputation {
		t.Fatal("a relay was charged for the source's Byzantine update")
	}
	if _, err := f.eng.Receive(t0, "c", f.pack(t, "c", 5, public, 3, 100), nil, window); !errors.Is(err, gossip.ErrByzantine) {
		t.Fatalf("oversize update: err = %v, want ErrByzantine", err)
	}
	if rep(f, "c") != gossip.InitialReputation-gossip.PenaltyBad {
		t.Fatal("the source itself was not charged for its Byzantine update")
	}
}

func TestDecodeMatchesReceive(t *testing.T) {
	f := newFixture(t, 3)
	msg := f.pack(t, "src", 5, public, 3, 1)
	pre, err := gossip.Decode(f.codecs["me"], "a", msg)
	if err != nil {
		t.Fatal(err)
	}
	in, err := f.eng.Receive(t0, "a", msg, &pre, window)
	if err != nil || in.Env.Digest != pre.Env.Digest || in.Update != pre.Update {
		t.Fatalf("pre-decoded receive: %v", err)
	}
}

func TestSendFailureAllowsOfferLater(t *testing.T) {
	f := newFixture(t, 3)
	rel, out, err := f.eng.Publish(t0, 5, public, update(1))
	if err != nil || len(out) == 0 {
		t.Fatalf("publish: %d sends, %v", len(out), err)
	}
	if again := f.eng.Offer(t0, rel, out[0].To); len(again) != 0 {
		t.Fatal("offered a release to a peer that already got it")
	}
	f.eng.SendFailed(t0, out[0], errors.New("connection reset"))
	if again := f.eng.Offer(t0, rel, out[0].To); len(again) != 1 {
		t.Fatal("after a network failure the release is not offered again")
	}
	f.eng.SendFailed(t0, out[1], gossip.ErrRefused)
	if again := f.eng.Offer(t0, rel, out[1].To); len(again) != 0 {
		t.Fatal("a peer that refused the release was offered it again")
	}
}

// FuzzReceive: any bytes from the network end in exactly one counted
// result, never a panic.
func FuzzReceive(f *testing.F) {
	seed := newFixture(&testing.T{}, 3)
	msg, _ := seed.codecs["src"].Pack(5, public, 3, update(1))
	f.Add(msg)
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fx := newFixture(t, 3)
		in, err := fx.eng.Receive(t0, "a", b, nil, window)
		if err == nil {
			fx.eng.Admit(t0, in, nil)
		}
		var total uint64
		for _, n := range fx.eng.Counters().Received {
			total += n
		}
		if total != 1 {
			t.Fatalf("%d results counted for one delta", total)
		}
	})
}

func TestHolderHints(t *testing.T) {
	f := newFixture(t, 3)
	// src sent to me, a and b, and says so in the hint list.
	msg, err := f.codecs["src"].WithHints(f.pack(t, "src", 5, public, 3, 1), []gossip.PeerID{"me", "a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	in, err := f.eng.Receive(t0, "src", msg, nil, window)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := f.eng.Admit(t0, in, nil)
	targets := map[gossip.PeerID]bool{}
	for _, o := range out {
		targets[o.To] = true
	}
	// Fan-out 3 among c, d, e: the hinted a and b are left out.
	if len(out) != 3 || !targets["c"] || !targets["d"] || !targets["e"] {
		t.Fatalf("relayed to %v, want c, d and e", targets)
	}
	hints, err := f.codecs["me"].Hints(out[0].Offer)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []gossip.PeerID{"c", "d", "e", "src", "a", "b", "me"} {
		if !slices.Contains(hints, want) {
			t.Fatalf("relayed hint list %v lacks %s", hints, want)
		}
	}
	if env, err := f.codecs["me"].UnpackOffer(out[0].Offer); err != nil || env.Digest != in.Env.Digest {
		t.Fatalf("hints broke the signed envelope: %v", err)
	}
}
