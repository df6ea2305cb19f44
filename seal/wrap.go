package seal

import (
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
)

const (
	wrapVersion = 1
	wrapInfo    = "daf/scope-key-wrap/v1"
	// wrapHeader is version(1) + ephemeral public key(32).
	wrapHeader = 1 + 32
	// MaxWrappedLen bounds a wrapped scope key: header, epoch, key, two
	// length-prefixed names and the AEAD tag.
	MaxWrappedLen = wrapHeader + 4 + 32 + 1 + 6 + 1 + MaxScopeLen + chacha20poly1305.Overhead
)

// WrapScopeKey encrypts k to recipient's X25519 key: a fresh ephemeral key
// pair, ECDH, HKDF-SHA256 (salt = ephemeral ‖ recipient public keys) and
// ChaCha20-Poly1305. Each wrap derives its own key, so the all-zero nonce is
// never reused. The result does not say who made it; ScopeKeyGrant adds that.
func WrapScopeKey(rand io.Reader, k *ScopeKey, recipient *ecdh.PublicKey) ([]byte, error) {
	if err := checkScope(k.Tier, k.Scope); err != nil {
		return nil, err
	}
	eph, err := ecdh.X25519().GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("wrap %s: ephemeral key: %w", k, err)
	}
	shared, err := eph.ECDH(recipient)
	if err != nil {
		return nil, fmt.Errorf("wrap %s: ecdh: %w", k, err)
	}
	aead, err := wrapCipher(shared, eph.PublicKey().Bytes(), recipient.Bytes())
	if err != nil {
		return nil, fmt.Errorf("wrap %s: %w", k, err)
	}
	header := make([]byte, 0, MaxWrappedLen)
	header = append(header, wrapVersion)
	header = append(header, eph.PublicKey().Bytes()...)
	body := make([]byte, 0, 4+32+2+len(k.Tier)+len(k.Scope))
	body = binary.BigEndian.AppendUint32(body, k.Epoch)
	body = append(body, k.Key[:]...)
	body = append(body, byte(len(k.Tier)))
	body = append(body, k.Tier...)
	body = append(body, byte(len(k.Scope)))
	body = append(body, k.Scope...)
	nonce := make([]byte, chacha20poly1305.NonceSize)
	return aead.Seal(header, nonce, body, header), nil
}

// wrapCipher derives the one-time wrapping cipher from an ECDH shared
// secret. Both public keys are in the salt, which binds the wrap to this
// recipient and this ephemeral key.
func wrapCipher(shared, ephPub, recipientPub []byte) (cipher.AEAD, error) {
	salt := append(append([]byte{}, ephPub...), recipientPub...)
	key, err := hkdf.Key(sha256.New, shared, salt, wrapInfo, chacha20poly1305.KeySize)
	if err != nil {
		return nil, err
	}
	return chacha20poly1305.New(key)
}

// UnwrapScopeKey opens a wrapped scope key with the recipient's X25519 key.
func UnwrapScopeKey(wrapped []byte, recipient *ecdh.PrivateKey) (*ScopeKey, error) {
	if len(wrapped) < wrapHeader+chacha20poly1305.Overhead || len(wrapped) > MaxWrappedLen {
		return nil, fmt.Errorf("%w: %d bytes", ErrUnwrap, len(wrapped))
	}
	if wrapped[0] != wrapVersion {
		return nil, fmt.Errorf("%w: version %d, this node reads %d", ErrUnwrap, wrapped[0], wrapVersion)
	}
	ephPub, err := ecdh.X25519().NewPublicKey(wrapped[1:wrapHeader])
	if err != nil {
		return nil, fmt.Errorf("%w: ephemeral key: %v", ErrUnwrap, err)
	}
	shared, err := recipient.ECDH(ephPub)
	if err != nil {
		return nil, fmt.Errorf("%w: ecdh: %v", ErrUnwrap, err)
	}
	aead, err := wrapCipher(shared, ephPub.Bytes(), recipient.PublicKey().Bytes())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnwrap, err)
	}
	nonce := make([]byte, chacha20poly1305.NonceSize)
	body, err := aead.Open(nil, nonce, wrapped[wrapHeader:], wrapped[:wrapHeader])
	if err != nil {
		return nil, fmt.Errorf("%w: authentication failed (not wrapped to this key, or tampered)", ErrUnwrap)
	}
	return parseWrappedBody(body)
}

func parseWrappedBody(body []byte) (*ScopeKey, error) {
	if len(body) < 4+32+1 {
		return nil, fmt.Errorf("%w: body is %d bytes", ErrUnwrap, len(body))
	}
	k := &ScopeKey{Epoch: binary.BigEndian.Uint32(body)}
	copy(k.Key[:], body[4:36])
	rest := body[36:]
	tier, rest, ok := cutPrefixed(rest)
	if !ok {
		return nil, fmt.Errorf("%w: truncated tier", ErrUnwrap)
	}
	scope, rest, ok := cutPrefixed(rest)
	if !ok || len(rest) != 0 {
		return nil, fmt.Errorf("%w: truncated scope or trailing bytes", ErrUnwrap)
	}
	k.Tier, k.Scope = string(tier), string(scope)
	if err := checkScope(k.Tier, k.Scope); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnwrap, err)
	}
	return k, nil
}

// cutPrefixed splits off a one-byte-length-prefixed field.
func cutPrefixed(b []byte) (field, rest []byte, ok bool) {
	if len(b) < 1 || len(b)-1 < int(b[0]) {
		return nil, nil, false
	}
	n := int(b[0])
	return b[1 : 1+n], b[1+n:], true
}
