package p2p

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// ParseListen parses a listen multiaddr. The daemon checks its flags with
// it before anything is opened, so a typo is a usage error naming the
// flag rather than a failure halfway through start-up.
func ParseListen(s string) (ma.Multiaddr, error) {
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadAddr, err)
	}
	return a, nil
}

// ParseBootstrap parses a bootstrap multiaddr, which must end in
// /p2p/<peer id>: a peer is only trusted as the key it claims to be.
func ParseBootstrap(s string) (peer.AddrInfo, error) {
	ai, err := peer.AddrInfoFromString(s)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("%w: %v (want a multiaddr ending in /p2p/<peer id>)", ErrBadAddr, err)
	}
	return *ai, nil
}
