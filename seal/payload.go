package seal

import (
	"encoding/binary"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
)

// payloadDomain separates payload associated data from any other use of a
// scope key.
const payloadDomain = "daf/payload/v1\x00"

// SealOverhead is what SealPayload adds to the plaintext: nonce and tag.
const SealOverhead = chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead

// SealPayload encrypts plaintext under the scope key with XChaCha20-Poly1305
// and a random 24-byte nonce (random nonces of this size never collide in
// practice, so no counter state has to survive restarts). The output is
// nonce ‖ ciphertext ‖ tag. The key's tier, scope and epoch are bound into the
// associated data in addition to associatedData, so the payload opens only
// under the same (tier, scope, epoch) and the same associatedData.
func SealPayload(k *ScopeKey, plaintext, associatedData []byte, rand io.Reader) ([]byte, error) {
	if err := checkScope(k.Tier, k.Scope); err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.NewX(k.Key[:])
	if err != nil {
		return nil, err
	}
	out := make([]byte, chacha20poly1305.NonceSizeX, chacha20poly1305.NonceSizeX+len(plaintext)+chacha20poly1305.Overhead)
	if _, err := io.ReadFull(rand, out); err != nil {
		return nil, fmt.Errorf("seal %s: nonce: %w", k, err)
	}
	return aead.Seal(out, out[:chacha20poly1305.NonceSizeX], plaintext, payloadAD(k, associatedData)), nil
}

// OpenPayload authenticates and decrypts a payload made by SealPayload.
func OpenPayload(k *ScopeKey, sealed, associatedData []byte) ([]byte, error) {
	if err := checkScope(k.Tier, k.Scope); err != nil {
		return nil, err
	}
	if len(sealed) < SealOverhead {
		return nil, fmt.Errorf("%w: %s: %d bytes is shorter than nonce and tag", ErrOpen, k, len(sealed))
	}
	aead, err := chacha20poly1305.NewX(k.Key[:])
	if err != nil {
		return nil, err
	}
	nonce := sealed[:chacha20poly1305.NonceSizeX]
	plain, err := aead.Open(nil, nonce, sealed[chacha20poly1305.NonceSizeX:], payloadAD(k, associatedData))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: authentication failed", ErrOpen, k)
	}
	return plain, nil
}

func payloadAD(k *ScopeKey, associatedData []byte) []byte {
	ad := make([]byte, 0, len(payloadDomain)+2+len(k.Tier)+len(k.Scope)+4+len(associatedData))
	ad = append(ad, payloadDomain...)
	ad = append(ad, byte(len(k.Tier)))
	ad = append(ad, k.Tier...)
	ad = append(ad, byte(len(k.Scope)))
	ad = append(ad, k.Scope...)
	ad = binary.BigEndian.AppendUint32(ad, k.Epoch)
	return append(ad, associatedData...)
}
