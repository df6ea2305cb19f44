package wire

import (
	"bytes"
	"errors"
	"testing"

	"github.com/dafnet/daf/privacy"
	"github.com/dafnet/daf/seal"
)

// receive is the authentication part of the delta receive path (whole envelope):
// decode, verify, replay check.
func receive(g *ReplayGuard, b []byte, current uint64) (*Envelope, error) {
	e, err := Unmarshal(b, DefaultLimits())
	if err != nil {
		return nil, err
	}
	if err := Verify(e); err != nil {
		return nil, err
	}
	return e, g.Check(e, current)
}

// TestReplaysRejected replays a valid envelope as is, into another round and
// into another scope, the ways an attacker holding a copy could try.
func TestReplaysRejected(t *testing.T) {
	src := identity(t, 70)
	g := NewReplayGuard(2)
	e := signedEnvelope(t, src, 30, privacy.Group, "ward", []byte("sealed update"))
	b, _ := e.Marshal()
	if _, err := receive(g, b, 30); err != nil {
		t.Fatal(err)
	}
	if _, err := receive(g, b, 30); !errors.Is(err, ErrReplay) {
		t.Fatalf("same round: err = %v", err)
	}
	if _, err := receive(g, b, 31); !errors.Is(err, ErrReplay) {
		t.Fatalf("next round, still in window: err = %v", err)
	}
	// A relay may change the hop count without re-signing; that does not
	// make a copy new.
	for _, hops := range []byte{0, 1, 7, 255} {
		c := bytes.Clone(b)
		c[HopsOffset] = hops
		if _, err := receive(g, c, 31); !errors.Is(err, ErrReplay) {
			t.Fatalf("copy with hop count %d: err = %v", hops, err)
		}
	}
	if _, err := receive(g, b, 40); !errors.Is(err, ErrRoundOutOfWindow) {
		t.Fatalf("ten rounds later: err = %v", err)
	}
	for name, f := range map[string]func(c *Envelope){
		"other round": func(c *Envelope) { c.Round = 41 },
		"other scope": func(c *Envelope) { c.Scope = "ward-2" },
		"other tier":  func(c *Envelope) { c.Tier = uint8(privacy.Tenant) },
	} {
		c := *e
		f(&c)
		cb, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := receive(g, cb, 41); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("%s: err = %v", name, err)
		}
	}
	// Re-signing under the attacker's own identity makes it the attacker's
	// update, and the sealed payload no longer opens (SealAD binds source).
	rng := seeded(71)
	key, _ := seal.NewScopeKey(rng, "group", "ward", 1)
	orig := &Envelope{Version: Version, FederationID: "f", Round: 41, Tier: uint8(privacy.Group), Scope: "ward", KeyEpoch: 1, Source: src.Public()}
	orig.Payload, _ = seal.SealPayload(key, []byte("update"), SealAD(orig), rng)
	Sign(orig, src)
	moved := *orig
	moved.Scope, moved.Round = "ward", 42
	Sign(&moved, identity(t, 72))
	if _, err := seal.OpenPayload(key, moved.Payload, SealAD(&moved)); !errors.Is(err, seal.ErrOpen) {
		t.Fatalf("payload moved into another round and source opened: err = %v", err)
	}
}

func TestUnmarshalAllocationIndependentOfPayload(t *testing.T) {
	src := identity(t, 73)
	for _, size := range []int{0, 1 << 10, 1 << 22} {
		b, _ := signedEnvelope(t, src, 1, privacy.Public, "", make([]byte, size)).Marshal()
		allocs := testing.AllocsPerRun(20, func() {
			if _, err := Unmarshal(b, DefaultLimits()); err != nil {
				t.Fatal(err)
			}
		})
		if allocs > 3 {
			t.Fatalf("payload of %d bytes: %v allocations (payload must alias the input)", size, allocs)
		}
	}
}
