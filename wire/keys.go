package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/dafnet/daf/seal"
)

// KeysKind is the first byte of a /daf/keys/1 request.
type KeysKind uint8

const (
	// KeysGetRecord asks for the peer's signed key record; the answer is a
	// frame holding the record (seal.KeyRecordSize bytes).
	KeysGetRecord KeysKind = 1
	// KeysGetGrants asks for the scope key grants the peer holds for the
	// requester in (Tier, Scope) from MinEpoch on; the answer is a grant list.
	KeysGetGrants KeysKind = 2
	// KeysPutGrant pushes one grant; the answer is a Reply.
	KeysPutGrant KeysKind = 3
)

// MaxGrantsPerList bounds a grant list (epochs kept per scope are few).
const MaxGrantsPerList = 64

// KeysRequest is one /daf/keys/1 request.
type KeysRequest struct {
	Kind     KeysKind
	Tier     uint8  // KeysGetGrants
	Scope    string // KeysGetGrants
	MinEpoch uint32 // KeysGetGrants
	Grant    []byte // KeysPutGrant: a marshalled seal.ScopeKeyGrant
}

// Marshal encodes the request.
func (q *KeysRequest) Marshal() ([]byte, error) {
	switch q.Kind {
	case KeysGetRecord:
		return []byte{byte(q.Kind)}, nil
	case KeysGetGrants:
		if err := checkTier(q.Tier, q.Scope, 0); err != nil || len(q.Scope) > MaxScopeLen {
			return nil, fmt.Errorf("%w: keys request for tier %d scope %q", ErrMalformed, q.Tier, q.Scope)
		}
		b := []byte{byte(q.Kind), q.Tier, byte(len(q.Scope))}
		b = append(b, q.Scope...)
		return binary.BigEndian.AppendUint32(b, q.MinEpoch), nil
	case KeysPutGrant:
		if len(q.Grant) == 0 || len(q.Grant) > seal.MaxGrantLen {
			return nil, fmt.Errorf("%w: grant of %d bytes", ErrMalformed, len(q.Grant))
		}
		return append([]byte{byte(q.Kind)}, q.Grant...), nil
	}
	return nil, fmt.Errorf("%w: unknown keys request kind %d", ErrMalformed, q.Kind)
}

// UnmarshalKeysRequest decodes a request. A pushed grant is returned as
// bytes; the caller verifies it with seal.UnmarshalScopeKeyGrant.
func UnmarshalKeysRequest(b []byte) (*KeysRequest, error) {
	c := &cursor{b: b}
	q := &KeysRequest{Kind: KeysKind(c.u8("kind"))}
	switch q.Kind {
	case KeysGetRecord:
	case KeysGetGrants:
		q.Tier = c.u8("tier")
		q.Scope = c.str8("scope")
		q.MinEpoch = c.u32("min epoch")
		if c.err == nil {
			if err := checkTier(q.Tier, q.Scope, 0); err != nil {
				return nil, err
			}
		}
	case KeysPutGrant:
		if len(c.b) == 0 || len(c.b) > seal.MaxGrantLen {
			return nil, fmt.Errorf("%w: pushed grant of %d bytes", ErrMalformed, len(c.b))
		}
		q.Grant = bytes.Clone(c.take(len(c.b), "grant"))
	default:
		return nil, fmt.Errorf("%w: unknown keys request kind %d", ErrMalformed, q.Kind)
	}
	if err := c.done("keys request"); err != nil {
		return nil, err
	}
	return q, nil
}

// MarshalGrantList encodes the answer to KeysGetGrants: a count, then each
// grant with a 2-byte length.
func MarshalGrantList(grants [][]byte) ([]byte, error) {
	if len(grants) > MaxGrantsPerList {
		return nil, fmt.Errorf("%w: %d grants, at most %d", ErrTooLarge, len(grants), MaxGrantsPerList)
	}
	b := binary.BigEndian.AppendUint16(nil, uint16(len(grants)))
	for i, g := range grants {
		if len(g) == 0 || len(g) > seal.MaxGrantLen {
			return nil, fmt.Errorf("%w: grant %d is %d bytes", ErrMalformed, i, len(g))
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(g)))
		b = append(b, g...)
	}
	return b, nil
}

// UnmarshalGrantList decodes a grant list; each grant still has to pass
// seal.UnmarshalScopeKeyGrant and the caller's trust in its issuer.
func UnmarshalGrantList(b []byte) ([][]byte, error) {
	c := &cursor{b: b}
	n := int(c.u16("grant count"))
	if n > MaxGrantsPerList {
		return nil, fmt.Errorf("%w: %d grants, at most %d", ErrTooLarge, n, MaxGrantsPerList)
	}
	// Each grant needs at least its 2-byte length: a count the bytes cannot
	// hold is refused before the slice is allocated.
	if c.err == nil && n*2 > len(c.b) {
		return nil, fmt.Errorf("%w: %d grants announced in %d bytes", ErrMalformed, n, len(c.b))
	}
	out := make([][]byte, 0, n)
	for i := 0; i < n && c.err == nil; i++ {
		l := int(c.u16("grant length"))
		if l == 0 || l > seal.MaxGrantLen {
			return nil, fmt.Errorf("%w: grant %d is %d bytes", ErrMalformed, i, l)
		}
		out = append(out, bytes.Clone(c.take(l, "grant")))
	}
	if err := c.done("grant list"); err != nil {
		return nil, err
	}
	return out, nil
}
