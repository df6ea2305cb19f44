package node

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/dafnet/daf/adapter"
	"github.com/dafnet/daf/compress"
	"github.com/dafnet/daf/gossip"
	"github.com/dafnet/daf/p2p"
	"github.com/dafnet/daf/privacy"
	"github.com/dafnet/daf/seal"
	"github.com/dafnet/daf/wire"
)

// envelopeCodec is the product's gossip.Codec: updates are compressed
// (package compress: sparse or quantised per [federation.compression], with
// error feedback so quantisation error is carried into the next round
// instead of lost), sealed with the scope key for Group and Tenant (seal), and
// carried in wire's signed envelope. It is safe for concurrent use, so the
// pipeline unpacks and opens deltas on several cores.
type envelopeCodec struct {
	id      *seal.Identity
	fedID   string
	maxHops int
	lim     wire.Limits
	rand    io.Reader
	opts    compress.Options
	unlim   compress.Limits

	mu   sync.RWMutex
	keys *seal.ScopeKeyring
	fb   *compress.ErrorFeedback // under mu (write lock)
}

var _ gossip.Codec = (*envelopeCodec)(nil)

func newEnvelopeCodec(id *seal.Identity, fedID string, maxHops int, lim wire.Limits, opts compress.Options, rand io.Reader) (*envelopeCodec, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("federation.compression: %w", err)
	}
	unlim := compress.DefaultLimits()
	unlim.MaxBytes = lim.MaxEnvelope
	return &envelopeCodec{id: id, fedID: fedID, maxHops: maxHops, lim: lim, rand: rand, opts: opts, unlim: unlim,
		keys: seal.NewScopeKeyring(), fb: compress.NewErrorFeedback()}, nil
}

// addKey makes a scope key available for sealing and opening.
func (c *envelopeCodec) addKey(k *seal.ScopeKey) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.keys.Add(k)
}

func sealedTier(t privacy.Tier) bool { return t == privacy.Group || t == privacy.Tenant }

// Pack implements gossip.Codec.
func (c *envelopeCodec) Pack(round uint64, scope gossip.Membership, hopsLeft int, u *adapter.Update) ([]byte, error) {
	if hopsLeft < 0 || hopsLeft > c.maxHops {
		return nil, fmt.Errorf("pack round %d: %d hops left, max_hops %d", round, hopsLeft, c.maxHops)
	}
	c.mu.Lock()
	payload, err := compress.EncodeUpdate(u, c.opts, c.fb)
	c.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("pack round %d %s: %w", round, scope, err)
	}
	env := wire.Envelope{
		Version: wire.Version, FederationID: c.fedID, Source: c.id.Public(), Round: round,
		Tier: uint8(scope.Tier), Scope: scope.Scope, Hops: uint8(c.maxHops - hopsLeft),
	}
	if sealedTier(scope.Tier) {
		c.mu.RLock()
		k, err := c.keys.Latest(scope.Tier.String(), scope.Scope)
		c.mu.RUnlock()
		if err != nil {
			return nil, fmt.Errorf("pack round %d %s: %w", round, scope, err)
		}
		env.KeyEpoch = k.Epoch
		env.Payload, err = seal.SealPayload(k, payload, wire.SealAD(&env), c.rand)
		if err != nil {
			return nil, fmt.Errorf("pack round %d %s: %w", round, scope, err)
		}
	} else {
		env.Payload = payload
	}
	wire.Sign(&env, c.id)
	return env.MarshalWithin(c.lim)
}

// Unpack implements gossip.Codec: decode, check limits, verify the source's
// signature. The payload is hashed once, for the signature and the digest
// alike.
func (c *envelopeCodec) Unpack(msg []byte) (gossip.Envelope, error) {
	e, err := wire.Unmarshal(msg, c.lim)
	if err != nil {
		return gossip.Envelope{}, mapWireErr(err)
	}
	o := wire.NewOffer(e)
	offer, err := o.Marshal(c.lim)
	if err != nil {
		return gossip.Envelope{}, mapWireErr(err)
	}
	env, err := c.verified(o, offer)
	if err != nil {
		return gossip.Envelope{}, err
	}
	env.Body, env.Size = e.Payload, len(msg)
	return env, nil
}

// UnpackOffer implements gossip.Codec: decode (the announced envelope
// size against the limit), verify the source's signature over the
// announced payload hash.
func (c *envelopeCodec) UnpackOffer(offer []byte) (gossip.Envelope, error) {
	o, err := wire.UnmarshalOffer(offer, c.lim)
	if err != nil {
		return gossip.Envelope{}, mapWireErr(err)
	}
	return c.verified(o, offer)
}

// verified checks an offer's source, signature and federation and makes
// its gossip envelope (without a body). An envelope that fails here is
// returned empty: gossip.Decode callers then let the engine redo Unpack
// and classify the failure itself.
func (c *envelopeCodec) verified(o *wire.Offer, offer []byte) (gossip.Envelope, error) {
	src, err := p2p.PeerIDFromPublicKey(o.Source)
	if err != nil {
		return gossip.Envelope{}, fmt.Errorf("%w: source key: %v", gossip.ErrMalformed, err)
	}
	signed := o.SigningBytes()
	if err := wire.VerifyOffer(o); err != nil {
		return gossip.Envelope{}, mapWireErr(err)
	}
	if o.FederationID != c.fedID {
		return gossip.Envelope{}, fmt.Errorf("%w: federation %q, this node is in %q", gossip.ErrNotMember, o.FederationID, c.fedID)
	}
	return gossip.Envelope{
		Source: src, Round: o.Round, Scope: gossip.Membership{Tier: privacy.Tier(o.Tier), Scope: o.Scope},
		HopsLeft: c.maxHops - int(o.Hops), Digest: sha256.Sum256(signed),
		Offer: offer, BodySize: int(o.PayloadLen), Size: o.EnvelopeSize(),
	}, nil
}

// WithBody implements gossip.Codec: the body must be the payload whose
// length and hash the signed offer announced.
func (c *envelopeCodec) WithBody(env gossip.Envelope, body []byte) (gossip.Envelope, error) {
	o, err := wire.UnmarshalOffer(env.Offer, c.lim)
	if err != nil {
		return gossip.Envelope{}, mapWireErr(err)
	}
	if err := o.Matches(body); err != nil {
		return gossip.Envelope{}, mapWireErr(err)
	}
	env.Body = body
	return env, nil
}

// Open implements gossip.Codec: the header fields the payload's sealing
// bound (wire.SealAD) come from the offer.
func (c *envelopeCodec) Open(env gossip.Envelope) (*adapter.Update, error) {
	o, err := wire.UnmarshalOffer(env.Offer, c.lim)
	if err != nil {
		return nil, mapWireErr(err)
	}
	e := &o.Envelope
	payload := env.Body
	if sealedTier(privacy.Tier(e.Tier)) {
		c.mu.RLock()
		k, err := c.keys.Get(privacy.Tier(e.Tier).String(), e.Scope, e.KeyEpoch)
		c.mu.RUnlock()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", gossip.ErrSeal, err)
		}
		payload, err = seal.OpenPayload(k, env.Body, wire.SealAD(e))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", gossip.ErrSeal, err)
		}
	}
	u, err := compress.DecodeUpdate(payload, c.unlim)
	if err != nil {
		if errors.Is(err, compress.ErrTooLarge) {
			return nil, fmt.Errorf("%w: %v", gossip.ErrTooLarge, err)
		}
		return nil, fmt.Errorf("%w: %v", gossip.ErrMalformed, err)
	}
	// The signed header, not the payload's own metadata, says whose update
	// this is and for which round and scope.
	u.Meta.Node = string(env.Source)
	u.Meta.Round = e.Round
	u.Meta.Tier = privacy.Tier(e.Tier).String()
	u.Meta.Scope = e.Scope
	return u, nil
}

// OfferWithHops implements gossip.Codec: the hop count sits at the same
// offset in an offer as in an envelope.
func (c *envelopeCodec) OfferWithHops(offer []byte, hopsLeft int) ([]byte, error) {
	if _, err := wire.UnmarshalOffer(offer, c.lim); err != nil {
		return nil, mapWireErr(err)
	}
	if hopsLeft < 0 || hopsLeft > c.maxHops {
		return nil, fmt.Errorf("%w: %d hops left, max_hops %d", gossip.ErrHops, hopsLeft, c.maxHops)
	}
	out := bytes.Clone(offer)
	out[wire.HopsOffset] = uint8(c.maxHops - hopsLeft)
	return out, nil
}

// mapWireErr puts wire's error categories into gossip's, which the engine
// counts and charges.
func mapWireErr(err error) error {
	switch {
	case errors.Is(err, wire.ErrTooLarge):
		return fmt.Errorf("%w: %v", gossip.ErrTooLarge, err)
	case errors.Is(err, wire.ErrBadSignature):
		return fmt.Errorf("%w: %v", gossip.ErrSignature, err)
	case errors.Is(err, wire.ErrBadTier):
		return fmt.Errorf("%w: %v", gossip.ErrNotMember, err)
	}
	return fmt.Errorf("%w: %v", gossip.ErrMalformed, err)
}
