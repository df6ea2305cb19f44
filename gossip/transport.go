package gossip

import (
	"context"
	"errors"
)

// PeerID identifies a node on the network (the libp2p peer ID string).
type PeerID string

// Stream protocols DAF speaks.
const (
	ProtoDelta = "/daf/delta/1"
	ProtoKeys  = "/daf/keys/1"
	ProtoPeers = "/daf/peers/1"
)

// ErrRefused is returned by Send when the receiving peer refused the message;
// the wrapped text carries the peer's reason.
var ErrRefused = errors.New("refused by peer")

// Transport moves opaque messages between peers.
type Transport interface {
	Self() PeerID
	Send(ctx context.Context, to PeerID, proto string, msg []byte) error
	Handle(proto string, h func(from PeerID, msg []byte) error)
	Peers() []PeerID
}
