package wire

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/dafnet/daf/privacy"
	"github.com/dafnet/daf/seal"
)

// TestSealedPipeline runs the receive path of docs/PROTOCOL.md end to end
// for a Group update: seal once, sign, frame, relay, read, verify, replay
// check, open.
func TestSealedPipeline(t *testing.T) {
	rng := seeded(30)
	alice, mallory := identity(t, 31), identity(t, 33)
	key, err := seal.NewScopeKey(rng, "group", "ward", 2)
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte("compressed update bytes")
	e := &Envelope{Version: Version, FederationID: "fed", Round: 5, Tier: uint8(privacy.Group), Scope: "ward", KeyEpoch: key.Epoch}
	e.Source = alice.Public() // SealAD needs the source before Sign fills it
	e.Payload, err = seal.SealPayload(key, plain, SealAD(e), rng)
	if err != nil {
		t.Fatal(err)
	}
	Sign(e, alice)

	var stream bytes.Buffer
	if err := WriteEnvelope(&stream, e, DefaultLimits()); err != nil {
		t.Fatal(err)
	}
	// A relay reads, bumps the hop count and forwards without re-signing.
	relayed, err := ReadEnvelope(&stream, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	relayed.Hops++
	if err := WriteEnvelope(&stream, relayed, DefaultLimits()); err != nil {
		t.Fatal(err)
	}

	got, err := ReadEnvelope(&stream, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(got); err != nil {
		t.Fatal(err)
	}
	guard := NewReplayGuard(3)
	if err := guard.Check(got, 5); err != nil {
		t.Fatal(err)
	}
	ring := seal.NewScopeKeyring()
	if err := ring.Add(key); err != nil {
		t.Fatal(err)
	}
	k, err := ring.Get(got.TierName(), got.Scope, got.KeyEpoch)
	if err != nil {
		t.Fatal(err)
	}
	opened, err := seal.OpenPayload(k, got.Payload, SealAD(got))
	if err != nil || !bytes.Equal(opened, plain) {
		t.Fatalf("open: %q, %v", opened, err)
	}
	if got.Hops != 1 {
		t.Fatalf("hops = %d after one relay", got.Hops)
	}

	// A member who copies Alice's sealed payload into an envelope signed by
	// itself passes the signature but the payload no longer opens.
	stolen := &Envelope{Version: Version, FederationID: "fed", Round: 5, Tier: uint8(privacy.Group), Scope: "ward", KeyEpoch: 2, Payload: got.Payload}
	Sign(stolen, mallory)
	if err := Verify(stolen); err != nil {
		t.Fatal(err)
	}
	if _, err := seal.OpenPayload(k, stolen.Payload, SealAD(stolen)); !errors.Is(err, seal.ErrOpen) {
		t.Fatalf("copied payload opened under another source: err = %v", err)
	}
}

func TestReadFrameLimits(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteFrame(&buf, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFrame(bytes.NewReader(buf.Bytes()), 99); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("frame over limit: err = %v", err)
	}
	if b, err := ReadFrame(bytes.NewReader(buf.Bytes()), 100); err != nil || len(b) != 100 {
		t.Fatalf("frame at limit: %d bytes, %v", len(b), err)
	}
	// A peer that announces 64 MiB and sends 10 bytes: the error names the
	// truncation and the reader allocated about one chunk, not 64 MiB.
	lying := append([]byte{0x04, 0, 0, 0}, make([]byte, 10)...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := ReadFrame(bytes.NewReader(lying), DefaultMaxEnvelope)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrMalformed) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated frame: err = %v", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 4*readChunk {
		t.Fatalf("reader allocated %d bytes for a 10-byte frame", grew)
	}
	// A large frame arriving in full is read across chunk boundaries intact.
	big := make([]byte, 3*readChunk+17)
	for i := range big {
		big[i] = byte(i * 7)
	}
	buf.Reset()
	WriteFrame(&buf, big)
	got, err := ReadFrame(&buf, len(big))
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("multi-chunk frame: %v", err)
	}
}

func TestReplyRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	long := string(bytes.Repeat([]byte("r"), 2000))
	for _, r := range []Reply{
		{StatusAccepted, ""},
		{StatusRejectedByzantine, "magnitude 31 × the node's mean"},
		{StatusDuplicate, ""},
		{StatusBusy, long},
	} {
		if err := WriteReply(&buf, r); err != nil {
			t.Fatal(err)
		}
		got, err := ReadReply(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != r.Status || (len(r.Reason) <= 100 && got.Reason != r.Reason) {
			t.Fatalf("reply %+v came back as %+v", r, got)
		}
		if len(got.Reason) > MaxReasonLen {
			t.Fatalf("reason of %d bytes not cut", len(got.Reason))
		}
	}
	// The layout the p2p transport speaks: verdict, u16 length, reason.
	want := append([]byte{1, 0, 26}, "rejected_signature: forged"...)
	if got := (Reply{StatusRejectedSignature, "forged"}).Marshal(); !bytes.Equal(got, want) {
		t.Fatalf("refusal bytes %q, want %q", got, want)
	}
	if got := (Reply{Status: StatusAccepted}).Marshal(); !bytes.Equal(got, []byte{0, 0, 0}) {
		t.Fatalf("accept bytes %v", got)
	}
	// A refusal from a peer that does not use status labels.
	plain, err := UnmarshalReply(append([]byte{1, 0, 9}, "no thanks"...))
	if err != nil || plain.Status != StatusRefused || plain.Reason != "no thanks" {
		t.Fatalf("unlabelled refusal: %+v %v", plain, err)
	}
	for _, b := range [][]byte{{}, {0}, {0, 0, 1, 'a'}, {2, 0, 0}, {1, 0, 3, 'a'}, {1, 0x04, 0x01}} {
		if _, err := UnmarshalReply(b); !errors.Is(err, ErrMalformed) {
			t.Fatalf("reply %x: err = %v", b, err)
		}
	}
}

func TestKeysRequests(t *testing.T) {
	rng := seeded(40)
	admin, member := identity(t, 41), identity(t, 42)
	k, _ := seal.NewScopeKey(rng, "tenant", "acme", 3)
	g, err := seal.NewScopeKeyGrant(rng, admin, k, seal.NewKeyRecord(member, 1))
	if err != nil {
		t.Fatal(err)
	}
	gb, _ := g.Marshal()
	rec, _ := seal.NewKeyRecord(member, 7).Marshal()
	for _, q := range []KeysRequest{
		{Kind: KeysRecord, Record: rec},
		{Kind: KeysWantGrants, Tier: uint8(privacy.Tenant), Scope: "acme", MinEpoch: 2},
		{Kind: KeysPutGrant, Grant: gb},
	} {
		b, err := q.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		back, err := UnmarshalKeysRequest(b)
		if err != nil {
			t.Fatal(err)
		}
		if back.Kind != q.Kind || back.Tier != q.Tier || back.Scope != q.Scope || back.MinEpoch != q.MinEpoch ||
			!bytes.Equal(back.Grant, q.Grant) || !bytes.Equal(back.Record, q.Record) {
			t.Fatalf("message %+v came back as %+v", q, back)
		}
		if q.Kind == KeysPutGrant {
			opened, err := seal.UnmarshalScopeKeyGrant(back.Grant)
			if err != nil {
				t.Fatal(err)
			}
			if key, err := opened.Open(member); err != nil || *key != *k {
				t.Fatalf("grant from the message: %v", err)
			}
		}
	}
	for name, b := range map[string][]byte{
		"empty":          {},
		"unknown kind":   {9},
		"short record":   {1, 0},
		"want private":   {2, 0, 1, 'x', 0, 0, 0, 0},
		"want truncated": {2, 1, 5, 'x'},
		"want trailing":  {2, 3, 0, 0, 0, 0, 0, 0},
		"empty grant":    {3},
	} {
		if _, err := UnmarshalKeysRequest(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := UnmarshalKeysRequest([]byte{2, 3, 0, 0, 0, 0, 1}); err != nil {
		t.Fatalf("public grants request: %v", err)
	}
}

func TestPeerList(t *testing.T) {
	a, b := identity(t, 50), identity(t, 51)
	ra, _ := seal.NewKeyRecord(a, 100).Marshal()
	rb, _ := seal.NewKeyRecord(b, 200).Marshal()
	peers := []PeerEntry{
		{KeyRecord: ra, Addrs: [][]byte{{4, 127, 0, 0, 1, 6, 0x10, 0x01}}, Memberships: []Membership{{uint8(privacy.Public), ""}, {uint8(privacy.Group), "ward"}}, SeenSecsAgo: 12},
		{KeyRecord: rb},
	}
	buf, err := MarshalPeerList(peers)
	if err != nil {
		t.Fatal(err)
	}
	back, err := UnmarshalPeerList(buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != 2 || back[0].SeenSecsAgo != 12 || len(back[0].Addrs) != 1 || back[0].Memberships[1].Scope != "ward" || len(back[1].Addrs) != 0 {
		t.Fatalf("peer list came back as %+v", back)
	}
	rec, err := seal.UnmarshalKeyRecord(back[1].KeyRecord)
	if err != nil || !rec.Identity.Equal(b.Public()) {
		t.Fatalf("key record from the list: %v", err)
	}
	if _, err := UnmarshalPeerList(buf[:len(buf)-1]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated: err = %v", err)
	}
	if _, err := UnmarshalPeerList([]byte{0x01, 0x01}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("257 peers: err = %v", err)
	}
	bad := []PeerEntry{{KeyRecord: ra, Memberships: []Membership{{uint8(privacy.Private), ""}}}}
	if _, err := MarshalPeerList(bad); !errors.Is(err, ErrBadTier) {
		t.Fatalf("private membership: err = %v", err)
	}
}
