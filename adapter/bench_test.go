package adapter

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// benchFile builds a file of n elements per tensor in the given dtype
// (8 tensors), for comparing the reader against a plain memory copy of the
// same bytes.
func benchFile(dtype string, n int) []byte {
	size := int(dtypeSize[dtype])
	var hdr strings.Builder
	hdr.WriteString(`{"__metadata__":{"daf.format":"talora-update/1"}`)
	for i := range 8 {
		fmt.Fprintf(&hdr, `,"coarse/t%d":{"dtype":"%s","shape":[%d],"data_offsets":[%d,%d]}`, i, dtype, n, i*n*size, (i+1)*n*size)
	}
	hdr.WriteString("}")
	for hdr.Len()%8 != 0 { // aligned data, as every writer of this package makes
		hdr.WriteString(" ")
	}
	data := make([]byte, 8*n*size)
	for i := 0; i < len(data); i += 2 {
		binary.LittleEndian.PutUint16(data[i:], 0x3c00) // 1.0 in F16; a small finite F32/BF16 pattern too
	}
	return rawFile(hdr.String(), data)
}

// BenchmarkUnmarshal reads 8 tensors of 128Ki elements (4 MiB as F32) per
// dtype; BenchmarkCopyBaseline copies the same number of bytes, the floor
// any reader that produces float32 has to pay.
func BenchmarkUnmarshal(b *testing.B) {
	for _, dtype := range []string{DtypeF32, DtypeF16, DtypeBF16} {
		data := benchFile(dtype, 128<<10)
		b.Run(dtype, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := Unmarshal(data, "bench.safetensors"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkMarshal(b *testing.B) {
	u, err := Unmarshal(benchFile(DtypeF32, 128<<10), "bench.safetensors")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(u.NumParams() * 4))
	for b.Loop() {
		if _, err := Marshal(u); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCopyBaseline(b *testing.B) {
	src := make([]byte, 8*(128<<10)*4)
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		dst := make([]byte, len(src))
		copy(dst, src)
	}
}

// BenchmarkReadFile compares the copying reader with the mapped one on a
// 32 MiB F32 file in the page cache: the mapped read costs page-table
// entries and one finite check, the copy also a decoded copy of every value.
func BenchmarkReadFile(b *testing.B) {
	path := filepath.Join(b.TempDir(), "bench.safetensors")
	if err := os.WriteFile(path, benchFile(DtypeF32, 1<<20), 0o644); err != nil {
		b.Fatal(err)
	}
	b.Run("copied", func(b *testing.B) {
		b.SetBytes(8 << 22)
		for b.Loop() {
			if _, err := ReadFile(path); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("mapped", func(b *testing.B) {
		b.SetBytes(8 << 22)
		for b.Loop() {
			_, m, err := ReadFileMapped(path)
			if err != nil {
				b.Fatal(err)
			}
			m.Close()
		}
	})
}
