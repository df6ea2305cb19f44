package gossip

import "github.com/dafnet/daf/adapter"

// Digest identifies one release: a hash over the signed part of an envelope
// (everything but the hop count), so every relayed copy has the same digest.
type Digest [32]byte

// Envelope is the verified header of a delta (DESIGN §5: federation,
// source, round, tier, scope, hops, signature) and its two frames on the
// wire: the Offer, which a receiver checks before it asks for the Body,
// and the Body (the still-sealed payload), nil until it arrived.
type Envelope struct {
	Source   PeerID
	Round    uint64
	Scope    Membership
	HopsLeft int
	Digest   Digest
	// Offer is the first frame, as received (its hop count is HopsLeft's).
	Offer []byte
	// Body is the second frame; BodySize is its length as the offer
	// announced it, known before the body is asked for.
	Body     []byte
	BodySize int
	Size     int // bytes of the whole release on the wire
}

// ReleaseKey names a release from an envelope's header and signature bytes
// alone, before any verification. Every relayed copy of a release carries
// the same signature, so a copy whose key matches a release already verified
// is a duplicate and is dropped without hashing its payload. A forger who
// glues a genuine signature onto other bytes gains nothing: the genuine
// release is already held.
type ReleaseKey struct {
	Source    PeerID
	Round     uint64
	Scope     Membership
	Signature string
}

// Codec turns updates into signed envelope messages and back. The product's
// implementation is packages wire (envelope, size limits, Ed25519),
// seal (scope keys) and compress (update encoding); package sim has a small
// in-memory one. Implementations must be safe for concurrent use, so that a
// daemon can unpack and open deltas on several cores before handing them
// to the round machine.
//
// A delta travels in two frames (ProtoDelta): an offer, small, carrying
// everything the source signed (the payload by its length and hash), and
// the body, the payload itself, sent only when the receiver asks for it
// after checking the offer. A relay thus never sends a body the receiver
// already holds.
type Codec interface {
	// Pack compresses, seals (Group and Tenant) and signs the node's own
	// update as a whole message with hopsLeft hops to go.
	Pack(round uint64, scope Membership, hopsLeft int, u *adapter.Update) ([]byte, error)
	// Unpack decodes a whole message and verifies the source's signature
	// and the size limits, without opening the payload; the Envelope has
	// its Offer and Body. Errors wrap ErrMalformed, ErrTooLarge or
	// ErrSignature.
	Unpack(msg []byte) (Envelope, error)
	// UnpackOffer decodes an offer and verifies the source's signature and
	// the size limits (the announced size included); the Envelope has no
	// Body yet. Errors as Unpack's.
	UnpackOffer(offer []byte) (Envelope, error)
	// WithBody checks body against an envelope from UnpackOffer (length
	// and hash, which the signature covers) and returns the envelope with
	// its Body. An error (wrapping ErrMalformed) means the body is not the
	// one the source signed: the sender changed it.
	WithBody(env Envelope, body []byte) (Envelope, error)
	// Open unseals and decodes the Body. Errors wrap ErrSeal,
	// ErrMalformed or ErrTooLarge.
	Open(env Envelope) (*adapter.Update, error)
	// OfferWithHops returns offer with a new hop count; the signature,
	// which does not cover the hop count, stays valid.
	OfferWithHops(offer []byte, hopsLeft int) ([]byte, error)
}

// KeyReader is an optional Codec method: Key reads the ReleaseKey of an
// offer (or of a whole message) without verifying anything (errors wrap
// ErrMalformed or ErrTooLarge). A codec that has it lets the engine
// answer a duplicate offer before checking its signature.
type KeyReader interface {
	Key(offer []byte) (ReleaseKey, error)
}

// HolderHints is an optional Codec extension: an unsigned list of peers
// known to hold a release, carried in the offer beside the hop count and
// rewritten by every sender. A receiver does not relay to the peers
// listed, which cuts the offers that blind relaying sends. Like the hop
// count it is outside the signature: a Byzantine relay can list peers that
// do not hold the release and so stop the copies passing through it from
// spreading further, which it could do anyway by not relaying; the copies
// the source and honest relays send are unaffected.
type HolderHints interface {
	// Hints reads an offer's list (nil when there is none); errors wrap
	// ErrMalformed.
	Hints(offer []byte) ([]PeerID, error)
	// WithHints returns offer carrying holders instead of its list.
	WithHints(offer []byte, holders []PeerID) ([]byte, error)
}

// MaxHints bounds the holder list a sender writes, so the list stays small
// next to the payload; the peers being sent to are listed first.
const MaxHints = 32

// Filter is the Byzantine check a received update passes before it is
// stored (defense.Detector in the product). It returns an error wrapping
// ErrByzantine for an update it refuses; it may learn from every update it
// accepts, so it is called once per distinct release.
type Filter interface {
	Check(source PeerID, round uint64, scope Membership, u *adapter.Update) error
}
