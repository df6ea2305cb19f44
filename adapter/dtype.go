package adapter

import (
	"encoding/binary"
	"math"
	"sync"
	"unsafe"
)

// Dtypes an update file may store. Every one widens exactly to float32;
// files are always written as F32.
const (
	DtypeF32  = "F32"
	DtypeF16  = "F16"
	DtypeBF16 = "BF16"
)

// dtypeSize is the byte width of each readable dtype.
var dtypeSize = map[string]int64{DtypeF32: 4, DtypeF16: 2, DtypeBF16: 2}

// otherDtypes are safetensors dtypes we recognise but do not read, so the
// error can say "not supported" rather than "unknown".
var otherDtypes = map[string]bool{
	"F64": true, "F8_E4M3": true, "F8_E5M2": true, "BOOL": true,
	"U8": true, "I8": true, "U16": true, "I16": true, "U32": true, "I32": true, "U64": true, "I64": true,
}

// HalfToFloat32 widens an IEEE 754 binary16 value exactly: every binary16
// value, subnormals included, is a float32 value. NaN payloads (and the
// quiet bit) carry over; the sign of zeros and infinities is kept.
func HalfToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch exp {
	case 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		// Subnormal: mant·2⁻²⁴. Shift the leading one up to the implicit
		// bit position, lowering the exponent once per shift.
		e := uint32(127 - 15 + 1)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
	case 0x1f:
		return math.Float32frombits(sign | 0xff<<23 | mant<<13)
	default:
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	}
}

// halfTableMin is the tensor size from which F16 values are widened by
// looking them up: one load per value instead of HalfToFloat32's branches,
// about four times faster, once the 256 KiB table is built.
const halfTableMin = 4096

// halfTable maps every binary16 bit pattern to its float32, built once
// from HalfToFloat32 (so it is exactly as exact).
var halfTable = sync.OnceValue(func() *[1 << 16]float32 {
	var t [1 << 16]float32
	for h := range t {
		t[h] = HalfToFloat32(uint16(h))
	}
	return &t
})

// BFloat16ToFloat32 widens a bfloat16 value exactly: bfloat16 is the top
// half of a float32.
func BFloat16ToFloat32(b uint16) float32 {
	return math.Float32frombits(uint32(b) << 16)
}

// decodeValues widens raw little-endian bytes of dtype into float32s. The
// caller has checked that len(raw) is a multiple of the dtype's size.
func decodeValues(dtype string, raw []byte) []float32 {
	switch dtype {
	case DtypeF32:
		out := make([]float32, len(raw)/4)
		if littleEndian {
			// The file's bytes are this machine's float32s: one memory
			// copy, whatever the alignment of raw.
			copy(float32Bytes(out), raw)
			return out
		}
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		return out
	case DtypeF16:
		out := make([]float32, len(raw)/2)
		if len(out) < halfTableMin {
			for i := range out {
				out[i] = HalfToFloat32(binary.LittleEndian.Uint16(raw[2*i:]))
			}
			return out
		}
		table := halfTable()
		for i := range out {
			out[i] = table[binary.LittleEndian.Uint16(raw[2*i:])]
		}
		return out
	case DtypeBF16:
		out := make([]float32, len(raw)/2)
		for i := range out {
			out[i] = BFloat16ToFloat32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
		return out
	}
	return nil
}

// littleEndian is true on machines whose float32s are laid out as
// safetensors stores them, the only ones where file bytes can be used as
// float32 values without conversion.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// float32Bytes views float32 values as their bytes in memory, without
// copying.
func float32Bytes(xs []float32) []byte {
	if len(xs) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&xs[0])), 4*len(xs))
}

// aliasF32 returns raw itself as float32 values, without copying, when it
// holds F32 data that this machine can use as it is: a little-endian host
// and a 4-byte-aligned address (the safetensors writer pads the header to
// 8 bytes, but nothing obliges other writers to). Otherwise it returns nil
// and the caller decodes a copy. An empty tensor is never aliased, so an
// empty non-nil slice stays what it always was.
func aliasF32(dtype string, raw []byte) []float32 {
	if dtype != DtypeF32 || !littleEndian || len(raw) == 0 || uintptr(unsafe.Pointer(&raw[0]))%4 != 0 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&raw[0])), len(raw)/4)
}
