package p2p

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/dafnet/daf/gossip"
)

func TestFrameBytesAreTheDocumentedLayout(t *testing.T) {
	var buf bytes.Buffer
	if err := writeFrame(&buf, []byte("abc")); err != nil {
		t.Fatal(err)
	}
	if want := []byte{0, 0, 0, 3, 'a', 'b', 'c'}; !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("frame = %v, want %v", buf.Bytes(), want)
	}
	buf.Reset()
	if err := writeVerdict(&buf, nil); err != nil {
		t.Fatal(err)
	}
	if want := []byte{0, 0, 0}; !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("accept verdict = %v, want %v", buf.Bytes(), want)
	}
	buf.Reset()
	// The reason starts with the refusal's result label.
	if err := writeVerdict(&buf, fmt.Errorf("%w: no", gossip.ErrDuplicate)); err != nil {
		t.Fatal(err)
	}
	reason := "duplicate: duplicate delta: no"
	if want := append([]byte{1, 0, byte(len(reason))}, reason...); !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("refuse verdict = %v, want %v", buf.Bytes(), want)
	}
	ok, got, err := readVerdict(bytes.NewReader(buf.Bytes()))
	if err != nil || ok || gossip.ParseRefusal(got).Label != gossip.ResultDuplicate {
		t.Fatalf("read back: accepted %v, reason %q, %v", ok, got, err)
	}
}

func TestFrameLimitCheckedBeforeBody(t *testing.T) {
	// Only the header is present: a reader that allocated first would
	// still fail, but with a short-read error rather than ErrTooLarge.
	hdr := []byte{0x7f, 0xff, 0xff, 0xff}
	_, err := readFrame(bytes.NewReader(hdr), 1<<20)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if !strings.Contains(err.Error(), "2147483647") {
		t.Fatalf("error %q does not name the announced size", err)
	}
	msg, err := readFrame(bytes.NewReader([]byte{0, 0, 0, 2, 9, 8}), 2)
	if err != nil || !bytes.Equal(msg, []byte{9, 8}) {
		t.Fatalf("at the limit: msg %v err %v", msg, err)
	}
	if _, err := readFrame(bytes.NewReader([]byte{0, 0, 0, 5, 1}), 10); !errors.Is(err, ErrBadFrame) {
		t.Fatalf("truncated body: err = %v, want ErrBadFrame", err)
	}
}

// allocatedBy is how many bytes the heap handed out while f ran.
func allocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestFrameBufferGrowsWithTheBytes: a peer that announces a message at the
// limit and then sends 10 bytes must cost the reader about what arrived,
// not the announced length.
func TestFrameBufferGrowsWithTheBytes(t *testing.T) {
	lying := append([]byte{0x03, 0xff, 0xff, 0xf0}, make([]byte, 10)...) // 64 MiB − 16
	var err error
	grew := allocatedBy(func() { _, err = readFrame(bytes.NewReader(lying), DefaultMaxMessageBytes) })
	if !errors.Is(err, ErrBadFrame) {
		t.Fatalf("truncated frame: err = %v, want ErrBadFrame", err)
	}
	if grew > 4<<20 {
		t.Fatalf("reader allocated %d bytes for a frame that brought 10", grew)
	}
	// A message that does arrive in full comes back intact across the
	// reader's growth steps.
	big := make([]byte, 5<<20+3)
	for i := range big {
		big[i] = byte(i * 13)
	}
	var buf bytes.Buffer
	if err := writeFrame(&buf, big); err != nil {
		t.Fatal(err)
	}
	got, err := readFrame(&buf, int64(len(big)))
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("5 MiB frame: err %v, intact %v", err, bytes.Equal(got, big))
	}
}

func TestVerdictRoundTripAndCut(t *testing.T) {
	long := strings.Repeat("x", 3000)
	var buf bytes.Buffer
	if err := writeVerdict(&buf, fmt.Errorf("%s", long)); err != nil {
		t.Fatal(err)
	}
	ok, reason, err := readVerdict(&buf)
	if err != nil || ok || len(reason) != maxReasonBytes {
		t.Fatalf("ok=%v len(reason)=%d err=%v, want refusal cut to %d", ok, len(reason), err, maxReasonBytes)
	}
	for _, bad := range [][]byte{{2, 0, 0}, {0, 0, 1, 'x'}, {1, 0xff, 0xff}, {1, 0, 4, 'a'}, {0}} {
		if _, _, err := readVerdict(bytes.NewReader(bad)); !errors.Is(err, ErrBadFrame) {
			t.Errorf("verdict %v: err = %v, want ErrBadFrame", bad, err)
		}
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 7})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := readFrame(bytes.NewReader(data), 64)
		if err != nil {
			return
		}
		if len(msg) > 64 || !bytes.Equal(msg, data[4:4+len(msg)]) {
			t.Fatalf("frame %v decoded to %v", data, msg)
		}
	})
}

func FuzzReadVerdict(f *testing.F) {
	f.Add([]byte{0, 0, 0})
	f.Add([]byte{1, 0, 2, 'n', 'o'})
	f.Fuzz(func(t *testing.T, data []byte) {
		ok, reason, err := readVerdict(bytes.NewReader(data))
		if err != nil {
			return
		}
		if ok && reason != "" {
			t.Fatalf("accept with reason %q", reason)
		}
		if len(reason) > maxReasonBytes {
			t.Fatalf("reason of %d bytes", len(reason))
		}
	})
}
