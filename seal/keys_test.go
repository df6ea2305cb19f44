package seal

import (
	"bytes"
	"errors"
	"testing"
)

func TestKeyRecordRoundTripAndTamper(t *testing.T) {
	id := mustIdentity(t, 10)
	r := NewKeyRecord(id, 1_700_000_000)
	if err := r.Verify(); err != nil {
		t.Fatal(err)
	}
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != KeyRecordSize {
		t.Fatalf("marshalled %d bytes, want %d", len(b), KeyRecordSize)
	}
	back, err := UnmarshalKeyRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Identity.Equal(id.Public()) || !bytes.Equal(back.X25519, id.X25519().PublicKey().Bytes()) || back.Issued != 1_700_000_000 {
		t.Fatalf("round trip changed the record: %+v", back)
	}
	for bit := 0; bit < len(b)*8; bit++ {
		c := bytes.Clone(b)
		c[bit/8] ^= 1 << (bit % 8)
		if _, err := UnmarshalKeyRecord(c); !errors.Is(err, ErrBadKeyRecord) {
			t.Fatalf("bit %d flipped: err = %v", bit, err)
		}
	}
	if _, err := UnmarshalKeyRecord(b[:len(b)-1]); !errors.Is(err, ErrBadKeyRecord) {
		t.Fatalf("truncated: err = %v", err)
	}
	// ParseKeyRecord decodes without verifying: a bad signature parses and
	// fails Verify; a record of the wrong size does not parse.
	c := bytes.Clone(b)
	c[len(c)-1] ^= 1
	parsed, err := ParseKeyRecord(c)
	if err != nil || !parsed.Identity.Equal(id.Public()) {
		t.Fatalf("parse of a record with a bad signature: %v", err)
	}
	if err := parsed.Verify(); !errors.Is(err, ErrBadKeyRecord) {
		t.Fatalf("verify of a bad signature: err = %v", err)
	}
	if _, err := ParseKeyRecord(b[1:]); !errors.Is(err, ErrBadKeyRecord) {
		t.Fatalf("parse of a truncated record: err = %v", err)
	}
	// A record re-signed by another identity is not this node's record.
	other := mustIdentity(t, 11)
	forged := *r
	forged.Signature = other.Sign(r.signingBytes())
	if err := forged.Verify(); !errors.Is(err, ErrBadKeyRecord) {
		t.Fatalf("forged signature: err = %v", err)
	}
}

func TestKeyRecordRefusesLowOrderPoint(t *testing.T) {
	id := mustIdentity(t, 12)
	r := &KeyRecord{Identity: id.Public(), X25519: make([]byte, 32), Issued: 1}
	r.Signature = id.Sign(r.signingBytes())
	if err := r.Verify(); !errors.Is(err, ErrBadKeyRecord) {
		t.Fatalf("all-zero x25519 key: err = %v", err)
	}
}

func TestWrapUnwrap(t *testing.T) {
	rng := seededReader(20)
	alice, bob := mustIdentity(t, 21), mustIdentity(t, 22)
	k, err := NewScopeKey(rng, "group", "lab-7", 3)
	if err != nil {
		t.Fatal(err)
	}
	w, err := WrapScopeKey(rng, k, alice.X25519().PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnwrapScopeKey(w, alice.X25519())
	if err != nil {
		t.Fatal(err)
	}
	if *got != *k {
		t.Fatalf("unwrapped %v, want %v", got, k)
	}
	if _, err := UnwrapScopeKey(w, bob.X25519()); !errors.Is(err, ErrUnwrap) {
		t.Fatalf("wrong recipient: err = %v", err)
	}
	for bit := 0; bit < len(w)*8; bit++ {
		c := bytes.Clone(w)
		c[bit/8] ^= 1 << (bit % 8)
		if _, err := UnwrapScopeKey(c, alice.X25519()); !errors.Is(err, ErrUnwrap) {
			t.Fatalf("bit %d flipped: err = %v", bit, err)
		}
	}
	w2, _ := WrapScopeKey(rng, k, alice.X25519().PublicKey())
	if bytes.Equal(w, w2) {
		t.Fatal("two wraps of one key are identical: the ephemeral key is not fresh")
	}
}

func TestScopeKeyValidation(t *testing.T) {
	rng := seededReader(30)
	for _, c := range []struct{ tier, scope string }{
		{"public", "x"}, {"private", "x"}, {"group", ""}, {"tenant", string(make([]byte, MaxScopeLen+1))}, {"Group", "x"},
	} {
		if _, err := NewScopeKey(rng, c.tier, c.scope, 0); !errors.Is(err, ErrBadScopeKey) {
			t.Fatalf("tier %q scope len %d: err = %v", c.tier, len(c.scope), err)
		}
	}
	if _, err := NewScopeKey(rng, "tenant", string(make([]byte, MaxScopeLen)), 0); err != nil {
		t.Fatalf("scope of exactly MaxScopeLen: %v", err)
	}
}

func TestSealOpen(t *testing.T) {
	rng := seededReader(40)
	k, _ := NewScopeKey(rng, "tenant", "acme", 1)
	ad := []byte("envelope header")
	plain := []byte("per-group LoRA tensors")
	s, err := SealPayload(k, plain, ad, rng)
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != len(plain)+SealOverhead {
		t.Fatalf("sealed %d bytes, want %d", len(s), len(plain)+SealOverhead)
	}
	got, err := OpenPayload(k, s, ad)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open: %q, %v", got, err)
	}
	// The same key bytes under another scope, tier or epoch do not open it:
	// a payload cannot be moved between scopes.
	moved := []*ScopeKey{
		{Tier: "tenant", Scope: "acme2", Epoch: 1, Key: k.Key},
		{Tier: "group", Scope: "acme", Epoch: 1, Key: k.Key},
		{Tier: "tenant", Scope: "acme", Epoch: 2, Key: k.Key},
	}
	for _, m := range moved {
		if _, err := OpenPayload(m, s, ad); !errors.Is(err, ErrOpen) {
			t.Fatalf("opened under %v: err = %v", m, err)
		}
	}
	if _, err := OpenPayload(k, s, []byte("other header")); !errors.Is(err, ErrOpen) {
		t.Fatalf("other associated data: err = %v", err)
	}
	for bit := 0; bit < len(s)*8; bit++ {
		c := bytes.Clone(s)
		c[bit/8] ^= 1 << (bit % 8)
		if _, err := OpenPayload(k, c, ad); !errors.Is(err, ErrOpen) {
			t.Fatalf("bit %d flipped: err = %v", bit, err)
		}
	}
	if _, err := OpenPayload(k, s[:SealOverhead-1], ad); !errors.Is(err, ErrOpen) {
		t.Fatalf("short: err = %v", err)
	}
}

func TestGrantRoundTripAndChecks(t *testing.T) {
	rng := seededReader(50)
	admin, member, outsider := mustIdentity(t, 51), mustIdentity(t, 52), mustIdentity(t, 53)
	k, _ := NewScopeKey(rng, "group", "ward-3", 9)
	g, err := NewScopeKeyGrant(rng, admin, k, NewKeyRecord(member, 5))
	if err != nil {
		t.Fatal(err)
	}
	b, err := g.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := UnmarshalScopeKeyGrant(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := back.Open(member)
	if err != nil || *got != *k {
		t.Fatalf("open: %v, %v", got, err)
	}
	if _, err := back.Open(outsider); !errors.Is(err, ErrBadGrant) {
		t.Fatalf("outsider opened a grant: err = %v", err)
	}
	for bit := 0; bit < len(b)*8; bit++ {
		c := bytes.Clone(b)
		c[bit/8] ^= 1 << (bit % 8)
		if g2, err := UnmarshalScopeKeyGrant(c); err == nil {
			t.Fatalf("bit %d flipped: accepted grant %+v", bit, g2)
		}
	}
	// An issuer who signs an outer epoch that differs from the wrapped key
	// is caught by Open.
	lying := *g
	lying.Epoch = 10
	lying.Signature = admin.Sign(lying.signingBytes())
	if _, err := lying.Open(member); !errors.Is(err, ErrBadGrant) {
		t.Fatalf("outer/inner mismatch: err = %v", err)
	}
}

// TestRotationScenario follows DESIGN §5: an admin grants a group key to
// three members, then rotates it without the removed member.
func TestRotationScenario(t *testing.T) {
	rng := seededReader(60)
	admin := mustIdentity(t, 61)
	members := []*Identity{mustIdentity(t, 62), mustIdentity(t, 63), mustIdentity(t, 64)}
	rings := make([]*ScopeKeyring, len(members))
	for i := range rings {
		rings[i] = NewScopeKeyring()
	}
	grantAll := func(k *ScopeKey, to []int) {
		for _, i := range to {
			g, err := NewScopeKeyGrant(rng, admin, k, NewKeyRecord(members[i], 1))
			if err != nil {
				t.Fatal(err)
			}
			wire, _ := g.Marshal()
			g2, err := UnmarshalScopeKeyGrant(wire)
			if err != nil {
				t.Fatal(err)
			}
			key, err := g2.Open(members[i])
			if err != nil {
				t.Fatal(err)
			}
			if err := rings[i].Add(key); err != nil {
				t.Fatal(err)
			}
		}
	}
	k1, _ := NewScopeKey(rng, "group", "g", 1)
	grantAll(k1, []int{0, 1, 2})
	sealWith := func(sender int, msg string) ([]byte, uint32) {
		k, err := rings[sender].Latest("group", "g")
		if err != nil {
			t.Fatal(err)
		}
		s, err := SealPayload(k, []byte(msg), nil, rng)
		if err != nil {
			t.Fatal(err)
		}
		return s, k.Epoch
	}
	open := func(receiver int, s []byte, epoch uint32) error {
		k, err := rings[receiver].Get("group", "g", epoch)
		if err != nil {
			return err
		}
		_, err = OpenPayload(k, s, nil)
		return err
	}
	old, e1 := sealWith(0, "round 1")
	for i := range members {
		if err := open(i, old, e1); err != nil {
			t.Fatalf("member %d cannot open epoch-1 payload: %v", i, err)
		}
	}
	// Member 2 leaves: epoch 2 goes to members 0 and 1 only.
	k2, _ := NewScopeKey(rng, "group", "g", 2)
	grantAll(k2, []int{0, 1})
	fresh, e2 := sealWith(1, "round 2")
	if e2 != 2 {
		t.Fatalf("sender sealed with epoch %d after rotation, want 2", e2)
	}
	if err := open(0, fresh, e2); err != nil {
		t.Fatalf("remaining member cannot open epoch 2: %v", err)
	}
	if err := open(2, fresh, e2); !errors.Is(err, ErrNoScopeKey) {
		t.Fatalf("removed member: err = %v, want ErrNoScopeKey", err)
	}
	// Even holding the old key, the removed member cannot open epoch 2.
	if _, err := OpenPayload(&ScopeKey{Tier: "group", Scope: "g", Epoch: 2, Key: k1.Key}, fresh, nil); !errors.Is(err, ErrOpen) {
		t.Fatalf("old key opened new epoch: err = %v", err)
	}
	// In-flight epoch-1 updates still open after rotation until pruned.
	if err := open(0, old, e1); err != nil {
		t.Fatalf("epoch-1 payload after rotation: %v", err)
	}
	rings[0].Retire("group", "g", 2)
	if got := rings[0].Epochs("group", "g"); len(got) != 1 || got[0] != 2 {
		t.Fatalf("after retiring epochs below 2: epochs = %v, want [2]", got)
	}
	if err := open(0, old, e1); !errors.Is(err, ErrNoScopeKey) {
		t.Fatalf("retired epoch: err = %v", err)
	}
	// A retired epoch stays retired: its key, offered again (an old grant
	// pushed back), is refused.
	if err := rings[0].Add(k1); !errors.Is(err, ErrRetiredScopeKey) {
		t.Fatalf("re-adding a retired epoch: err = %v, want ErrRetiredScopeKey", err)
	}
	if err := open(0, old, e1); !errors.Is(err, ErrNoScopeKey) {
		t.Fatalf("retired epoch after it was offered again: err = %v", err)
	}
	// Retiring is per scope, never backwards, and keeps the newest epoch
	// even if asked to retire past it.
	rings[0].Retire("group", "g", 1)
	rings[0].Retire("group", "g", 9)
	if got := rings[0].Epochs("group", "g"); len(got) != 1 || got[0] != 2 {
		t.Fatalf("after retiring past the newest: epochs = %v, want [2]", got)
	}
	if err := rings[1].Add(k1); err != nil {
		t.Fatalf("another keyring: %v", err)
	}
}

func TestKeyringConflicts(t *testing.T) {
	rng := seededReader(70)
	r := NewScopeKeyring()
	a, _ := NewScopeKey(rng, "group", "g", 1)
	b, _ := NewScopeKey(rng, "group", "g", 1)
	if err := r.Add(a); err != nil {
		t.Fatal(err)
	}
	if err := r.Add(a); err != nil {
		t.Fatalf("re-adding the same key: %v", err)
	}
	if err := r.Add(b); !errors.Is(err, ErrBadScopeKey) {
		t.Fatalf("conflicting key for one epoch: err = %v", err)
	}
	if _, err := r.Latest("group", "other"); !errors.Is(err, ErrNoScopeKey) {
		t.Fatalf("unknown scope: err = %v", err)
	}
}
