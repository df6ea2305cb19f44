package wire

import (
	"errors"
	"testing"

	"github.com/dafnet/daf/privacy"
)

func TestReplayGuard(t *testing.T) {
	a, b := identity(t, 10), identity(t, 11)
	g := NewReplayGuard(2)
	e := signedEnvelope(t, a, 10, privacy.Group, "g", []byte("update"))
	if err := g.Check(e, 10); err != nil {
		t.Fatal(err)
	}
	// The same envelope again, e.g. via a second relay path or a replay.
	relayed := *e
	relayed.Hops = 2
	if err := g.Check(&relayed, 10); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: err = %v", err)
	}
	// A second, different update from the same source for the same round.
	second := signedEnvelope(t, a, 10, privacy.Group, "g", []byte("other update"))
	if err := g.Check(second, 10); !errors.Is(err, ErrEquivocation) {
		t.Fatalf("equivocation: err = %v", err)
	}
	// Other sources, scopes, tiers and rounds have their own slots.
	for _, ok := range []*Envelope{
		signedEnvelope(t, b, 10, privacy.Group, "g", []byte("update")),
		signedEnvelope(t, a, 10, privacy.Group, "h", []byte("update")),
		signedEnvelope(t, a, 10, privacy.Tenant, "g", []byte("update")),
		signedEnvelope(t, a, 9, privacy.Group, "g", []byte("update")),
		signedEnvelope(t, a, 11, privacy.Group, "g", []byte("update")),
	} {
		if err := g.Check(ok, 10); err != nil {
			t.Fatalf("round %d tier %d scope %q: %v", ok.Round, ok.Tier, ok.Scope, err)
		}
	}
	// Window: 10−2 .. 10+1.
	for _, r := range []uint64{7, 12, 1000} {
		if err := g.Check(signedEnvelope(t, b, r, privacy.Group, "g", []byte("x")), 10); !errors.Is(err, ErrRoundOutOfWindow) {
			t.Fatalf("round %d at current 10: err = %v", r, err)
		}
	}
	if err := g.Check(signedEnvelope(t, b, 8, privacy.Group, "g", []byte("x")), 10); err != nil {
		t.Fatalf("round 8 (oldest in window): %v", err)
	}
	// The original envelope, replayed once the window has moved on.
	if err := g.Check(e, 13); !errors.Is(err, ErrRoundOutOfWindow) {
		t.Fatalf("replay after the window moved: err = %v", err)
	}
	// Rounds below 11 are forgotten; only source a's round-11 update is left.
	if g.Len() != 1 {
		t.Fatalf("entries after the window moved = %d, want 1", g.Len())
	}
	// The floor never goes down: a caller whose round goes backwards does
	// not re-open pruned rounds.
	if err := g.Check(e, 10); !errors.Is(err, ErrRoundOutOfWindow) {
		t.Fatalf("current round went backwards: err = %v", err)
	}
}

func TestReplayGuardPrunesAndCaps(t *testing.T) {
	a := identity(t, 12)
	g := NewReplayGuard(1)
	for r := uint64(0); r < 50; r++ {
		if err := g.Check(signedEnvelope(t, a, r, privacy.Public, "", []byte{byte(r)}), r); err != nil {
			t.Fatalf("round %d: %v", r, err)
		}
	}
	// Window 1: rounds 48 and 49 are held.
	if g.Len() != 2 {
		t.Fatalf("entries = %d, want 2 (window of 1 round back)", g.Len())
	}
	g = NewReplayGuard(5)
	g.MaxEntries = 2
	ids := []uint64{13, 14, 15}
	for i, s := range ids {
		err := g.Check(signedEnvelope(t, identity(t, s), 1, privacy.Public, "", []byte("u")), 1)
		if i < 2 && err != nil {
			t.Fatal(err)
		}
		if i == 2 && !errors.Is(err, ErrReplayGuardFull) {
			t.Fatalf("third entry with MaxEntries 2: err = %v", err)
		}
	}
}

func TestStatusOf(t *testing.T) {
	cases := map[error]Status{
		nil:                 StatusAccepted,
		ErrReplay:           StatusDuplicate,
		ErrEquivocation:     StatusRejectedReplay,
		ErrRoundOutOfWindow: StatusRejectedReplay,
		ErrBadSignature:     StatusRejectedSignature,
		ErrTooLarge:         StatusRejectedSize,
		ErrUnknownVersion:   StatusRejectedVersion,
		ErrBadTier:          StatusRejectedTier,
		ErrMalformed:        StatusRejectedMalformed,
		ErrReplayGuardFull:  StatusBusy,
	}
	for err, want := range cases {
		if got := StatusOf(err); got != want {
			t.Errorf("StatusOf(%v) = %v, want %v", err, got, want)
		}
	}
	if StatusRejectedSignature.String() != "rejected_signature" || Status(200).String() != "status(200)" {
		t.Fatal("status names do not match the metric labels")
	}
}
