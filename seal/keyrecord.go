package seal

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"sync"
)

// keyRecordVersion is the first byte of a marshalled key record.
const keyRecordVersion = 1

// KeyRecordSize is the exact length of a marshalled key record:
// version(1) identity(32) x25519(32) issued(8) signature(64).
const KeyRecordSize = 1 + ed25519.PublicKeySize + 32 + 8 + ed25519.SignatureSize

// keyRecordDomain separates key-record signatures from every other signature
// the identity makes.
const keyRecordDomain = "daf/keyrecord/v1\x00"

// KeyRecord publishes a node's X25519 key, signed by its identity. Issued is
// the issuer's Unix time in seconds; a record with a larger Issued replaces
// an older one for the same identity.
type KeyRecord struct {
	Identity  ed25519.PublicKey
	X25519    []byte
	Issued    int64
	Signature []byte
}

// NewKeyRecord returns id's signed key record.
func NewKeyRecord(id *Identity, issued int64) *KeyRecord {
	r := &KeyRecord{
		Identity: id.Public(),
		X25519:   id.X25519().PublicKey().Bytes(),
		Issued:   issued,
	}
	r.Signature = id.Sign(r.signingBytes())
	return r
}

func (r *KeyRecord) signingBytes() []byte {
	b := make([]byte, 0, len(keyRecordDomain)+ed25519.PublicKeySize+32+8)
	b = append(b, keyRecordDomain...)
	b = append(b, r.Identity...)
	b = append(b, r.X25519...)
	return binary.BigEndian.AppendUint64(b, uint64(r.Issued))
}

// Verify checks lengths, that the X25519 key is a usable point, and the
// identity's signature.
func (r *KeyRecord) Verify() error {
	if len(r.Identity) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: identity is %d bytes, want %d", ErrBadKeyRecord, len(r.Identity), ed25519.PublicKeySize)
	}
	if len(r.X25519) != 32 {
		return fmt.Errorf("%w: x25519 key is %d bytes, want 32", ErrBadKeyRecord, len(r.X25519))
	}
	if len(r.Signature) != ed25519.SignatureSize {
		return fmt.Errorf("%w: signature is %d bytes, want %d", ErrBadKeyRecord, len(r.Signature), ed25519.SignatureSize)
	}
	if !ed25519.Verify(r.Identity, r.signingBytes(), r.Signature) {
		return fmt.Errorf("%w: signature does not verify for identity %x", ErrBadKeyRecord, []byte(r.Identity))
	}
	if _, err := r.PublicX25519(); err != nil {
		return err
	}
	return nil
}

// PublicX25519 returns the record's X25519 key. A low-order point (all-zero
// shared secrets) is refused here so that wrapping to it fails loudly.
func (r *KeyRecord) PublicX25519() (*ecdh.PublicKey, error) {
	pub, err := ecdh.X25519().NewPublicKey(r.X25519)
	if err != nil {
		return nil, fmt.Errorf("%w: x25519 key: %v", ErrBadKeyRecord, err)
	}
	// A low-order point makes every ECDH result zero; ecdh reports that as an
	// error, which we use as the test.
	probe, err := lowOrderProbe()
	if err != nil {
		return nil, err
	}
	if _, err := probe.ECDH(pub); err != nil {
		return nil, fmt.Errorf("%w: x25519 key is a low-order point", ErrBadKeyRecord)
	}
	return pub, nil
}

// lowOrderProbe is the fixed private key PublicX25519 multiplies with;
// deriving it costs a scalar multiplication, so it is made once.
var lowOrderProbe = sync.OnceValues(func() (*ecdh.PrivateKey, error) {
	return ecdh.X25519().NewPrivateKey(bytes.Repeat([]byte{0x5a}, 32))
})

// Marshal returns the fixed-size encoding (KeyRecordSize bytes).
func (r *KeyRecord) Marshal() ([]byte, error) {
	if len(r.Identity) != ed25519.PublicKeySize || len(r.X25519) != 32 || len(r.Signature) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: field lengths identity=%d x25519=%d signature=%d", ErrBadKeyRecord, len(r.Identity), len(r.X25519), len(r.Signature))
	}
	b := make([]byte, 0, KeyRecordSize)
	b = append(b, keyRecordVersion)
	b = append(b, r.Identity...)
	b = append(b, r.X25519...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Issued))
	b = append(b, r.Signature...)
	return b, nil
}

// UnmarshalKeyRecord decodes and verifies a key record.
func UnmarshalKeyRecord(b []byte) (*KeyRecord, error) {
	r, err := ParseKeyRecord(b)
	if err != nil {
		return nil, err
	}
	if err := r.Verify(); err != nil {
		return nil, err
	}
	return r, nil
}

// ParseKeyRecord decodes a key record without verifying it: for a caller
// that holds records it verified before and checks only new ones (peer
// lists repeat the same records every time). Verify before using it.
func ParseKeyRecord(b []byte) (*KeyRecord, error) {
	if len(b) != KeyRecordSize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrBadKeyRecord, len(b), KeyRecordSize)
	}
	if b[0] != keyRecordVersion {
		return nil, fmt.Errorf("%w: version %d, this node reads %d", ErrBadKeyRecord, b[0], keyRecordVersion)
	}
	p := 1
	r := &KeyRecord{}
	r.Identity = ed25519.PublicKey(bytes.Clone(b[p : p+ed25519.PublicKeySize]))
	p += ed25519.PublicKeySize
	r.X25519 = bytes.Clone(b[p : p+32])
	p += 32
	r.Issued = int64(binary.BigEndian.Uint64(b[p : p+8]))
	p += 8
	r.Signature = bytes.Clone(b[p:])
	return r, nil
}
