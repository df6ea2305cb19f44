package node

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/dafnet/daf/compress"
	"github.com/dafnet/daf/gossip"
	"github.com/dafnet/daf/privacy"
	"github.com/dafnet/daf/seal"
	"github.com/dafnet/daf/wire"
)

func testCodec(t *testing.T, fed string) *envelopeCodec {
	t.Helper()
	id, err := seal.GenerateIdentity(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	opts := compress.DefaultOptions()
	opts.QuantizationBits = compress.RawBits
	c, err := newEnvelopeCodec(id, fed, 3, wire.DefaultLimits(), opts, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCodecPublicAndSealed(t *testing.T) {
	a, b := testCodec(t, "fed"), testCodec(t, "fed")
	key, err := seal.NewScopeKey(rand.Reader, "tenant", "acme", 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*envelopeCodec{a, b} {
		if err := c.addKey(key); err != nil {
			t.Fatal(err)
		}
	}
	u := NewPullTrainer(0.2, 2, 3, 3, 7).Target
	u.Meta.Samples = 7
	for _, scope := range []gossip.Membership{{Tier: privacy.Public}, {Tier: privacy.Tenant, Scope: "acme"}} {
		msg, err := a.Pack(9, scope, 3, u)
		if err != nil {
			t.Fatal(err)
		}
		env, err := b.Unpack(msg)
		if err != nil {
			t.Fatal(err)
		}
		if env.Round != 9 || env.Scope != scope || env.HopsLeft != 3 || env.Size != len(msg) {
			t.Fatalf("%s: envelope %+v", scope, env)
		}
		got, err := b.Open(env)
		if err != nil {
			t.Fatal(err)
		}
		if Distance(u, got) != 0 || got.Meta.Samples != 7 || got.Meta.Node != string(env.Source) {
			t.Fatalf("%s: opened update differs (meta %+v)", scope, got.Meta)
		}
		// The two frames of /daf/delta/2: the offer verifies alone and
		// names the same release; the body joins it only as announced.
		oenv, err := b.UnpackOffer(env.Offer)
		if err != nil || oenv.Digest != env.Digest || oenv.Size != len(msg) || oenv.BodySize != len(env.Body) || oenv.Body != nil {
			t.Fatalf("%s: offer envelope %+v, %v", scope, oenv, err)
		}
		full, err := b.WithBody(oenv, env.Body)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := b.Open(full); err != nil || Distance(u, got) != 0 {
			t.Fatalf("%s: opened from offer and body: %v", scope, err)
		}
		changed := bytes.Clone(env.Body)
		changed[0] ^= 1
		if _, err := b.WithBody(oenv, changed); !errors.Is(err, gossip.ErrMalformed) {
			t.Fatalf("%s: changed body: err = %v, want ErrMalformed", scope, err)
		}
		relayed, err := b.OfferWithHops(env.Offer, 1)
		if err != nil {
			t.Fatal(err)
		}
		env2, err := b.UnpackOffer(relayed)
		if err != nil || env2.HopsLeft != 1 || env2.Digest != env.Digest {
			t.Fatalf("relayed offer: %+v, %v (digest must not change with hops)", env2, err)
		}
		if _, err := b.OfferWithHops(env.Offer, 4); !errors.Is(err, gossip.ErrHops) {
			t.Fatalf("hops above max_hops: err = %v", err)
		}
	}
	// A node without the tenant key verifies the envelope but cannot open it.
	outsider := testCodec(t, "fed")
	msg, _ := a.Pack(9, gossip.Membership{Tier: privacy.Tenant, Scope: "acme"}, 3, u)
	env, err := outsider.Unpack(msg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := outsider.Open(env); !errors.Is(err, gossip.ErrSeal) {
		t.Fatalf("outsider open: err = %v, want ErrSeal", err)
	}
	// Flipping a payload byte breaks the signature.
	msg[len(msg)-1] ^= 1
	if _, err := b.Unpack(msg); !errors.Is(err, gossip.ErrSignature) {
		t.Fatalf("tampered: err = %v, want ErrSignature", err)
	}
	other := testCodec(t, "other-fed")
	msg, _ = a.Pack(9, gossip.Membership{Tier: privacy.Public}, 3, u)
	if _, err := other.Unpack(msg); !errors.Is(err, gossip.ErrNotMember) {
		t.Fatalf("foreign federation: err = %v", err)
	}
	if _, err := b.Unpack([]byte("garbage")); !errors.Is(err, gossip.ErrMalformed) {
		t.Fatalf("garbage: err = %v", err)
	}
}
