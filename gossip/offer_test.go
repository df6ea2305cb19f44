package gossip_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/dafnet/daf/gossip"
)

// split cuts a whole simulator message into the two frames of ProtoDelta.
func (f *fixture) split(t *testing.T, msg []byte) (offer, body []byte) {
	t.Helper()
	offer, body, err := f.codecs["me"].Split(msg)
	if err != nil {
		t.Fatal(err)
	}
	return offer, body
}

// The two-step path: a new release is asked for, a second offer of it
// while its body is on its way waits, the body is taken, and every later
// offer is answered "have" without a body and counted as a duplicate, its
// sender then known to hold the release.
func TestOfferWantInFlightHave(t *testing.T) {
	f := newFixture(t, 3)
	offer, body := f.split(t, f.pack(t, "src", 5, public, 3, 1))
	env, err := f.eng.Offered(t0, "a", offer, window)
	if err != nil {
		t.Fatalf("first offer: %v, want nil (send the body)", err)
	}
	if env.Source != "src" || env.BodySize != len(body) || env.Body != nil {
		t.Fatalf("offer envelope %+v", env)
	}
	if _, err := f.eng.Offered(t0, "b", offer, window); !errors.Is(err, gossip.ErrInFlight) {
		t.Fatalf("offer while a's body is on its way: err = %v, want ErrInFlight", err)
	}
	in := gossip.DecodeBody(f.codecs["me"], "a", env, body)
	got, err := f.eng.Receive(t0, "a", nil, &in, window)
	if err != nil || got.Update == nil {
		t.Fatalf("body: %v", err)
	}
	out, err := f.eng.Admit(t0, got, nil)
	if err != nil || len(out) != 3 {
		t.Fatalf("relayed to %d peers (%v), want 3", len(out), err)
	}
	for _, o := range out {
		if !slices.Equal(o.Body, body) {
			t.Fatal("relay changed the body")
		}
	}
	if _, err := f.eng.Offered(t0, "b", offer, window); !errors.Is(err, gossip.ErrDuplicate) {
		t.Fatalf("offer of a held release: err = %v, want ErrDuplicate", err)
	}
	if !slices.Contains(f.eng.Holders(env.Digest), "b") {
		t.Fatal("a peer that offered a held release is not known to hold it")
	}
	c := f.eng.Counters()
	if c.Received[gossip.ResultAccepted] != 1 || c.Received[gossip.ResultDuplicate] != 1 || len(c.Received) != 2 {
		t.Fatalf("counters %v: the wait is not a result, the refused offer is a duplicate", c.Received)
	}
	if rep(f, "b") != gossip.InitialReputation {
		t.Fatal("a duplicate offer was charged")
	}
	// A whole message of a held release is a duplicate too.
	if _, err := f.eng.Receive(t0, "c", f.pack(t, "src", 5, public, 2, 1), nil, window); !errors.Is(err, gossip.ErrDuplicate) {
		t.Fatalf("whole copy: err = %v, want ErrDuplicate", err)
	}
}

// A body that is not the one its offer announced is the sender's doing:
// charged to it, and nothing about the release is recorded, so the next
// offer of it is asked for. A transfer that never ends in a body frees
// the release for the next offer too.
func TestOfferBodyMismatchAndAbandon(t *testing.T) {
	f := newFixture(t, 3)
	offer, body := f.split(t, f.pack(t, "src", 5, public, 3, 1))
	env, err := f.eng.Offered(t0, "a", offer, window)
	if err != nil {
		t.Fatal(err)
	}
	bad := slices.Clone(body)
	bad[len(bad)/2] ^= 1
	in := gossip.DecodeBody(f.codecs["me"], "a", env, bad)
	if _, err := f.eng.Receive(t0, "a", nil, &in, window); !errors.Is(err, gossip.ErrBodyMismatch) {
		t.Fatalf("changed body: err = %v, want ErrBodyMismatch", err)
	}
	if rep(f, "a") != gossip.InitialReputation-gossip.PenaltyBad {
		t.Fatal("the sender of a changed body was not charged")
	}
	if rep(f, "src") != gossip.InitialReputation {
		t.Fatal("the source was charged for a relay's change")
	}
	env, err = f.eng.Offered(t0, "b", offer, window)
	if err != nil {
		t.Fatalf("offer after a bad body: %v, want nil", err)
	}
	f.eng.OfferAbandoned("b", env.Digest)
	if _, err := f.eng.Offered(t0, "c", offer, window); err != nil {
		t.Fatalf("offer after an abandoned transfer: %v, want nil", err)
	}
	if c := f.eng.Counters(); c.Received[gossip.ResultRejectedMalformed] != 1 {
		t.Fatalf("counters %v", c.Received)
	}
}

// Everything that needs no payload is refused on the offer: a forged
// signature (charged to the peer on the connection, never the claimed
// source), a round outside the window, a scope this node is not in, too
// many hops, an equivocation.
func TestOfferRefusals(t *testing.T) {
	f := newFixture(t, 3)
	forger := *f.codecs["e"]
	forger.SignAs = "src"
	forged, _ := forger.Pack(5, public, 3, update(1000))
	offer, _ := f.split(t, forged)
	if _, err := f.eng.Offered(t0, "e", offer, window); !errors.Is(err, gossip.ErrSignature) {
		t.Fatalf("forged offer: err = %v, want ErrSignature", err)
	}
	if rep(f, "e") != gossip.InitialReputation-gossip.PenaltyBad || rep(f, "src") != gossip.InitialReputation {
		t.Fatal("forged offer charged to the wrong peer")
	}
	old, _ := f.split(t, f.pack(t, "a", 4, public, 3, 1))
	if _, err := f.eng.Offered(t0, "a", old, window); !errors.Is(err, gossip.ErrReplay) {
		t.Fatalf("old round: err = %v, want ErrReplay", err)
	}
	hops, _ := f.split(t, f.pack(t, "a", 5, public, 4, 1))
	if _, err := f.eng.Offered(t0, "a", hops, window); !errors.Is(err, gossip.ErrHops) {
		t.Fatalf("too many hops: err = %v, want ErrHops", err)
	}
	if _, err := f.eng.Offered(t0, "a", []byte("garbage"), window); !errors.Is(err, gossip.ErrMalformed) {
		t.Fatalf("garbage: err = %v, want ErrMalformed", err)
	}
	first, body := f.split(t, f.pack(t, "a", 5, public, 3, 1))
	env, err := f.eng.Offered(t0, "a", first, window)
	if err != nil {
		t.Fatal(err)
	}
	in := gossip.DecodeBody(f.codecs["me"], "a", env, body)
	if _, err := f.eng.Receive(t0, "a", nil, &in, window); err != nil {
		t.Fatal(err)
	}
	second, _ := f.split(t, f.pack(t, "a", 5, public, 3, 2))
	if _, err := f.eng.Offered(t0, "b", second, window); !errors.Is(err, gossip.ErrEquivocation) {
		t.Fatalf("second release of a in round 5: err = %v, want ErrEquivocation", err)
	}
	f.eng.ForgetBefore(6)
	if _, err := f.eng.Offered(t0, "b", first, gossip.Window{Lo: 6, Hi: 7}); !errors.Is(err, gossip.ErrReplay) {
		t.Fatalf("after the round was forgotten: err = %v, want ErrReplay", err)
	}
}

// An offer refused because the peer holds the release delivered nothing:
// the release is offered to one more live member not known to hold it, as
// many times per release as the fan-out. Other refusals change nothing.
func TestDeclinedOfferGoesToAnotherPeer(t *testing.T) {
	f := newFixture(t, 3)
	for _, id := range []gossip.PeerID{"f", "g", "h", "i", "j"} {
		f.eng.Table().Upsert(gossip.PeerInfo{ID: id, Memberships: []gossip.Membership{public}, LastSeen: t0})
	}
	// 11 peers: fan-out max(⌈√11⌉, 2) = 4.
	_, out, err := f.eng.Publish(t0, 5, public, update(1))
	if err != nil || len(out) != 4 {
		t.Fatalf("publish: %d offers, %v", len(out), err)
	}
	offered := map[gossip.PeerID]bool{}
	for _, o := range out {
		offered[o.To] = true
	}
	if more := f.eng.SendFailed(t0, out[0], gossip.ParseRefusal("rejected_byzantine: norm")); len(more) != 0 {
		t.Fatalf("a refusal for another reason led to %d more offers", len(more))
	}
	queue := []gossip.Outbound{out[1], out[2]}
	replacements := 0
	for len(queue) > 0 {
		o := queue[0]
		queue = queue[1:]
		for _, m := range f.eng.SendFailed(t0, o, gossip.ParseRefusal("duplicate: held")) {
			if offered[m.To] || m.To == "me" {
				t.Fatalf("offered again to %s", m.To)
			}
			env, err := f.codecs["me"].UnpackOffer(m.Offer)
			if err != nil || env.Digest != o.Digest || env.HopsLeft != 3 || !slices.Equal(m.Body, o.Body) {
				t.Fatalf("the replacement is not the same release at the same hop count: %v", err)
			}
			offered[m.To] = true
			replacements++
			queue = append(queue, m)
		}
	}
	if replacements != 4 || len(offered) != 8 {
		t.Fatalf("%d replacement offers, %d peers offered; want 4 (the fan-out) and 8", replacements, len(offered))
	}
	if c := f.eng.Counters(); c.Declined != 6 || c.SendFailures != 1 {
		t.Fatalf("declined %d (want 6), failures %d (want 1)", c.Declined, c.SendFailures)
	}
}

func TestRefusalLabels(t *testing.T) {
	r := gossip.ParseRefusal(gossip.RefusalReason(fmt.Errorf("offer from peer a: %w", gossip.ErrDuplicate)))
	if r.Label != gossip.ResultDuplicate || !errors.Is(r, gossip.ErrRefused) {
		t.Fatalf("refusal %+v", r)
	}
	if r := gossip.ParseRefusal("no label here: at all"); r.Label != gossip.ResultRefused {
		t.Fatalf("unlabelled reason read as %q", r.Label)
	}
	if got := gossip.ResultOf(fmt.Errorf("queue: %w", gossip.ErrBusy)); got != gossip.ResultBusy {
		t.Fatalf("busy labelled %q", got)
	}
}
