package p2p

import (
	"crypto/ed25519"
	"fmt"

	"github.com/dafnet/daf/gossip"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// libp2pKey converts a stdlib Ed25519 private key into libp2p's form, so the
// node identity and the peer ID are the same key.
func libp2pKey(priv ed25519.PrivateKey) (crypto.PrivKey, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("identity: Ed25519 private key has %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	return crypto.UnmarshalEd25519PrivateKey(priv)
}

// PeerIDFromPublicKey is the libp2p peer ID (12D3Koo… form) of an Ed25519
// public key.
func PeerIDFromPublicKey(pub ed25519.PublicKey) (gossip.PeerID, error) {
	pk, err := crypto.UnmarshalEd25519PublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("identity: %w", err)
	}
	id, err := peer.IDFromPublicKey(pk)
	if err != nil {
		return "", fmt.Errorf("identity: %w", err)
	}
	return gossip.PeerID(id.String()), nil
}

// PublicKeyOf extracts the Ed25519 public key embedded in a peer ID, so a
// receiver can check a signature by the peer it is talking to without any
// other lookup.
func PublicKeyOf(id gossip.PeerID) (ed25519.PublicKey, error) {
	pid, err := peer.Decode(string(id))
	if err != nil {
		return nil, fmt.Errorf("peer %q: %w", id, err)
	}
	pk, err := pid.ExtractPublicKey()
	if err != nil {
		return nil, fmt.Errorf("peer %q: %w", id, err)
	}
	raw, err := pk.Raw()
	if err != nil {
		return nil, fmt.Errorf("peer %q: %w", id, err)
	}
	if pk.Type() != crypto.Ed25519 || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("peer %q: not an Ed25519 identity", id)
	}
	return ed25519.PublicKey(raw), nil
}
