package sim

import (
	"crypto/ed25519"
	"errors"
	"slices"
	"testing"

	"github.com/dafnet/daf/adapter"
	"github.com/dafnet/daf/gossip"
	"github.com/dafnet/daf/privacy"
)

func testCodec() *Codec {
	keys := NewKeyring()
	priv := NewIdentity("n1", 1)
	keys.Add("n1", priv.Public().(ed25519.PublicKey))
	tenant := gossip.Membership{Tier: privacy.Tenant, Scope: "acme"}
	return &Codec{Self: "n1", Priv: priv, Keys: keys, ScopeKeys: map[gossip.Membership][]byte{tenant: make([]byte, 32)}}
}

func TestCodecRoundTrip(t *testing.T) {
	c := testCodec()
	u := adapter.New()
	u.Meta.Samples = 42
	u.Set("coarse", "a.lora_A.weight", &adapter.Tensor{Shape: []int{2, 3}, Data: []float32{1, -2, 3, 4.5, 0, -0.25}})
	u.Set("fine", "b.lora_B.weight", &adapter.Tensor{Shape: []int{1}, Data: []float32{7}})
	for _, scope := range []gossip.Membership{{Tier: privacy.Public}, {Tier: privacy.Tenant, Scope: "acme"}} {
		msg, err := c.Pack(9, scope, 3, u)
		if err != nil {
			t.Fatal(err)
		}
		env, err := c.Unpack(msg)
		if err != nil {
			t.Fatal(err)
		}
		if env.Source != "n1" || env.Round != 9 || env.Scope != scope || env.HopsLeft != 3 || env.Size != len(msg) {
			t.Fatalf("envelope %+v", env)
		}
		got, err := c.Open(env)
		if err != nil {
			t.Fatal(err)
		}
		if got.Meta.Samples != 42 || got.NumParams() != 7 || got.Get("coarse", "a.lora_A.weight").Data[3] != 4.5 ||
			got.Get("coarse", "a.lora_A.weight").Shape[1] != 3 || got.Meta.Node != "n1" || got.Meta.Tier != scope.Tier.String() {
			t.Fatalf("decoded update %+v", got.Meta)
		}
		// The offer alone verifies and names the same release; the body
		// joins it only if it is the announced one.
		offer, body, err := c.Split(msg)
		if err != nil || !slices.Equal(offer, env.Offer) || !slices.Equal(body, env.Body) {
			t.Fatalf("split: %v", err)
		}
		oenv, err := c.UnpackOffer(offer)
		if err != nil || oenv.Digest != env.Digest || oenv.Size != len(msg) || oenv.BodySize != len(body) || oenv.Body != nil {
			t.Fatalf("offer envelope %+v, err %v", oenv, err)
		}
		if full, err := c.WithBody(oenv, body); err != nil || !slices.Equal(full.Body, body) {
			t.Fatalf("body of the offer: %v", err)
		}
		changed := slices.Clone(body)
		changed[len(changed)-1] ^= 1
		if _, err := c.WithBody(oenv, changed); !errors.Is(err, gossip.ErrMalformed) {
			t.Fatalf("changed body: err = %v, want ErrMalformed", err)
		}
		if _, err := c.UnpackOffer(msg); !errors.Is(err, gossip.ErrMalformed) {
			t.Fatalf("a whole message as an offer: err = %v", err)
		}
		relayed, _ := c.OfferWithHops(offer, 1)
		env2, err := c.UnpackOffer(relayed)
		if err != nil || env2.Digest != env.Digest || env2.HopsLeft != 1 {
			t.Fatalf("hop change broke the offer: %v", err)
		}
		// Any change to the signed head is caught.
		bad := append([]byte(nil), msg...)
		bad[len(codecMagic)+9+10] ^= 1
		if _, err := c.Unpack(bad); !errors.Is(err, gossip.ErrSignature) && !errors.Is(err, gossip.ErrMalformed) {
			t.Fatalf("flipped head bit: err = %v", err)
		}
	}
}

// FuzzCodecUnpack: no input makes the decoder panic or allocate past its
// limits, and whatever it accepts opens or fails with a categorised error.
func FuzzCodecUnpack(f *testing.F) {
	c := testCodec()
	u := adapter.New()
	u.Set("coarse", "k", &adapter.Tensor{Shape: []int{3}, Data: []float32{1, 2, 3}})
	for _, scope := range []gossip.Membership{{Tier: privacy.Public}, {Tier: privacy.Tenant, Scope: "acme"}} {
		msg, _ := c.Pack(1, scope, 2, u)
		f.Add(msg)
		hinted, _ := c.WithHints(msg, []gossip.PeerID{"a", "bb"})
		f.Add(hinted)
	}
	f.Add([]byte(codecMagic))
	f.Fuzz(func(t *testing.T, msg []byte) {
		env, err := c.Unpack(msg)
		if err != nil {
			if !errors.Is(err, gossip.ErrMalformed) && !errors.Is(err, gossip.ErrSignature) && !errors.Is(err, gossip.ErrTooLarge) {
				t.Fatalf("uncategorised error %v", err)
			}
			return
		}
		if _, err := c.Open(env); err != nil && !errors.Is(err, gossip.ErrMalformed) && !errors.Is(err, gossip.ErrSeal) {
			t.Fatalf("uncategorised open error %v", err)
		}
		hints, err := c.Hints(msg)
		if err != nil && !errors.Is(err, gossip.ErrMalformed) {
			t.Fatalf("uncategorised hint error %v", err)
		}
		if err == nil {
			again, err := c.WithHints(msg, hints)
			if err != nil {
				t.Fatal(err)
			}
			if env2, err := c.Unpack(again); err != nil || env2.Digest != env.Digest {
				t.Fatalf("rewriting the hints broke the envelope: %v", err)
			}
		}
	})
}

// FuzzDecodeUpdate drives the payload decoder directly (the signature
// keeps the fuzzer from reaching it through Unpack).
func FuzzDecodeUpdate(f *testing.F) {
	u := adapter.New()
	u.Set("coarse", "k", &adapter.Tensor{Shape: []int{2, 2}, Data: []float32{1, 2, 3, 4}})
	f.Add(encodeUpdate(u))
	f.Add([]byte{1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		got, err := decodeUpdate(p)
		if err != nil {
			if !errors.Is(err, gossip.ErrMalformed) {
				t.Fatalf("uncategorised error %v", err)
			}
			return
		}
		if got.NumParams() > len(p)/4 {
			t.Fatalf("decoded %d params from %d bytes", got.NumParams(), len(p))
		}
		if err := got.CheckFinite(); err != nil {
			t.Fatal(err)
		}
	})
}
