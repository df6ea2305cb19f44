package sim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/dafnet/daf/gossip"
)

// ErrUnreachable is the network error of a send to a peer that is down,
// unknown, or on the other side of a partition.
var ErrUnreachable = errors.New("peer unreachable")

// Network is an in-memory network of gossip.Transport endpoints. A send
// runs the receiver's handler on the sender's goroutine and returns its
// verdict, as a libp2p stream with a reply would. Links can be cut by
// partitions and nodes taken down. It is safe for concurrent use.
type Network struct {
	mu        sync.RWMutex
	endpoints map[gossip.PeerID]*Endpoint
	down      map[gossip.PeerID]bool
	side      map[gossip.PeerID]int // partition side; 0 for everyone when healed
	sent      map[gossip.PeerID]uint64
	received  map[gossip.PeerID]uint64
}

// NewNetwork returns an empty network.
func NewNetwork() *Network {
	return &Network{
		endpoints: map[gossip.PeerID]*Endpoint{},
		down:      map[gossip.PeerID]bool{},
		side:      map[gossip.PeerID]int{},
		sent:      map[gossip.PeerID]uint64{},
		received:  map[gossip.PeerID]uint64{},
	}
}

// Endpoint is one node's Transport on a Network.
type Endpoint struct {
	net      *Network
	self     gossip.PeerID
	mu       sync.RWMutex
	handlers map[string]func(from gossip.PeerID, msg []byte) error
	offered  map[string]gossip.OfferHandler
}

var _ gossip.Transport = (*Endpoint)(nil)

// Join adds a node to the network and returns its transport.
func (n *Network) Join(id gossip.PeerID) *Endpoint {
	n.mu.Lock()
	defer n.mu.Unlock()
	ep := &Endpoint{net: n, self: id, handlers: map[string]func(gossip.PeerID, []byte) error{}, offered: map[string]gossip.OfferHandler{}}
	n.endpoints[id] = ep
	delete(n.down, id)
	return ep
}

// SetDown takes a node off the network (true) or brings it back (false).
func (n *Network) SetDown(id gossip.PeerID, down bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.down[id] = down
}

// Partition splits the network: nodes in different groups cannot reach
// each other; nodes in no group stay on side 0 with the first group.
func (n *Network) Partition(groups ...[]gossip.PeerID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.side = map[gossip.PeerID]int{}
	for i, g := range groups {
		for _, id := range g {
			n.side[id] = i
		}
	}
}

// Heal removes every partition.
func (n *Network) Heal() { n.Partition() }

// Reachable reports whether a message from a to b would be delivered.
func (n *Network) Reachable(a, b gossip.PeerID) bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.reachable(a, b)
}

func (n *Network) reachable(a, b gossip.PeerID) bool {
	_, okA := n.endpoints[a]
	_, okB := n.endpoints[b]
	return okA && okB && a != b && !n.down[a] && !n.down[b] && n.side[a] == n.side[b]
}

// BytesSent and BytesReceived are a node's delivered traffic totals.
func (n *Network) BytesSent(id gossip.PeerID) uint64 {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.sent[id]
}

// BytesReceived is the total a node received.
func (n *Network) BytesReceived(id gossip.PeerID) uint64 {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.received[id]
}

// Self implements gossip.Transport.
func (e *Endpoint) Self() gossip.PeerID { return e.self }

// Handle implements gossip.Transport.
func (e *Endpoint) Handle(proto string, h func(from gossip.PeerID, msg []byte) error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.handlers[proto] = h
}

// Peers implements gossip.Transport: every reachable node, sorted.
func (e *Endpoint) Peers() []gossip.PeerID {
	n := e.net
	n.mu.RLock()
	defer n.mu.RUnlock()
	var out []gossip.PeerID
	for id := range n.endpoints {
		if n.reachable(e.self, id) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// Send implements gossip.Transport. The receiver sees its own copy of msg.
func (e *Endpoint) Send(ctx context.Context, to gossip.PeerID, proto string, msg []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dst, err := e.deliver(to, proto, len(msg))
	if err != nil {
		return err
	}

	dst.mu.RLock()
	h := dst.handlers[proto]
	dst.mu.RUnlock()
	if h == nil {
		return fmt.Errorf("send to %s: %w: protocol %s not supported", to, gossip.ErrRefused, proto)
	}
	if err := h(e.self, slices.Clone(msg)); err != nil {
		return fmt.Errorf("send %s to %s: %w", proto, to, gossip.ParseRefusal(gossip.RefusalReason(err)))
	}
	return nil
}

// deliver finds the endpoint of a reachable peer and counts size bytes
// from e to it.
func (e *Endpoint) deliver(to gossip.PeerID, proto string, size int) (*Endpoint, error) {
	n := e.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.reachable(e.self, to) {
		return nil, fmt.Errorf("send %s to %s: %w", proto, to, ErrUnreachable)
	}
	n.sent[e.self] += uint64(size)
	n.received[to] += uint64(size)
	return n.endpoints[to], nil
}

// HandleOffered implements gossip.Transport.
func (e *Endpoint) HandleOffered(proto string, h gossip.OfferHandler) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.offered[proto] = h
}

// SendOffered implements gossip.Transport as the libp2p host does: the
// offer is delivered, and the body only if the receiver's handler fetches
// it with the announced size (a body of another size fails the fetch, as
// a frame of the wrong length does on a stream). Only what is delivered
// counts as sent.
func (e *Endpoint) SendOffered(ctx context.Context, to gossip.PeerID, proto string, offer, body []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dst, err := e.deliver(to, proto, len(offer))
	if err != nil {
		return err
	}
	dst.mu.RLock()
	h := dst.offered[proto]
	dst.mu.RUnlock()
	if h == nil {
		return fmt.Errorf("send to %s: %w: protocol %s not supported", to, gossip.ErrRefused, proto)
	}
	fetched := false
	var fetchErr error
	fetch := func(size int) ([]byte, error) {
		if fetched {
			return nil, fmt.Errorf("sim: body of %s fetched twice", proto)
		}
		fetched = true
		if size != len(body) {
			fetchErr = fmt.Errorf("sim: body of %d bytes, the receiver expects %d", len(body), size)
			return nil, fetchErr
		}
		if err := ctx.Err(); err != nil {
			fetchErr = err
			return nil, err
		}
		if _, err := e.deliver(to, proto, len(body)); err != nil {
			fetchErr = err
			return nil, err
		}
		return slices.Clone(body), nil
	}
	herr := h(e.self, slices.Clone(offer), fetch)
	if fetchErr != nil {
		return fmt.Errorf("send %s to %s: %w", proto, to, fetchErr)
	}
	if herr != nil {
		return fmt.Errorf("send %s to %s: %w", proto, to, gossip.ParseRefusal(gossip.RefusalReason(herr)))
	}
	return nil
}
