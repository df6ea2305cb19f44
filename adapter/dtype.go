package adapter

import (
	"encoding/binary"
	"math"
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
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		return out
	case DtypeF16:
		out := make([]float32, len(raw)/2)
		for i := range out {
			out[i] = HalfToFloat32(binary.LittleEndian.Uint16(raw[2*i:]))
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
