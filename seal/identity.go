package seal

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"io"
)

// x25519Info is the HKDF info string that derives a node's X25519 key from
// its Ed25519 seed. Changing it changes every node's X25519 key.
const x25519Info = "daf/x25519/v1"

// Identity is a node's Ed25519 private key. Its public key is the node's
// libp2p peer identity; its X25519 key is derived from the same seed.
type Identity struct {
	priv ed25519.PrivateKey
	x    *ecdh.PrivateKey
}

// GenerateIdentity draws a new identity from rand (crypto/rand.Reader in
// production).
func GenerateIdentity(rand io.Reader) (*Identity, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(rand, seed); err != nil {
		return nil, fmt.Errorf("generate identity: %w", err)
	}
	return identityFromSeed(seed)
}

// IdentityFromPrivateKey wraps an existing Ed25519 private key (for example
// one held by a libp2p host).
func IdentityFromPrivateKey(priv ed25519.PrivateKey) (*Identity, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: private key is %d bytes, want %d", ErrKeyFileFormat, len(priv), ed25519.PrivateKeySize)
	}
	id, err := identityFromSeed(priv.Seed())
	if err != nil {
		return nil, err
	}
	if !id.priv.Public().(ed25519.PublicKey).Equal(priv.Public()) {
		return nil, fmt.Errorf("%w: public half does not match the seed", ErrKeyFileFormat)
	}
	return id, nil
}

func identityFromSeed(seed []byte) (*Identity, error) {
	priv := ed25519.NewKeyFromSeed(seed)
	xs, err := hkdf.Key(sha256.New, seed, nil, x25519Info, 32)
	if err != nil {
		return nil, fmt.Errorf("derive x25519 key: %w", err)
	}
	x, err := ecdh.X25519().NewPrivateKey(xs)
	if err != nil {
		return nil, fmt.Errorf("derive x25519 key: %w", err)
	}
	return &Identity{priv: priv, x: x}, nil
}

// Public returns the Ed25519 public key (the peer identity).
func (id *Identity) Public() ed25519.PublicKey {
	return id.priv.Public().(ed25519.PublicKey)
}

// Private returns the Ed25519 private key.
func (id *Identity) Private() ed25519.PrivateKey { return id.priv }

// X25519 returns the key-agreement key derived from the identity seed.
func (id *Identity) X25519() *ecdh.PrivateKey { return id.x }

// Sign signs msg with the identity key.
func (id *Identity) Sign(msg []byte) []byte { return ed25519.Sign(id.priv, msg) }
