package seal

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"io"
)

const (
	grantVersion = 1
	grantDomain  = "daf/scope-key-grant/v1\x00"
	// MaxGrantLen bounds a marshalled grant.
	MaxGrantLen = 1 + 2*ed25519.PublicKeySize + 1 + 6 + 1 + MaxScopeLen + 4 + 2 + MaxWrappedLen + ed25519.SignatureSize
)

// ScopeKeyGrant hands a scope key to one member: the key wrapped to the
// member's X25519 key, signed by the issuer (a scope administrator). The
// outer tier, scope and epoch let a receiver decide whether it trusts the
// issuer for that scope before unwrapping; Open checks they match the inside.
type ScopeKeyGrant struct {
	Issuer    ed25519.PublicKey
	Recipient ed25519.PublicKey
	Tier      string
	Scope     string
	Epoch     uint32
	Wrapped   []byte
	Signature []byte
}

// NewScopeKeyGrant wraps k to the recipient named by its key record (which
// must verify) and signs the grant as issuer.
func NewScopeKeyGrant(rand io.Reader, issuer *Identity, k *ScopeKey, recipient *KeyRecord) (*ScopeKeyGrant, error) {
	if err := recipient.Verify(); err != nil {
		return nil, fmt.Errorf("grant %s: recipient: %w", k, err)
	}
	pub, err := recipient.PublicX25519()
	if err != nil {
		return nil, fmt.Errorf("grant %s: %w", k, err)
	}
	wrapped, err := WrapScopeKey(rand, k, pub)
	if err != nil {
		return nil, err
	}
	g := &ScopeKeyGrant{
		Issuer:    issuer.Public(),
		Recipient: bytes.Clone(recipient.Identity),
		Tier:      k.Tier,
		Scope:     k.Scope,
		Epoch:     k.Epoch,
		Wrapped:   wrapped,
	}
	g.Signature = issuer.Sign(g.signingBytes())
	return g, nil
}

func (g *ScopeKeyGrant) body() []byte {
	b := make([]byte, 0, MaxGrantLen)
	b = append(b, g.Issuer...)
	b = append(b, g.Recipient...)
	b = append(b, byte(len(g.Tier)))
	b = append(b, g.Tier...)
	b = append(b, byte(len(g.Scope)))
	b = append(b, g.Scope...)
	b = binary.BigEndian.AppendUint32(b, g.Epoch)
	b = binary.BigEndian.AppendUint16(b, uint16(len(g.Wrapped)))
	return append(b, g.Wrapped...)
}

func (g *ScopeKeyGrant) signingBytes() []byte {
	return append([]byte(grantDomain), g.body()...)
}

// Verify checks the grant's shape and the issuer's signature. Whether the
// issuer may grant keys for this scope is the caller's policy.
func (g *ScopeKeyGrant) Verify() error {
	if len(g.Issuer) != ed25519.PublicKeySize || len(g.Recipient) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: issuer or recipient key has the wrong length", ErrBadGrant)
	}
	if err := checkScope(g.Tier, g.Scope); err != nil {
		return fmt.Errorf("%w: %v", ErrBadGrant, err)
	}
	if len(g.Wrapped) > MaxWrappedLen {
		return fmt.Errorf("%w: wrapped key is %d bytes, at most %d", ErrBadGrant, len(g.Wrapped), MaxWrappedLen)
	}
	if len(g.Signature) != ed25519.SignatureSize || !ed25519.Verify(g.Issuer, g.signingBytes(), g.Signature) {
		return fmt.Errorf("%w: signature of issuer %x does not verify", ErrBadGrant, []byte(g.Issuer))
	}
	return nil
}

// Open verifies the grant, checks it is addressed to id, unwraps the key and
// checks that the inner tier, scope and epoch are the signed outer ones.
func (g *ScopeKeyGrant) Open(id *Identity) (*ScopeKey, error) {
	if err := g.Verify(); err != nil {
		return nil, err
	}
	if !id.Public().Equal(g.Recipient) {
		return nil, fmt.Errorf("%w: addressed to %x, not to this node", ErrBadGrant, []byte(g.Recipient))
	}
	k, err := UnwrapScopeKey(g.Wrapped, id.X25519())
	if err != nil {
		return nil, fmt.Errorf("grant %s/%s epoch %d: %w", g.Tier, g.Scope, g.Epoch, err)
	}
	if k.Tier != g.Tier || k.Scope != g.Scope || k.Epoch != g.Epoch {
		return nil, fmt.Errorf("%w: wrapped key is %s but grant says %s/%s epoch %d", ErrBadGrant, k, g.Tier, g.Scope, g.Epoch)
	}
	return k, nil
}

// Marshal encodes the grant: version, the signed body, the signature.
func (g *ScopeKeyGrant) Marshal() ([]byte, error) {
	if err := g.Verify(); err != nil {
		return nil, err
	}
	b := append([]byte{grantVersion}, g.body()...)
	return append(b, g.Signature...), nil
}

// UnmarshalScopeKeyGrant decodes and verifies a grant.
func UnmarshalScopeKeyGrant(b []byte) (*ScopeKeyGrant, error) {
	if len(b) > MaxGrantLen {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrBadGrant, len(b), MaxGrantLen)
	}
	if len(b) < 1 || b[0] != grantVersion {
		return nil, fmt.Errorf("%w: missing or unknown version", ErrBadGrant)
	}
	r := b[1:]
	take := func(n int) ([]byte, bool) {
		if len(r) < n {
			return nil, false
		}
		f := r[:n]
		r = r[n:]
		return f, true
	}
	g := &ScopeKeyGrant{}
	issuer, ok1 := take(ed25519.PublicKeySize)
	recipient, ok2 := take(ed25519.PublicKeySize)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("%w: truncated keys", ErrBadGrant)
	}
	g.Issuer, g.Recipient = bytes.Clone(issuer), bytes.Clone(recipient)
	tier, rest, ok := cutPrefixed(r)
	if !ok {
		return nil, fmt.Errorf("%w: truncated tier", ErrBadGrant)
	}
	scope, rest, ok := cutPrefixed(rest)
	if !ok {
		return nil, fmt.Errorf("%w: truncated scope", ErrBadGrant)
	}
	g.Tier, g.Scope, r = string(tier), string(scope), rest
	fixed, ok := take(6)
	if !ok {
		return nil, fmt.Errorf("%w: truncated epoch", ErrBadGrant)
	}
	g.Epoch = binary.BigEndian.Uint32(fixed)
	wrapped, ok := take(int(binary.BigEndian.Uint16(fixed[4:])))
	if !ok {
		return nil, fmt.Errorf("%w: truncated wrapped key", ErrBadGrant)
	}
	g.Wrapped = bytes.Clone(wrapped)
	if len(r) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: signature is %d bytes, want %d", ErrBadGrant, len(r), ed25519.SignatureSize)
	}
	g.Signature = bytes.Clone(r)
	if err := g.Verify(); err != nil {
		return nil, err
	}
	return g, nil
}
