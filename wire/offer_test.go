package wire

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/dafnet/daf/privacy"
)

// An offer is the envelope's header, byte for byte, then the payload's
// SHA-256; it verifies with the envelope's signature, and a payload that
// differs in length or content from the announced one is refused.
func TestOfferIsHeaderThenHash(t *testing.T) {
	id := identity(t, 31)
	payload := bytes.Repeat([]byte{9, 8, 7}, 1000)
	e := signedEnvelope(t, id, 12, privacy.Tenant, "acme", payload)
	e.Hops = 1
	whole, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	o := NewOffer(e)
	b, err := o.Marshal(DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(payload)
	want := append(append([]byte(nil), whole[:len(whole)-len(payload)]...), h[:]...)
	if !bytes.Equal(b, want) {
		t.Fatalf("offer\n got %x\nwant %x", b, want)
	}
	if b[HopsOffset] != 1 {
		t.Fatal("hop count not at HopsOffset")
	}
	got, err := UnmarshalOffer(b, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyOffer(got); err != nil {
		t.Fatalf("offer of a signed envelope: %v", err)
	}
	if !bytes.Equal(got.SigningBytes(), e.SigningBytes()) {
		t.Fatal("offer and envelope sign different bytes")
	}
	if got.EnvelopeSize() != len(whole) {
		t.Fatalf("announced envelope %d bytes, it has %d", got.EnvelopeSize(), len(whole))
	}
	if err := got.Matches(payload); err != nil {
		t.Fatalf("the announced payload: %v", err)
	}
	changed := bytes.Clone(payload)
	changed[100] ^= 1
	if err := got.Matches(changed); !errors.Is(err, ErrMalformed) {
		t.Fatalf("changed payload: err = %v, want ErrMalformed", err)
	}
	if err := got.Matches(payload[1:]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short payload: err = %v, want ErrMalformed", err)
	}
	// Any change to a signed field of the offer breaks the signature; the
	// hop count is not signed.
	for _, at := range []int{5, 8, len(b) - 1} {
		bad := bytes.Clone(b)
		bad[at] ^= 1
		if o, err := UnmarshalOffer(bad, DefaultLimits()); err == nil {
			if err := VerifyOffer(o); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("byte %d changed: err = %v, want ErrBadSignature", at, err)
			}
		}
	}
	hops := bytes.Clone(b)
	hops[HopsOffset] = 3
	if o, err := UnmarshalOffer(hops, DefaultLimits()); err != nil || VerifyOffer(o) != nil {
		t.Fatalf("hop count changed: %v", err)
	}
}

// The announced size is checked against the envelope limit before the
// payload is asked for.
func TestOfferLimits(t *testing.T) {
	id := identity(t, 32)
	e := signedEnvelope(t, id, 1, privacy.Public, "", make([]byte, 5000))
	b, err := NewOffer(e).Marshal(DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	small := Limits{MaxEnvelope: 4096, MaxControlFrame: 4096}
	if _, err := UnmarshalOffer(b, small); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("offer of a 5000-byte payload under a 4096 limit: err = %v", err)
	}
	if _, err := NewOffer(e).Marshal(small); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Marshal under a 4096 limit: err = %v", err)
	}
	if _, err := UnmarshalOffer(make([]byte, MaxOffer+1), DefaultLimits()); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize offer: err = %v", err)
	}
	if _, err := UnmarshalOffer(append(bytes.Clone(b[:len(b)-32]), 0), DefaultLimits()); !errors.Is(err, ErrMalformed) {
		t.Fatalf("offer cut inside its hash: err = %v", err)
	}
}

func FuzzOffer(f *testing.F) {
	id := identity(f, 91)
	for _, e := range []*Envelope{
		signedEnvelope(f, id, 1, privacy.Public, "", []byte("payload")),
		signedEnvelope(f, id, 1<<40, privacy.Group, "ward", nil),
	} {
		b, err := NewOffer(e).Marshal(fuzzLimits)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := UnmarshalOffer(b, fuzzLimits)
		if err != nil {
			return
		}
		_ = VerifyOffer(o)
		if o.EnvelopeSize() > fuzzLimits.MaxEnvelope {
			t.Fatalf("offer of a %d-byte envelope passed a %d limit", o.EnvelopeSize(), fuzzLimits.MaxEnvelope)
		}
		again, err := o.Marshal(fuzzLimits)
		if err != nil {
			t.Fatalf("decoded offer does not re-encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("offer not canonical:\n in %x\nout %x", b, again)
		}
	})
}
