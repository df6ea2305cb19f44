package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/dafnet/daf/seal"
)

// Bounds of a /daf/peers/1 answer.
const (
	MaxPeersPerList       = 256
	MaxAddrsPerPeer       = 16
	MaxAddrLen            = 255
	MaxMembershipsPerPeer = 16
)

// Membership is a (tier, scope) a peer says it belongs to. It is a claim
// used only to pick whom to send to: a non-member that receives a sealed
// envelope cannot open it, and a public one is for everyone anyway.
type Membership struct {
	Tier  uint8
	Scope string
}

// PeerEntry is one peer as another node knows it: its signed key record
// (identity and X25519 key), its multiaddrs in binary form, its claimed
// memberships, and how long ago the answering node last heard from it.
type PeerEntry struct {
	KeyRecord   []byte // seal.KeyRecordSize bytes; verify with seal.UnmarshalKeyRecord
	Addrs       [][]byte
	Memberships []Membership
	SeenSecsAgo uint32
}

// MarshalPeerList encodes a /daf/peers/1 message: the sender's view of the
// network (itself first, then peers it heard from recently, most recent
// first), pushed to a peer; the receiver answers with a Reply.
func MarshalPeerList(peers []PeerEntry) ([]byte, error) {
	if len(peers) > MaxPeersPerList {
		return nil, fmt.Errorf("%w: %d peers, at most %d", ErrTooLarge, len(peers), MaxPeersPerList)
	}
	b := binary.BigEndian.AppendUint16(nil, uint16(len(peers)))
	for i, p := range peers {
		if len(p.KeyRecord) != seal.KeyRecordSize {
			return nil, fmt.Errorf("%w: peer %d key record is %d bytes", ErrMalformed, i, len(p.KeyRecord))
		}
		if len(p.Addrs) > MaxAddrsPerPeer || len(p.Memberships) > MaxMembershipsPerPeer {
			return nil, fmt.Errorf("%w: peer %d has %d addresses and %d memberships", ErrTooLarge, i, len(p.Addrs), len(p.Memberships))
		}
		b = append(b, p.KeyRecord...)
		b = binary.BigEndian.AppendUint32(b, p.SeenSecsAgo)
		b = append(b, byte(len(p.Addrs)))
		for _, a := range p.Addrs {
			if len(a) == 0 || len(a) > MaxAddrLen {
				return nil, fmt.Errorf("%w: peer %d address of %d bytes", ErrMalformed, i, len(a))
			}
			b = append(b, byte(len(a)))
			b = append(b, a...)
		}
		b = append(b, byte(len(p.Memberships)))
		for _, m := range p.Memberships {
			if err := checkTier(m.Tier, m.Scope, 0); err != nil {
				return nil, fmt.Errorf("peer %d: %w", i, err)
			}
			b = append(b, m.Tier, byte(len(m.Scope)))
			b = append(b, m.Scope...)
		}
	}
	return b, nil
}

// UnmarshalPeerList decodes a peer list. Key records are returned as bytes;
// the caller verifies each with seal.UnmarshalKeyRecord before use.
func UnmarshalPeerList(b []byte) ([]PeerEntry, error) {
	c := &cursor{b: b}
	n := int(c.u16("peer count"))
	if n > MaxPeersPerList {
		return nil, fmt.Errorf("%w: %d peers, at most %d", ErrTooLarge, n, MaxPeersPerList)
	}
	minEntry := seal.KeyRecordSize + 4 + 1 + 1
	if c.err == nil && n*minEntry > len(c.b) {
		return nil, fmt.Errorf("%w: %d peers announced in %d bytes", ErrMalformed, n, len(c.b))
	}
	out := make([]PeerEntry, 0, n)
	for i := 0; i < n && c.err == nil; i++ {
		var p PeerEntry
		p.KeyRecord = bytes.Clone(c.take(seal.KeyRecordSize, "key record"))
		p.SeenSecsAgo = c.u32("last seen")
		na := int(c.u8("address count"))
		if na > MaxAddrsPerPeer {
			return nil, fmt.Errorf("%w: peer %d has %d addresses, at most %d", ErrTooLarge, i, na, MaxAddrsPerPeer)
		}
		for j := 0; j < na && c.err == nil; j++ {
			l := int(c.u8("address length"))
			if l == 0 {
				return nil, fmt.Errorf("%w: peer %d has an empty address", ErrMalformed, i)
			}
			p.Addrs = append(p.Addrs, bytes.Clone(c.take(l, "address")))
		}
		nm := int(c.u8("membership count"))
		if nm > MaxMembershipsPerPeer {
			return nil, fmt.Errorf("%w: peer %d has %d memberships, at most %d", ErrTooLarge, i, nm, MaxMembershipsPerPeer)
		}
		for j := 0; j < nm && c.err == nil; j++ {
			m := Membership{Tier: c.u8("membership tier"), Scope: c.str8("membership scope")}
			if c.err == nil {
				if err := checkTier(m.Tier, m.Scope, 0); err != nil {
					return nil, fmt.Errorf("peer %d: %w", i, err)
				}
			}
			p.Memberships = append(p.Memberships, m)
		}
		out = append(out, p)
	}
	if err := c.done("peer list"); err != nil {
		return nil, err
	}
	return out, nil
}
