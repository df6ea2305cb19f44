package node

import (
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
		relayed, err := b.WithHops(msg, 1)
		if err != nil {
			t.Fatal(err)
		}
		env2, err := b.Unpack(relayed)
		if err != nil || env2.HopsLeft != 1 || env2.Digest != env.Digest {
			t.Fatalf("relayed copy: %+v, %v (digest must not change with hops)", env2, err)
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
