package p2p

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dafnet/daf/gossip"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
)

// protoAddrs is the peer-exchange protocol: on every new connection each
// side pushes the addresses of the peers it is connected to, so a node that
// knows one bootstrap peer soon knows the federation.
const protoAddrs = gossip.ProtoPeers

const (
	// maxExchangePeers and maxExchangeBytes bound one peer-exchange message.
	maxExchangePeers = 64
	maxExchangeAddrs = 8
	maxExchangeBytes = 64 << 10
)

var (
	permanentTTL time.Duration = peerstore.PermanentAddrTTL
	learnedTTL                 = peerstore.AddressTTL
)

// addrList is the peer-exchange message.
type addrList struct {
	Peers []addrEntry `json:"peers"`
}

type addrEntry struct {
	ID    string   `json:"id"`
	Addrs []string `json:"addrs"`
}

// encodeAddrs lists up to maxExchangePeers connected peers other than `to`.
func (x *Host) encodeAddrs(to peer.ID) ([]byte, error) {
	var list addrList
	for _, p := range x.h.Network().Peers() {
		if p == to || p == x.h.ID() {
			continue
		}
		addrs := x.h.Peerstore().Addrs(p)
		if len(addrs) == 0 {
			continue
		}
		e := addrEntry{ID: p.String()}
		for i, a := range addrs {
			if i == maxExchangeAddrs {
				break
			}
			e.Addrs = append(e.Addrs, a.String())
		}
		list.Peers = append(list.Peers, e)
		if len(list.Peers) == maxExchangePeers {
			break
		}
	}
	return json.Marshal(list)
}

// decodeAddrs parses a peer-exchange message, refusing anything over the
// limits instead of truncating it.
func decodeAddrs(msg []byte) ([]peer.AddrInfo, error) {
	if len(msg) > maxExchangeBytes {
		return nil, fmt.Errorf("peer exchange: %d bytes, limit %d", len(msg), maxExchangeBytes)
	}
	var list addrList
	if err := json.Unmarshal(msg, &list); err != nil {
		return nil, fmt.Errorf("peer exchange: %w", err)
	}
	if len(list.Peers) > maxExchangePeers {
		return nil, fmt.Errorf("peer exchange: %d peers, limit %d", len(list.Peers), maxExchangePeers)
	}
	out := make([]peer.AddrInfo, 0, len(list.Peers))
	for _, e := range list.Peers {
		id, err := peer.Decode(e.ID)
		if err != nil {
			return nil, fmt.Errorf("peer exchange: peer %q: %w", e.ID, err)
		}
		if len(e.Addrs) > maxExchangeAddrs {
			return nil, fmt.Errorf("peer exchange: peer %s lists %d addresses, limit %d", id, len(e.Addrs), maxExchangeAddrs)
		}
		ai := peer.AddrInfo{ID: id}
		for _, s := range e.Addrs {
			a, err := ma.NewMultiaddr(s)
			if err != nil {
				return nil, fmt.Errorf("peer exchange: peer %s: %w: %q", id, ErrBadAddr, s)
			}
			ai.Addrs = append(ai.Addrs, a)
		}
		out = append(out, ai)
	}
	return out, nil
}

// pushAddrs sends our peer list to p; failures only cost discovery speed.
func (x *Host) pushAddrs(p peer.ID) {
	msg, err := x.encodeAddrs(p)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(x.ctx, 10*time.Second)
	defer cancel()
	if err := x.Send(ctx, gossip.PeerID(p.String()), protoAddrs, msg); err != nil {
		x.log.Debug("peer exchange failed", "peer", p, "err", err)
	}
}

// serveAddrs learns the peers another node pushed to us; the redial loop
// then connects to them.
func (x *Host) serveAddrs(s network.Stream) {
	x.serveWith(s, protoAddrs, maxExchangeBytes, func(from gossip.PeerID, msg []byte) error {
		infos, err := decodeAddrs(msg)
		if err != nil {
			return err
		}
		x.learn(infos)
		return nil
	})
}

// learn records peers heard of through exchange, up to MaxKnownPeers.
func (x *Host) learn(infos []peer.AddrInfo) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, ai := range infos {
		if ai.ID == x.h.ID() {
			continue
		}
		x.h.Peerstore().AddAddrs(ai.ID, ai.Addrs, learnedTTL)
		if _, ok := x.known[ai.ID]; !ok && len(x.known) < x.cfg.MaxKnownPeers {
			x.known[ai.ID] = &knownPeer{}
		}
	}
}
