package wire

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/dafnet/daf/privacy"
)

// Version is the envelope version this package writes and reads.
const Version = 1

// magic opens every envelope so that a stray stream is not parsed as one.
var magic = [4]byte{'D', 'A', 'F', 'E'}

const (
	// MaxFederationIDLen and MaxScopeLen bound the two names (one length byte).
	MaxFederationIDLen = 255
	MaxScopeLen        = 255
	// HopsOffset is the byte offset of the hop count, so a relay may bump it
	// in place in an encoded envelope.
	HopsOffset = 6
	// fixedHeader is every header byte that is not a name:
	// magic 4, version 1, tier 1, hops 1, fed len 1, source 32, round 8,
	// scope len 1, key epoch 4, payload len 4, signature 64.
	fixedHeader = 4 + 1 + 1 + 1 + 1 + ed25519.PublicKeySize + 8 + 1 + 4 + 4 + ed25519.SignatureSize
	// MaxHeader is the largest possible header (everything but the payload).
	MaxHeader = fixedHeader + MaxFederationIDLen + MaxScopeLen
)

// signingDomain separates envelope signatures from any other message the
// identity signs (key records, grants, libp2p's own records).
const signingDomain = "daf/envelope/v1\x00"

// Envelope carries one update from its source. Tier holds privacy.Tier's
// value (group 1, tenant 2, public 3; private never travels). Payload is the
// compressed update, sealed with the scope key for group and tenant, in clear
// for public. Hops is the only field outside the signature.
type Envelope struct {
	Version      uint8
	FederationID string
	Source       []byte // Ed25519 public key of the node that made the update
	Round        uint64
	Tier         uint8
	Scope        string
	KeyEpoch     uint32
	Hops         uint8
	Payload      []byte
	Signature    []byte
}

// validate checks the fields a decoder checks, so Marshal never produces an
// envelope that Unmarshal refuses.
func (e *Envelope) validate(lim Limits) error {
	if e.Version != Version {
		return fmt.Errorf("%w: envelope version %d, this node speaks %d", ErrUnknownVersion, e.Version, Version)
	}
	if err := checkTier(e.Tier, e.Scope, e.KeyEpoch); err != nil {
		return err
	}
	if len(e.FederationID) > MaxFederationIDLen {
		return fmt.Errorf("%w: federation id is %d bytes, at most %d", ErrTooLarge, len(e.FederationID), MaxFederationIDLen)
	}
	if len(e.Scope) > MaxScopeLen {
		return fmt.Errorf("%w: scope is %d bytes, at most %d", ErrTooLarge, len(e.Scope), MaxScopeLen)
	}
	if len(e.Source) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: source key is %d bytes, want %d", ErrMalformed, len(e.Source), ed25519.PublicKeySize)
	}
	if len(e.Signature) != ed25519.SignatureSize {
		return fmt.Errorf("%w: signature is %d bytes, want %d", ErrMalformed, len(e.Signature), ed25519.SignatureSize)
	}
	if size := e.Size(); size > lim.MaxEnvelope {
		return fmt.Errorf("%w: envelope is %d bytes, limit %d", ErrTooLarge, size, lim.MaxEnvelope)
	}
	return nil
}

// checkTier accepts the tiers that travel: group and tenant need a scope;
// public has no key epoch since its payload is not sealed.
func checkTier(tier uint8, scope string, epoch uint32) error {
	switch privacy.Tier(tier) {
	case privacy.Group, privacy.Tenant:
		if scope == "" {
			return fmt.Errorf("%w: %s envelope without a scope", ErrBadTier, privacy.Tier(tier))
		}
	case privacy.Public:
		if epoch != 0 {
			return fmt.Errorf("%w: public envelope with key epoch %d (public payloads are not sealed)", ErrBadTier, epoch)
		}
	case privacy.Private:
		return fmt.Errorf("%w: private updates never leave their node", ErrBadTier)
	default:
		return fmt.Errorf("%w: tier %d does not exist", ErrBadTier, tier)
	}
	return nil
}

// Size is the encoded length in bytes.
func (e *Envelope) Size() int {
	return fixedHeader + len(e.FederationID) + len(e.Scope) + len(e.Payload)
}

// Marshal encodes the envelope (layout in docs/PROTOCOL.md). It refuses an
// envelope that Unmarshal with DefaultLimits would refuse, unsigned ones
// included.
func (e *Envelope) Marshal() ([]byte, error) {
	return e.MarshalWithin(DefaultLimits())
}

// MarshalWithin is Marshal against explicit limits.
func (e *Envelope) MarshalWithin(lim Limits) ([]byte, error) {
	if err := e.validate(lim); err != nil {
		return nil, err
	}
	b := make([]byte, 0, e.Size())
	b = appendHeader(b, e, uint32(len(e.Payload)))
	return append(b, e.Payload...), nil
}

// appendHeader appends everything of e before the payload, with payloadLen
// as the payload length.
func appendHeader(b []byte, e *Envelope, payloadLen uint32) []byte {
	b = append(b, magic[:]...)
	b = append(b, e.Version, e.Tier, e.Hops, byte(len(e.FederationID)))
	b = append(b, e.FederationID...)
	b = append(b, e.Source...)
	b = binary.BigEndian.AppendUint64(b, e.Round)
	b = append(b, byte(len(e.Scope)))
	b = append(b, e.Scope...)
	b = binary.BigEndian.AppendUint32(b, e.KeyEpoch)
	b = binary.BigEndian.AppendUint32(b, payloadLen)
	return append(b, e.Signature...)
}

// Unmarshal decodes an envelope, checking every length against lim before
// use. The returned Payload aliases b (no copy of up to 64 MiB); callers that
// reuse b must copy it. Unmarshal does not verify the signature: call Verify.
func Unmarshal(b []byte, lim Limits) (*Envelope, error) {
	if len(b) > lim.MaxEnvelope {
		return nil, fmt.Errorf("%w: envelope is %d bytes, limit %d", ErrTooLarge, len(b), lim.MaxEnvelope)
	}
	if len(b) < 5 || [4]byte(b[:4]) != magic {
		return nil, fmt.Errorf("%w: not a DAF envelope (bad magic)", ErrMalformed)
	}
	if b[4] != Version {
		return nil, fmt.Errorf("%w: envelope version %d, this node speaks %d", ErrUnknownVersion, b[4], Version)
	}
	if len(b) < fixedHeader {
		return nil, fmt.Errorf("%w: %d bytes is shorter than the smallest header (%d)", ErrMalformed, len(b), fixedHeader)
	}
	e := &Envelope{}
	p, payloadLen, err := parseHeader(b, e)
	if err != nil {
		return nil, err
	}
	if rest := uint64(len(b) - p); payloadLen != rest {
		return nil, fmt.Errorf("%w: header says %d payload bytes, %d follow", ErrMalformed, payloadLen, rest)
	}
	e.Payload = b[p:len(b):len(b)]
	return e, nil
}

// parseHeader decodes the header that opens b (magic and version already
// checked, len(b) >= fixedHeader) into e, and returns where it ends and the
// payload length it announces. Source and Signature alias b.
func parseHeader(b []byte, e *Envelope) (int, uint64, error) {
	e.Version, e.Tier, e.Hops = b[4], b[5], b[6]
	p := 7
	fedLen := int(b[p])
	p++
	// Both names are at most 255 bytes, so one check covers the fixed part
	// that follows the federation id up to the scope length byte.
	if len(b) < p+fedLen+ed25519.PublicKeySize+8+1 {
		return 0, 0, fmt.Errorf("%w: truncated in federation id or source", ErrMalformed)
	}
	e.FederationID = string(b[p : p+fedLen])
	p += fedLen
	e.Source = b[p : p+ed25519.PublicKeySize : p+ed25519.PublicKeySize]
	p += ed25519.PublicKeySize
	e.Round = binary.BigEndian.Uint64(b[p:])
	p += 8
	scopeLen := int(b[p])
	p++
	if len(b) < p+scopeLen+4+4+ed25519.SignatureSize {
		return 0, 0, fmt.Errorf("%w: truncated in scope, key epoch or signature", ErrMalformed)
	}
	e.Scope = string(b[p : p+scopeLen])
	p += scopeLen
	e.KeyEpoch = binary.BigEndian.Uint32(b[p:])
	p += 4
	payloadLen := uint64(binary.BigEndian.Uint32(b[p:]))
	p += 4
	e.Signature = b[p : p+ed25519.SignatureSize : p+ed25519.SignatureSize]
	p += ed25519.SignatureSize
	if err := checkTier(e.Tier, e.Scope, e.KeyEpoch); err != nil {
		return 0, 0, err
	}
	return p, payloadLen, nil
}

// PayloadHash is SHA-256 of the payload: what the signature covers in place
// of the payload, and the replay guard's identity of an update.
func (e *Envelope) PayloadHash() [32]byte { return sha256.Sum256(e.Payload) }

// SigningBytes is what the source signs: a domain prefix, then every field
// except Hops and Signature in wire order, with the payload represented by
// its length and SHA-256. Hashing the payload lets a reader verify while
// streaming it and keeps the signed message small.
func (e *Envelope) SigningBytes() []byte {
	return signingBytes(e, uint32(len(e.Payload)), e.PayloadHash())
}

func signingBytes(e *Envelope, payloadLen uint32, payloadHash [32]byte) []byte {
	b := make([]byte, 0, len(signingDomain)+MaxHeader+32)
	b = append(b, signingDomain...)
	b = append(b, e.Version, e.Tier, byte(len(e.FederationID)))
	b = append(b, e.FederationID...)
	b = append(b, e.Source...)
	b = binary.BigEndian.AppendUint64(b, e.Round)
	b = append(b, byte(len(e.Scope)))
	b = append(b, e.Scope...)
	b = binary.BigEndian.AppendUint32(b, e.KeyEpoch)
	b = binary.BigEndian.AppendUint32(b, payloadLen)
	return append(b, payloadHash[:]...)
}

// TierName is the envelope's tier as spelled in federation.toml.
func (e *Envelope) TierName() string { return privacy.Tier(e.Tier).String() }
