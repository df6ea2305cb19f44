package node

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/dafnet/daf/adapter"
	"pgregory.net/rapid"
)

func TestPayloadKnownBytes(t *testing.T) {
	u := &adapter.Update{Meta: adapter.Metadata{Samples: 2}}
	u.Set("g", "k", &adapter.Tensor{Shape: []int{2}, Data: []float32{1, -2}})
	b, err := EncodePayload(u)
	if err != nil {
		t.Fatal(err)
	}
	// Tail: count 1, name "g/k", rank 1, dim 2, 1.0f and -2.0f little-endian.
	tail := []byte{0, 0, 0, 1, 0, 3, 'g', '/', 'k', 1, 0, 0, 0, 2, 0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0}
	if !bytes.HasSuffix(b, tail) || !bytes.HasPrefix(b, []byte("DAFP\x01")) {
		t.Fatalf("payload % x", b)
	}
	got, err := DecodePayload(b)
	if err != nil || got.Meta.Samples != 2 || got.Get("g", "k").Data[1] != -2 {
		t.Fatalf("decode: %+v %v", got, err)
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		u := adapter.New()
		u.Meta.Samples = rapid.Float64Range(0, 1e6).Draw(t, "samples")
		u.Meta.Round = rapid.Uint64().Draw(t, "round")
		for g := range rapid.IntRange(1, 3).Draw(t, "groups") {
			for k := range rapid.IntRange(1, 3).Draw(t, "keys") {
				r, c := rapid.IntRange(0, 5).Draw(t, "r"), rapid.IntRange(1, 5).Draw(t, "c")
				ten := adapter.NewTensor(r, c)
				for i := range ten.Data {
					ten.Data[i] = rapid.Float32Range(-1e6, 1e6).Draw(t, "v")
				}
				u.Set(string(rune('a'+g)), string(rune('k'+k))+".lora_A.weight", ten)
			}
		}
		b, err := EncodePayload(u)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodePayload(b)
		if err != nil {
			t.Fatal(err)
		}
		if got.Meta.Samples != u.Meta.Samples || got.Meta.Round != u.Meta.Round || got.NumParams() != u.NumParams() {
			t.Fatalf("meta or size differ: %+v vs %+v", got.Meta, u.Meta)
		}
		if Distance(u, got) != 0 || Distance(got, u) != 0 {
			t.Fatal("values differ")
		}
	})
}

func TestPayloadRejects(t *testing.T) {
	u := adapter.New()
	u.Set("g", "k", &adapter.Tensor{Shape: []int{1}, Data: []float32{1}})
	good, _ := EncodePayload(u)
	nanBytes := append([]byte(nil), good...)
	binary.LittleEndian.PutUint32(nanBytes[len(nanBytes)-4:], math.Float32bits(float32(math.NaN())))
	huge := append([]byte(nil), good[:len(good)-8]...) // cut at the dimension
	huge = binary.BigEndian.AppendUint32(huge, 1<<30)
	for name, b := range map[string][]byte{
		"truncated": good[:len(good)-1],
		"trailing":  append(append([]byte(nil), good...), 0),
		"nan":       nanBytes,
		"huge dim":  huge,
		"magic":     append([]byte("XXXX"), good[4:]...),
		"empty":     nil,
	} {
		if _, err := DecodePayload(b); !errors.Is(err, ErrBadPayload) {
			t.Errorf("%s: err = %v, want ErrBadPayload", name, err)
		}
	}
}

func FuzzDecodePayload(f *testing.F) {
	u := adapter.New()
	u.Set("coarse", "m.lora_A.weight", &adapter.Tensor{Shape: []int{2, 2}, Data: []float32{1, 2, 3, 4}})
	b, _ := EncodePayload(u)
	f.Add(b)
	f.Add([]byte("DAFP\x01\x00\x00\x00\x02{}\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := DecodePayload(data)
		if err != nil {
			return
		}
		if u.NumParams()*4 > len(data) {
			t.Fatalf("%d params from %d bytes", u.NumParams(), len(data))
		}
		if err := u.CheckFinite(); err != nil {
			t.Fatal(err)
		}
	})
}
