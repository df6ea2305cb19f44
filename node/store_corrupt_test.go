package node

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// A damaged state.db must stop the node with ErrCorruptState and leave the
// file byte for byte as it was: it holds the privacy ledger, and a node
// that quietly started over would spend the budget a second time.
func TestOpenStoreRefusesDamagedFileAndKeepsIt(t *testing.T) {
	good := filepath.Join(t.TempDir(), StateFile)
	s := openTestStore(t, good)
	if err := s.SaveLedger([]byte(`{"spent":3.5}`)); err != nil {
		t.Fatal(err)
	}
	// Enough reputations that the bucket has its own pages, whose root is
	// damaged below.
	reps := map[string]float64{}
	for i := range 400 {
		reps[fmt.Sprintf("12D3KooWpeer%04d", i)] = float64(i) / 1000
	}
	if err := s.PutReputations(reps); err != nil {
		t.Fatal(err)
	}
	var repRoot uint64
	if err := s.db.View(func(tx *bolt.Tx) error {
		repRoot = uint64(tx.Bucket(bucketReputation).Root())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if repRoot == 0 {
		t.Fatal("reputation bucket is inline; the test needs it on its own pages")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	pageSize := os.Getpagesize()
	garbage := bytes.Repeat([]byte{0xA5, 0x3C, 0x00, 0xFF}, 2*pageSize)

	for _, c := range []struct {
		name   string
		damage func([]byte) []byte
	}{
		{"empty", func([]byte) []byte { return nil }},
		{"truncated to one page", func(b []byte) []byte { return append([]byte(nil), b[:pageSize]...) }},
		{"meta pages overwritten", func(b []byte) []byte {
			out := append([]byte(nil), b...)
			copy(out, garbage)
			return out
		}},
		{"a bucket's root page overwritten", func(b []byte) []byte {
			out := append([]byte(nil), b...)
			copy(out[int(repRoot)*pageSize:], garbage[:pageSize])
			return out
		}},
		{"not a database", func([]byte) []byte { return []byte("this is a text file, not bbolt\n") }},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), StateFile)
			damaged := c.damage(orig)
			if err := os.WriteFile(path, damaged, 0o600); err != nil {
				t.Fatal(err)
			}
			st, err := OpenStore(path)
			if err == nil {
				st.Close()
				t.Fatal("damaged state.db opened without error")
			}
			if !errors.Is(err, ErrCorruptState) {
				t.Errorf("err = %v, want ErrCorruptState", err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name %s", err, path)
			}
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(after, damaged) {
				t.Errorf("OpenStore changed the damaged file (%d bytes before, %d after)", len(damaged), len(after))
			}
		})
	}
}
