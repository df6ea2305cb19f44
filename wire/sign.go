package wire

import (
	"crypto/ed25519"
	"fmt"

	"github.com/dafnet/daf/seal"
)

// Sign makes id the envelope's source and signs it. Hops is not signed, so
// relays forward without re-signing.
func Sign(e *Envelope, id *seal.Identity) {
	e.Source = id.Public()
	e.Signature = id.Sign(e.SigningBytes())
}

// Verify checks the source's signature over SigningBytes. It is the first
// check on receipt: nothing is decrypted or decoded before it passes.
func Verify(e *Envelope) error {
	if e.Version != Version {
		return fmt.Errorf("%w: envelope version %d, this node speaks %d", ErrUnknownVersion, e.Version, Version)
	}
	if len(e.Source) != ed25519.PublicKeySize || len(e.Signature) != ed25519.SignatureSize {
		return fmt.Errorf("%w: source key %d bytes, signature %d bytes", ErrBadSignature, len(e.Source), len(e.Signature))
	}
	if !ed25519.Verify(ed25519.PublicKey(e.Source), e.SigningBytes(), e.Signature) {
		return fmt.Errorf("%w: source %x round %d", ErrBadSignature, e.Source, e.Round)
	}
	return nil
}
