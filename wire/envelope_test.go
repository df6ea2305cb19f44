package wire

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/dafnet/daf/privacy"
	"github.com/dafnet/daf/seal"
)

func seeded(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return rand.NewChaCha8(s)
}

func identity(t testing.TB, seed uint64) *seal.Identity {
	t.Helper()
	id, err := seal.GenerateIdentity(seeded(seed))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func signedEnvelope(t testing.TB, id *seal.Identity, round uint64, tier privacy.Tier, scope string, payload []byte) *Envelope {
	t.Helper()
	e := &Envelope{Version: Version, FederationID: "fed-A", Round: round, Tier: uint8(tier), Scope: scope, Payload: payload}
	if tier != privacy.Public {
		e.KeyEpoch = 4
	}
	Sign(e, id)
	return e
}

func TestEnvelopeLayout(t *testing.T) {
	id := identity(t, 1)
	e := signedEnvelope(t, id, 0x0102030405060708, privacy.Group, "ward", []byte{0xaa, 0xbb, 0xcc})
	e.Hops = 2
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// The layout of docs/PROTOCOL.md, built by hand.
	var want []byte
	want = append(want, 'D', 'A', 'F', 'E', 1, 1, 2, 5)
	want = append(want, "fed-A"...)
	want = append(want, id.Public()...)
	want = append(want, 1, 2, 3, 4, 5, 6, 7, 8)
	want = append(want, 4)
	want = append(want, "ward"...)
	want = append(want, 0, 0, 0, 4)
	want = append(want, 0, 0, 0, 3)
	want = append(want, e.Signature...)
	want = append(want, 0xaa, 0xbb, 0xcc)
	if !bytes.Equal(b, want) {
		t.Fatalf("layout:\n got %x\nwant %x", b, want)
	}
	if b[HopsOffset] != 2 || len(b) != e.Size() {
		t.Fatalf("hops byte %d, size %d vs %d", b[HopsOffset], len(b), e.Size())
	}
	// Signed bytes: domain, every field but hops, payload length and hash.
	h := sha256.Sum256([]byte{0xaa, 0xbb, 0xcc})
	var sb []byte
	sb = append(sb, "daf/envelope/v1\x00"...)
	sb = append(sb, 1, 1, 5)
	sb = append(sb, "fed-A"...)
	sb = append(sb, id.Public()...)
	sb = append(sb, 1, 2, 3, 4, 5, 6, 7, 8, 4)
	sb = append(sb, "ward"...)
	sb = append(sb, 0, 0, 0, 4, 0, 0, 0, 3)
	sb = append(sb, h[:]...)
	if !bytes.Equal(e.SigningBytes(), sb) {
		t.Fatalf("signing bytes:\n got %x\nwant %x", e.SigningBytes(), sb)
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	id := identity(t, 2)
	for _, e := range []*Envelope{
		signedEnvelope(t, id, 7, privacy.Public, "", []byte("public update")),
		signedEnvelope(t, id, 8, privacy.Tenant, "acme", nil),
		signedEnvelope(t, id, 9, privacy.Group, string(bytes.Repeat([]byte("s"), MaxScopeLen)), bytes.Repeat([]byte{1}, 1000)),
	} {
		b, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		back, err := Unmarshal(b, DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		if err := Verify(back); err != nil {
			t.Fatal(err)
		}
		again, _ := back.Marshal()
		if !bytes.Equal(again, b) {
			t.Fatal("re-marshalling a decoded envelope changed its bytes")
		}
	}
}

// TestEveryFlippedBitRejected flips each bit of an encoded envelope. Every
// flip must be refused by Unmarshal or Verify, except in the hop count, the
// one unsigned field, where the flip changes only Hops.
func TestEveryFlippedBitRejected(t *testing.T) {
	id := identity(t, 3)
	for _, e := range []*Envelope{
		signedEnvelope(t, id, 11, privacy.Group, "lab", []byte("sealed bytes of an update")),
		signedEnvelope(t, id, 12, privacy.Public, "", []byte("clear update")),
	} {
		b, _ := e.Marshal()
		for bit := 0; bit < len(b)*8; bit++ {
			c := bytes.Clone(b)
			c[bit/8] ^= 1 << (bit % 8)
			got, err := Unmarshal(c, DefaultLimits())
			if err == nil {
				err = Verify(got)
			}
			if bit/8 == HopsOffset {
				if err != nil || got.Hops != e.Hops^(1<<(bit%8)) {
					t.Fatalf("hops bit %d: err %v", bit, err)
				}
				continue
			}
			if err == nil {
				t.Fatalf("bit %d (byte %d) flipped: envelope accepted", bit, bit/8)
			}
		}
	}
}

func TestFieldTamperRejected(t *testing.T) {
	id, other := identity(t, 4), identity(t, 5)
	base := signedEnvelope(t, id, 20, privacy.Tenant, "acme", []byte("payload"))
	tampers := map[string]func(e *Envelope){
		"round":      func(e *Envelope) { e.Round++ },
		"scope":      func(e *Envelope) { e.Scope = "acme2" },
		"tier":       func(e *Envelope) { e.Tier = uint8(privacy.Group) },
		"federation": func(e *Envelope) { e.FederationID = "fed-B" },
		"key epoch":  func(e *Envelope) { e.KeyEpoch++ },
		"payload":    func(e *Envelope) { e.Payload = []byte("Payload") },
		"source":     func(e *Envelope) { e.Source = other.Public() },
		"appended":   func(e *Envelope) { e.Payload = append(bytes.Clone(e.Payload), 0) },
	}
	for name, tamper := range tampers {
		e := *base
		tamper(&e)
		if err := Verify(&e); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s changed: err = %v", name, err)
		}
	}
	hopped := *base
	hopped.Hops = 3
	if err := Verify(&hopped); err != nil {
		t.Fatalf("hop count is unsigned but Verify failed: %v", err)
	}
}

func TestUnmarshalRejects(t *testing.T) {
	id := identity(t, 6)
	e := signedEnvelope(t, id, 1, privacy.Public, "", []byte("xyz"))
	good, _ := e.Marshal()
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := map[string]struct {
		b    []byte
		lim  Limits
		want error
	}{
		"empty":          {nil, DefaultLimits(), ErrMalformed},
		"bad magic":      {mod(func(b []byte) []byte { b[0] = 'X'; return b }), DefaultLimits(), ErrMalformed},
		"version 2":      {mod(func(b []byte) []byte { b[4] = 2; return b }), DefaultLimits(), ErrUnknownVersion},
		"private tier":   {mod(func(b []byte) []byte { b[5] = 0; return b }), DefaultLimits(), ErrBadTier},
		"tier 9":         {mod(func(b []byte) []byte { b[5] = 9; return b }), DefaultLimits(), ErrBadTier},
		"truncated":      {good[:len(good)-1], DefaultLimits(), ErrMalformed},
		"trailing":       {append(bytes.Clone(good), 0), DefaultLimits(), ErrMalformed},
		"header only":    {good[:fixedHeader-1], DefaultLimits(), ErrMalformed},
		"over limit":     {good, Limits{MaxEnvelope: len(good) - 1}, ErrTooLarge},
		"group no scope": {mod(func(b []byte) []byte { b[5] = 1; return b }), DefaultLimits(), ErrBadTier},
	}
	for name, c := range cases {
		if _, err := Unmarshal(c.b, c.lim); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", name, err, c.want)
		}
	}
	if _, err := Unmarshal(good, Limits{MaxEnvelope: len(good)}); err != nil {
		t.Fatalf("exactly at the limit: %v", err)
	}
}

func TestMarshalRefusesInvalid(t *testing.T) {
	id := identity(t, 7)
	e := signedEnvelope(t, id, 1, privacy.Public, "", nil)
	bad := map[string]func(e *Envelope){
		"unsigned":       func(e *Envelope) { e.Signature = nil },
		"version":        func(e *Envelope) { e.Version = 0 },
		"private":        func(e *Envelope) { e.Tier = uint8(privacy.Private) },
		"long fed":       func(e *Envelope) { e.FederationID = string(make([]byte, 256)) },
		"public epoch":   func(e *Envelope) { e.KeyEpoch = 1 },
		"short source":   func(e *Envelope) { e.Source = e.Source[:31] },
		"tenant noscope": func(e *Envelope) { e.Tier = uint8(privacy.Tenant) },
	}
	for name, f := range bad {
		c := *e
		f(&c)
		if _, err := c.Marshal(); err == nil {
			t.Errorf("%s: Marshal accepted an invalid envelope", name)
		}
	}
	big := *e
	big.Payload = make([]byte, 100)
	if _, err := big.MarshalWithin(Limits{MaxEnvelope: 100}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over limit: err = %v", err)
	}
}
