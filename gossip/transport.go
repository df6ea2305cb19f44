package gossip

import (
	"context"
	"errors"
)

// PeerID identifies a node on the network. In the product it is the libp2p
// peer ID string (12D3Koo…); the in-memory network uses any unique string.
type PeerID string

// Stream protocols a node speaks. The version suffix changes when the
// payload format changes incompatibly, so old and new nodes refuse each
// other at protocol negotiation rather than at decode time. ProtoDelta is
// a two-step protocol (Transport.SendOffered); version 1 sent the whole
// envelope at once.
const (
	ProtoDelta = "/daf/delta/2"
	ProtoKeys  = "/daf/keys/1"
	ProtoPeers = "/daf/peers/1"
)

// ErrRefused marks an error that carries the receiving peer's refusal
// reason, as opposed to a network failure. Transports wrap it so callers
// can tell "the peer said no" (do not retry, the message is bad for it)
// from "the peer could not be reached" (retry or pick another peer).
var ErrRefused = errors.New("refused by peer")

// Transport moves opaque messages between peers. The gossip logic is written
// against this interface only: libp2p implements it in the daemon, package
// sim implements it in memory for tests and the simulator.
type Transport interface {
	Self() PeerID
	// Send delivers msg to peer `to` on protocol proto and waits for the peer's verdict:
	// nil if accepted, an error carrying the peer's refusal reason (ErrRefused wrapping) or a network error.
	Send(ctx context.Context, to PeerID, proto string, msg []byte) error
	// Handle registers the handler for a protocol; from is the peer on the connection (NOT the claimed source).
	// The returned error is sent back to the sender as the refusal reason.
	Handle(proto string, h func(from PeerID, msg []byte) error)
	// SendOffered delivers a message in two steps on proto: the offer,
	// then the body only if the peer's handler asks for it. The result is
	// Send's: nil if accepted, ErrRefused with the reason (at the offer, a
	// duplicate say, or after the body), or a network error.
	SendOffered(ctx context.Context, to PeerID, proto string, offer, body []byte) error
	// HandleOffered registers the handler of a two-step protocol.
	HandleOffered(proto string, h OfferHandler)
	Peers() []PeerID // currently connected
}

// OfferHandler serves one two-step message: it judges offer and, to go on,
// calls fetch with the body size the offer announced. fetch answers the
// sender "send it", reads a body of exactly that size (the transport's
// limits checked first) and returns it, or fails (the sender went away, a
// body of another size, over a limit). The handler's error, or nil, is
// the verdict the sender gets; returning without calling fetch refuses
// (or accepts) on the offer alone, and the body is never sent. fetch may
// be called at most once.
type OfferHandler func(from PeerID, offer []byte, fetch func(size int) ([]byte, error)) error
