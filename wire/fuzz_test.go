package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/dafnet/daf/privacy"
	"github.com/dafnet/daf/seal"
)

// fuzzLimits keep the fuzzer's inputs small enough that "no allocation beyond
// the limit" is checked against a limit it can actually exceed.
var fuzzLimits = Limits{MaxEnvelope: 4096, MaxControlFrame: 4096}

func FuzzEnvelope(f *testing.F) {
	id := identity(f, 90)
	for _, e := range []*Envelope{
		signedEnvelope(f, id, 1, privacy.Public, "", []byte("payload")),
		signedEnvelope(f, id, 1<<40, privacy.Group, "ward", nil),
		signedEnvelope(f, id, 3, privacy.Tenant, "acme", bytes.Repeat([]byte{7}, 300)),
	} {
		b, err := e.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("DAFE"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Unmarshal(b, fuzzLimits)
		if len(b) > fuzzLimits.MaxEnvelope && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("%d bytes over a %d limit: err = %v", len(b), fuzzLimits.MaxEnvelope, err)
		}
		// The same bytes arriving as a frame on a stream.
		framed := binary.BigEndian.AppendUint32(nil, uint32(len(b)))
		e2, err2 := ReadEnvelope(bytes.NewReader(append(framed, b...)), fuzzLimits)
		if (err == nil) != (err2 == nil) {
			t.Fatalf("Unmarshal err %v but ReadEnvelope err %v", err, err2)
		}
		if err != nil {
			return
		}
		_ = Verify(e)
		again, err := e.MarshalWithin(fuzzLimits)
		if err != nil {
			t.Fatalf("decoded envelope does not re-encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("encoding is not canonical:\n in %x\nout %x", b, again)
		}
		if e2.Round != e.Round || e2.Scope != e.Scope || !bytes.Equal(e2.Payload, e.Payload) {
			t.Fatal("stream and buffer decoding disagree")
		}
	})
}

func FuzzControlMessages(f *testing.F) {
	id := identity(f, 91)
	rec, _ := seal.NewKeyRecord(id, 1).Marshal()
	pl, _ := MarshalPeerList([]PeerEntry{{KeyRecord: rec, Addrs: [][]byte{{1, 2}}, Memberships: []Membership{{1, "g"}}}})
	kw, _ := (&KeysRequest{Kind: KeysWantGrants, Tier: 2, Scope: "acme", MinEpoch: 1}).Marshal()
	kr, _ := (&KeysRequest{Kind: KeysRecord, Record: rec}).Marshal()
	for _, s := range [][]byte{pl, kw, kr, {3, 1}, {0, 0, 0}, {1, 0, 2, 'o', 'k'}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if peers, err := UnmarshalPeerList(b); err == nil {
			again, err := MarshalPeerList(peers)
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("peer list does not round-trip: %v", err)
			}
		}
		if q, err := UnmarshalKeysRequest(b); err == nil {
			again, err := q.Marshal()
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("keys message does not round-trip: %v", err)
			}
		}
		if r, err := UnmarshalReply(b); err == nil {
			if r.Status >= statusCount {
				t.Fatalf("reply with unknown status %d accepted", r.Status)
			}
			if r.Status == StatusAccepted && !bytes.Equal(r.Marshal(), b) {
				t.Fatal("accept reply does not round-trip")
			}
		}
		if r, err := ReadReply(bytes.NewReader(b)); err == nil && len(r.Reason) > MaxReasonLen {
			t.Fatalf("reply reason of %d bytes", len(r.Reason))
		}
		_, _ = ReadFrame(bytes.NewReader(b), fuzzLimits.MaxControlFrame)
	})
}
