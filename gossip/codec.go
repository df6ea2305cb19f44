package gossip

import "github.com/dafnet/daf/adapter"

// Digest identifies one release: a hash over the signed part of an envelope
// (everything but the hop count), so every relayed copy has the same digest.
type Digest [32]byte

// Envelope is the verified header of a delta message plus its still-sealed
// payload (DESIGN §5: federation, source, round, tier, scope, hops, payload,
// signature).
type Envelope struct {
	Source   PeerID
	Round    uint64
	Scope    Membership
	HopsLeft int
	Digest   Digest
	Payload  []byte
	Size     int // bytes on the wire
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
type Codec interface {
	// Pack compresses, seals (Group and Tenant) and signs the node's own
	// update as an envelope with hopsLeft hops to go.
	Pack(round uint64, scope Membership, hopsLeft int, u *adapter.Update) ([]byte, error)
	// Unpack decodes an envelope and verifies the source's signature and the
	// size limits, without opening the payload. Errors wrap ErrMalformed,
	// ErrTooLarge or ErrSignature.
	Unpack(msg []byte) (Envelope, error)
	// Open unseals and decodes the payload. Errors wrap ErrSeal or
	// ErrMalformed.
	Open(env Envelope) (*adapter.Update, error)
	// WithHops returns msg re-encoded with a new hop count; the signature,
	// which does not cover the hop count, stays valid.
	WithHops(msg []byte, hopsLeft int) ([]byte, error)
}

// KeyReader is an optional Codec method: Key reads a message's ReleaseKey
// without verifying anything (errors wrap ErrMalformed or ErrTooLarge). A
// codec that has it lets the engine drop duplicate copies before checking
// their signatures, which is most of the receive cost of a large update.
type KeyReader interface {
	Key(msg []byte) (ReleaseKey, error)
}

// HolderHints is an optional Codec extension: an unsigned list of peers
// known to hold a release, carried beside the hop count and rewritten by
// every sender. A receiver does not relay to the peers listed, which cuts
// the duplicate copies that blind relaying sends. Like the hop count it is
// outside the signature: a Byzantine relay can list peers that do not hold
// the release and so stop the copies passing through it from spreading
// further, which it could do anyway by not relaying; the copies the source
// and honest relays send are unaffected.
type HolderHints interface {
	// Hints reads the list (nil when there is none); errors wrap ErrMalformed.
	Hints(msg []byte) ([]PeerID, error)
	// WithHints returns msg carrying holders instead of its list.
	WithHints(msg []byte, holders []PeerID) ([]byte, error)
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
