package wire

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
)

// MaxOffer is the largest offer: the largest header and a SHA-256.
const MaxOffer = MaxHeader + sha256.Size

// Offer is the first frame of a /daf/delta/2 stream (docs/PROTOCOL.md
// §6.1): an envelope's header, byte for byte as in the envelope (payload
// length included), followed by the payload's SHA-256 in place of the
// payload. It holds everything the signature covers, so a receiver checks
// the signature and decides whether it wants the release, typically that
// it already holds it, before one byte of the payload is sent; the payload
// that follows must then hash to PayloadHash.
type Offer struct {
	// Envelope carries the header fields; its Payload is nil.
	Envelope
	PayloadLen  uint32
	PayloadHash [sha256.Size]byte
}

// NewOffer is the offer of an envelope (one pass of SHA-256 over its
// payload). The offer does not keep the payload.
func NewOffer(e *Envelope) *Offer {
	o := &Offer{Envelope: *e, PayloadLen: uint32(len(e.Payload)), PayloadHash: e.PayloadHash()}
	o.Payload = nil
	return o
}

// EnvelopeSize is the size of the whole envelope the offer announces.
func (o *Offer) EnvelopeSize() int {
	return fixedHeader + len(o.FederationID) + len(o.Scope) + int(o.PayloadLen)
}

// Marshal encodes the offer. It refuses what UnmarshalOffer would refuse
// under lim.
func (o *Offer) Marshal(lim Limits) ([]byte, error) {
	head := o.Envelope
	head.Payload = nil
	if err := head.validate(lim); err != nil {
		return nil, err
	}
	if size := o.EnvelopeSize(); size > lim.MaxEnvelope {
		return nil, fmt.Errorf("%w: offer announces an envelope of %d bytes, limit %d", ErrTooLarge, size, lim.MaxEnvelope)
	}
	b := make([]byte, 0, fixedHeader+len(o.FederationID)+len(o.Scope)+sha256.Size)
	b = appendHeader(b, &o.Envelope, o.PayloadLen)
	return append(b, o.PayloadHash[:]...), nil
}

// UnmarshalOffer decodes an offer, checking every length against lim (the
// announced envelope against MaxEnvelope) before use. It does not verify
// the signature: call VerifyOffer.
func UnmarshalOffer(b []byte, lim Limits) (*Offer, error) {
	if len(b) > MaxOffer {
		return nil, fmt.Errorf("%w: offer is %d bytes, at most %d", ErrTooLarge, len(b), MaxOffer)
	}
	if len(b) < sha256.Size {
		return nil, fmt.Errorf("%w: offer of %d bytes", ErrMalformed, len(b))
	}
	head, hash := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if len(head) < 5 || [4]byte(head[:4]) != magic {
		return nil, fmt.Errorf("%w: not a DAF offer (bad magic)", ErrMalformed)
	}
	if head[4] != Version {
		return nil, fmt.Errorf("%w: envelope version %d, this node speaks %d", ErrUnknownVersion, head[4], Version)
	}
	if len(head) < fixedHeader {
		return nil, fmt.Errorf("%w: offer header of %d bytes is shorter than the smallest (%d)", ErrMalformed, len(head), fixedHeader)
	}
	// The header's own payload length says how much follows it in an
	// envelope; here the header must end exactly where the hash begins.
	o := &Offer{}
	p, plen, err := parseHeader(head, &o.Envelope)
	if err != nil {
		return nil, err
	}
	if p != len(head) {
		return nil, fmt.Errorf("%w: %d bytes between the offer's header and its hash", ErrMalformed, len(head)-p)
	}
	o.PayloadLen = uint32(plen)
	copy(o.PayloadHash[:], hash)
	if size := o.EnvelopeSize(); size > lim.MaxEnvelope {
		return nil, fmt.Errorf("%w: offer announces an envelope of %d bytes, limit %d", ErrTooLarge, size, lim.MaxEnvelope)
	}
	return o, nil
}

// SigningBytes are the envelope's signed bytes (Envelope.SigningBytes),
// made from the announced length and hash.
func (o *Offer) SigningBytes() []byte {
	return signingBytes(&o.Envelope, o.PayloadLen, o.PayloadHash)
}

// VerifyOffer checks the source's signature over the offer's signed bytes:
// the envelope's signature, checked before its payload is sent.
func VerifyOffer(o *Offer) error {
	if len(o.Source) != ed25519.PublicKeySize || len(o.Signature) != ed25519.SignatureSize {
		return fmt.Errorf("%w: source key %d bytes, signature %d bytes", ErrBadSignature, len(o.Source), len(o.Signature))
	}
	if !ed25519.Verify(ed25519.PublicKey(o.Source), o.SigningBytes(), o.Signature) {
		return fmt.Errorf("%w: source %x round %d", ErrBadSignature, o.Source, o.Round)
	}
	return nil
}

// Matches checks that payload is the one the offer announced: its length,
// then its SHA-256. A payload that does not match was changed on the way
// (the offer's signature covers the hash), so it is the sender's doing.
func (o *Offer) Matches(payload []byte) error {
	if uint64(len(payload)) != uint64(o.PayloadLen) {
		return fmt.Errorf("%w: payload of %d bytes, the offer announced %d", ErrMalformed, len(payload), o.PayloadLen)
	}
	if h := sha256.Sum256(payload); !bytes.Equal(h[:], o.PayloadHash[:]) {
		return fmt.Errorf("%w: payload does not hash to the offer's SHA-256", ErrMalformed)
	}
	return nil
}
