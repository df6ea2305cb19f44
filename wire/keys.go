package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/dafnet/daf/seal"
)

// KeysKind is the first byte of a /daf/keys/1 message. Like every DAF
// stream, /daf/keys/1 carries one message per stream and the receiver
// answers with a Reply; answers to a question travel as new messages.
type KeysKind uint8

const (
	// KeysRecord announces the sender's signed key record (sent when a
	// connection opens and whenever the record is reissued).
	KeysRecord KeysKind = 1
	// KeysWantGrants asks the receiver to send, as KeysPutGrant messages, the
	// grants it holds that are addressed to the sender for (Tier, Scope)
	// with epoch ≥ MinEpoch.
	KeysWantGrants KeysKind = 2
	// KeysPutGrant delivers one scope key grant.
	KeysPutGrant KeysKind = 3
)

// KeysRequest is one /daf/keys/1 message.
type KeysRequest struct {
	Kind     KeysKind
	Record   []byte // KeysRecord: a marshalled seal.KeyRecord
	Tier     uint8  // KeysWantGrants
	Scope    string // KeysWantGrants
	MinEpoch uint32 // KeysWantGrants
	Grant    []byte // KeysPutGrant: a marshalled seal.ScopeKeyGrant
}

// Marshal encodes the message.
func (q *KeysRequest) Marshal() ([]byte, error) {
	switch q.Kind {
	case KeysRecord:
		if len(q.Record) != seal.KeyRecordSize {
			return nil, fmt.Errorf("%w: key record of %d bytes, want %d", ErrMalformed, len(q.Record), seal.KeyRecordSize)
		}
		return append([]byte{byte(q.Kind)}, q.Record...), nil
	case KeysWantGrants:
		if err := checkTier(q.Tier, q.Scope, 0); err != nil {
			return nil, err
		}
		if len(q.Scope) > MaxScopeLen {
			return nil, fmt.Errorf("%w: scope of %d bytes", ErrTooLarge, len(q.Scope))
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
	return nil, fmt.Errorf("%w: unknown keys message kind %d", ErrMalformed, q.Kind)
}

// UnmarshalKeysRequest decodes a message. Records and grants are returned
// as bytes; the caller verifies them with seal.UnmarshalKeyRecord and
// seal.UnmarshalScopeKeyGrant, and decides whether it trusts a grant's issuer.
func UnmarshalKeysRequest(b []byte) (*KeysRequest, error) {
	c := &cursor{b: b}
	q := &KeysRequest{Kind: KeysKind(c.u8("kind"))}
	switch q.Kind {
	case KeysRecord:
		if len(c.b) != seal.KeyRecordSize {
			return nil, fmt.Errorf("%w: key record of %d bytes, want %d", ErrMalformed, len(c.b), seal.KeyRecordSize)
		}
		q.Record = bytes.Clone(c.take(len(c.b), "key record"))
	case KeysWantGrants:
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
			return nil, fmt.Errorf("%w: grant of %d bytes", ErrMalformed, len(c.b))
		}
		q.Grant = bytes.Clone(c.take(len(c.b), "grant"))
	default:
		if c.err != nil {
			return nil, c.err
		}
		return nil, fmt.Errorf("%w: unknown keys message kind %d", ErrMalformed, q.Kind)
	}
	if err := c.done("keys message"); err != nil {
		return nil, err
	}
	return q, nil
}
