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
// other at protocol negotiation rather than at decode time.
const (
	ProtoDelta = "/daf/delta/1"
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
	Peers() []PeerID // currently connected
}
