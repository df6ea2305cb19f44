package adapter

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"pgregory.net/rapid"
)

// storedSpec is one tensor of a file built by hand: its dtype and its raw
// little-endian bytes.
type storedSpec struct {
	name  string
	dtype string
	shape []int
	raw   []byte
}

// handFile lays tensors out in order after a header padded with pad extra
// spaces, so that the data section, and each tensor in it, can start at
// any alignment (the writer of this package always pads to 8 bytes; other
// writers need not).
func handFile(meta string, pad int, ts []storedSpec) []byte {
	var hdr strings.Builder
	hdr.WriteString("{" + meta)
	var off int
	var data []byte
	for i, t := range ts {
		if i > 0 || meta != "" {
			hdr.WriteString(",")
		}
		shape := strings.Trim(strings.Join(strings.Fields(fmt.Sprint(t.shape)), ","), "[]")
		fmt.Fprintf(&hdr, `%q:{"dtype":%q,"shape":[%s],"data_offsets":[%d,%d]}`, t.name, t.dtype, shape, off, off+len(t.raw))
		off += len(t.raw)
		data = append(data, t.raw...)
	}
	hdr.WriteString("}" + strings.Repeat(" ", pad))
	return rawFile(hdr.String(), data)
}

func writeTemp(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// aliases reports whether a tensor's values lie in the mapping's pages.
func aliases(m *Mapping, xs []float32) bool {
	return len(xs) > 0 && m.contains(uintptr(unsafe.Pointer(&xs[0])))
}

// A random file of F32, F16 and BF16 tensors at random alignments reads
// the same, bit for bit, mapped and copied; the mapped read aliases
// exactly the F32 tensors at 4-byte-aligned addresses (on a little-endian
// machine) and copies the rest.
func TestMappedAndCopiedReadsAgree(t *testing.T) {
	dir := t.TempDir()
	rapid.Check(t, func(rt *rapid.T) {
		var ts []storedSpec
		for i := range rapid.IntRange(1, 6).Draw(rt, "tensors") {
			dtype := rapid.SampledFrom([]string{DtypeF32, DtypeF16, DtypeBF16}).Draw(rt, "dtype")
			n := rapid.IntRange(0, 9).Draw(rt, "n")
			var raw []byte
			for range n {
				switch dtype {
				case DtypeF32: // any finite bit pattern: subnormals, -0, the largest
					bits := rapid.Uint32().Filter(func(b uint32) bool { return b&0x7f800000 != 0x7f800000 }).Draw(rt, "f32")
					raw = append(raw, f32Bytes(math.Float32frombits(bits))...)
				case DtypeF16:
					raw = append(raw, u16Bytes(rapid.Uint16().Filter(func(b uint16) bool { return b&0x7c00 != 0x7c00 }).Draw(rt, "f16"))...)
				default:
					raw = append(raw, u16Bytes(rapid.Uint16().Filter(func(b uint16) bool { return b&0x7f80 != 0x7f80 }).Draw(rt, "bf16"))...)
				}
			}
			ts = append(ts, storedSpec{fmt.Sprintf("fine/t%d", i), dtype, []int{n}, raw})
		}
		pad := rapid.IntRange(0, 7).Draw(rt, "pad")
		data := handFile(`"__metadata__":{"daf.format":"talora-update/1"}`, pad, ts)
		path := filepath.Join(dir, "r.safetensors")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			rt.Fatal(err)
		}
		copied, err := ReadFile(path)
		if err != nil {
			rt.Fatal(err)
		}
		mapped, m, err := ReadFileMapped(path)
		if err != nil {
			rt.Fatal(err)
		}
		defer m.Close()
		sameUpdate(rt, mapped, copied)
		if !m.Mapped() {
			return // a platform without mmap reads a copy
		}
		off := len(data) - sumLen(ts) // where the data section starts in the file
		for i, s := range ts {
			xs := mapped.Get("fine", fmt.Sprintf("t%d", i)).Data
			want := littleEndian && s.dtype == DtypeF32 && len(s.raw) > 0 && off%4 == 0
			if got := aliases(m, xs); got != want {
				rt.Fatalf("tensor %s (%s at file offset %d): aliases the mapping %v, want %v", s.name, s.dtype, off, got, want)
			}
			off += len(s.raw)
		}
	})
}

func sumLen(ts []storedSpec) int {
	n := 0
	for _, t := range ts {
		n += len(t.raw)
	}
	return n
}

// An F32 tensor whose data does not start on a 4-byte boundary is copied,
// with the right values; one that does, even only on a 4-byte (not 8-byte)
// boundary, is used where it lies.
func TestMappedUnalignedF32IsCopied(t *testing.T) {
	vals := []float32{1.5, -2, 3.25, float32(math.SmallestNonzeroFloat32), math.MaxFloat32}
	meta := `"__metadata__":{"daf.format":"talora-update/1"}`
	for pad := range 8 {
		data := handFile(meta, pad, []storedSpec{
			{"fine/h", DtypeF16, []int{1}, u16Bytes(0x3c00)}, // 2 bytes: shifts the F32 tensor by 2
			{"fine/w", DtypeF32, []int{len(vals)}, f32Bytes(vals...)},
		})
		path := writeTemp(t, "u.safetensors", data)
		u, m, err := ReadFileMapped(path)
		if err != nil {
			t.Fatal(err)
		}
		got := u.Get("fine", "w").Data
		for i := range vals {
			if math.Float32bits(got[i]) != math.Float32bits(vals[i]) {
				t.Fatalf("pad %d: w[%d] = %v, want %v", pad, i, got[i], vals[i])
			}
		}
		offset := len(data) - 4*len(vals)
		if m.Mapped() && aliases(m, got) != (littleEndian && offset%4 == 0) {
			t.Errorf("pad %d: F32 data at file offset %d: aliased %v", pad, offset, aliases(m, got))
		}
		m.Close()
	}
}

// Every hostile file is refused by the mapped reader with the very error
// the copying reader gives.
func TestMappedHostileFilesGiveTheSameErrors(t *testing.T) {
	cases := append(hostileFiles(), hostileFile{name: "empty file", data: nil})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeTemp(t, "hostile.safetensors", c.data)
			_, want := Unmarshal(c.data, path)
			u, m, err := ReadFileMapped(path)
			if err == nil {
				m.Close()
				t.Fatalf("accepted: %+v", u)
			}
			if m != nil {
				t.Error("a refused file returned its mapping")
			}
			if err.Error() != want.Error() || errors.Is(err, ErrCorrupt) != errors.Is(want, ErrCorrupt) || errors.Is(err, ErrNonFinite) != errors.Is(want, ErrNonFinite) {
				t.Fatalf("mapped: %v\ncopied: %v", err, want)
			}
		})
	}
}

// A NaN or an infinity anywhere in a large mapped file, where the check
// runs on every core, is reported naming the file, the tensor and the
// first bad index, whatever the alignment of the data.
func TestMappedNonFiniteNamesFileTensorAndIndex(t *testing.T) {
	const n = 2*finiteChunk + 3 // several chunks and an odd tail
	clean := make([]float32, n)
	for i := range clean {
		clean[i] = float32(i%1000) - 500.5
	}
	bads := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), math.Float32frombits(0x7f800001)} // the last a signalling NaN
	for _, at := range []int{0, 1, finiteChunk - 1, finiteChunk, n - 2, n - 1} {
		for _, pad := range []int{0, 4} { // data at 8-byte and at 4-byte alignment
			bad := bads[at%len(bads)]
			dirty := append([]float32(nil), clean...)
			dirty[at] = bad
			data := handFile(`"__metadata__":{"daf.format":"talora-update/1"}`, pad, []storedSpec{
				{"fine/a", DtypeF32, []int{n}, f32Bytes(clean...)},
				{"fine/b", DtypeF32, []int{n}, f32Bytes(dirty...)},
			})
			path := writeTemp(t, "nan.safetensors", data)
			_, m, err := ReadFileMapped(path)
			want := fmt.Sprintf(`%s: tensor "fine/b": non-finite value at index %d: %v`, path, at, bad)
			if err == nil || !errors.Is(err, ErrNonFinite) || err.Error() != want {
				m.Close()
				t.Fatalf("bad value at %d, pad %d: got %v, want %s", at, pad, err, want)
			}
		}
	}
}

// allFinite agrees with a value-by-value check on any slice, at any
// alignment, wherever a NaN or an infinity hides.
func TestAllFiniteMatchesValueByValue(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		xs := make([]float32, rapid.IntRange(0, 70).Draw(rt, "n"))
		for i := range xs {
			xs[i] = math.Float32frombits(rapid.Uint32().Draw(rt, "bits"))
		}
		lo := rapid.IntRange(0, min(len(xs), 3)).Draw(rt, "lo") // odd lo: 4-byte-aligned start
		xs = xs[lo:]
		want := true
		for _, v := range xs {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				want = false
			}
		}
		if got := allFinite(xs); got != want {
			rt.Fatalf("allFinite(%v) = %v, want %v", xs, got, want)
		}
	})
}

// A file shorter than its header says is refused before any of its data
// is touched: no SIGBUS, the same ErrCorrupt as the copying reader's.
func TestMappedTruncatedFileIsCorrupt(t *testing.T) {
	u := New()
	big := NewTensor(1 << 16)
	for i := range big.Data {
		big.Data[i] = float32(i)
	}
	u.Set("fine", "w", big)
	full, err := Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	for _, keep := range []int{len(full) - 1, len(full) / 2, 4096, 100, 7} {
		path := writeTemp(t, "cut.safetensors", full[:keep])
		_, m, err := ReadFileMapped(path)
		if err == nil {
			m.Close()
			t.Fatalf("a file cut to %d of %d bytes was accepted", keep, len(full))
		}
		if _, want := Unmarshal(full[:keep], path); !errors.Is(err, ErrCorrupt) || err.Error() != want.Error() {
			t.Fatalf("cut to %d bytes: %v, want %v", keep, err, want)
		}
	}
}

// A PEFT adapter directory reads the same mapped as with ReadPEFT.
func TestMappedRealPEFTAdapter(t *testing.T) {
	needRealPEFT(t)
	want, _, err := ReadPEFT(realPEFT)
	if err != nil {
		t.Fatal(err)
	}
	got, m, err := ReadFileMapped(realPEFT)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	sameUpdate(t, got, want)
	if !m.Mapped() || !littleEndian {
		t.Skip("no mmap here, or a big-endian machine: read as a copy")
	}
	aliased := 0
	for _, k := range got.Keys(PlainGroup) {
		if aliases(m, got.Get(PlainGroup, k).Data) {
			aliased++
		}
	}
	if aliased == 0 {
		t.Error("no tensor of PEFT's F32 adapter aliases the mapping")
	}
}

// WriteFile streams the very bytes Marshal returns, also for tensors
// larger than the write buffer and for empty ones.
func TestWriteFileWritesWhatMarshalReturns(t *testing.T) {
	u := sampleUpdate()
	big := NewTensor(3<<18 + 1) // 3 MiB + 4 bytes
	for i := range big.Data {
		big.Data[i] = float32(i) / 7
	}
	u.Set("fine", "big.weight", big)
	u.Set("fine", "empty.weight", NewTensor(0))
	want, err := Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "w.safetensors")
	if err := WriteFile(path, u); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("WriteFile wrote %d bytes (%v), Marshal %d: they differ", len(got), err, len(want))
	}
}

func TestMappingCloseIsIdempotent(t *testing.T) {
	data, err := Marshal(sampleUpdate())
	if err != nil {
		t.Fatal(err)
	}
	_, m, err := ReadFileMapped(writeTemp(t, "s.safetensors", data))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		if m.Mapped() {
			t.Fatal("still mapped after Close")
		}
	}
	var none *Mapping
	if err := none.Close(); err != nil {
		t.Fatal(err)
	}
}
