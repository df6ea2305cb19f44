package node

import (
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
// signature. The gossip envelope's Payload is the whole wire message, since
// Open needs the epoch and the associated data the header carries.
func (c *envelopeCodec) Unpack(msg []byte) (gossip.Envelope, error) {
	e, err := wire.Unmarshal(msg, c.lim)
	if err != nil {
		return gossip.Envelope{}, mapWireErr(err)
	}
	src, err := p2p.PeerIDFromPublicKey(e.Source)
	if err != nil {
		return gossip.Envelope{}, fmt.Errorf("%w: source key: %v", gossip.ErrMalformed, err)
	}
	env := gossip.Envelope{
		Source: src, Round: e.Round, Scope: gossip.Membership{Tier: privacy.Tier(e.Tier), Scope: e.Scope},
		HopsLeft: c.maxHops - int(e.Hops), Digest: sha256.Sum256(e.SigningBytes()), Payload: msg, Size: len(msg),
	}
	// An envelope that fails here is returned empty: gossip.Decode callers
	// then let the engine redo Unpack and classify the failure itself.
	if err := wire.Verify(e); err != nil {
		return gossip.Envelope{}, mapWireErr(err)
	}
	if e.FederationID != c.fedID {
		return gossip.Envelope{}, fmt.Errorf("%w: federation %q, this node is in %q", gossip.ErrNotMember, e.FederationID, c.fedID)
	}
	return env, nil
}

// Open implements gossip.Codec.
func (c *envelopeCodec) Open(env gossip.Envelope) (*adapter.Update, error) {
	e, err := wire.Unmarshal(env.Payload, c.lim)
	if err != nil {
		return nil, mapWireErr(err)
	}
	payload := e.Payload
	if sealedTier(privacy.Tier(e.Tier)) {
		c.mu.RLock()
		k, err := c.keys.Get(privacy.Tier(e.Tier).String(), e.Scope, e.KeyEpoch)
		c.mu.RUnlock()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", gossip.ErrSeal, err)
		}
		payload, err = seal.OpenPayload(k, e.Payload, wire.SealAD(e))
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

// WithHops implements gossip.Codec.
func (c *envelopeCodec) WithHops(msg []byte, hopsLeft int) ([]byte, error) {
	e, err := wire.Unmarshal(msg, c.lim)
	if err != nil {
		return nil, mapWireErr(err)
	}
	if hopsLeft < 0 || hopsLeft > c.maxHops {
		return nil, fmt.Errorf("%w: %d hops left, max_hops %d", gossip.ErrHops, hopsLeft, c.maxHops)
	}
	e.Hops = uint8(c.maxHops - hopsLeft)
	return e.MarshalWithin(c.lim)
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
