package adapter

import (
	"encoding/binary"
	"math"
	"testing"
)

// halfReference evaluates a binary16 bit pattern from its definition in
// float64, the slow and obvious way.
func halfReference(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	mant := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * math.Ldexp(mant, -24)
	case 31:
		if mant == 0 {
			return sign * math.Inf(1)
		}
		return math.NaN()
	}
	return sign * math.Ldexp(1+mant/1024, exp-15)
}

func TestHalfExhaustive(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		got, want := HalfToFloat32(h), halfReference(h)
		if math.IsNaN(want) {
			if !math.IsNaN(float64(got)) {
				t.Fatalf("%#04x: got %v, want NaN", h, got)
			}
			continue
		}
		if float64(got) != want || math.Signbit(float64(got)) != (h&0x8000 != 0) {
			t.Fatalf("%#04x: got %v, want %v", h, got, want)
		}
	}
}

func TestHalfKnownBits(t *testing.T) {
	cases := []struct {
		h    uint16
		bits uint32
	}{
		{0x0000, 0x00000000}, // +0
		{0x8000, 0x80000000}, // −0
		{0x0001, 0x33800000}, // smallest subnormal 2⁻²⁴
		{0x03ff, 0x387fc000}, // largest subnormal
		{0x8001, 0xb3800000}, // −2⁻²⁴
		{0x0400, 0x38800000}, // smallest normal 2⁻¹⁴
		{0x3c00, 0x3f800000}, // 1
		{0xc000, 0xc0000000}, // −2
		{0x7bff, 0x477fe000}, // 65504, the largest finite
		{0x7c00, 0x7f800000}, // +Inf
		{0xfc00, 0xff800000}, // −Inf
		{0x7e00, 0x7fc00000}, // quiet NaN
		{0x7d00, 0x7fa00000}, // signalling NaN keeps its payload
		{0xfe01, 0xffc02000}, // negative NaN with payload
	}
	for _, c := range cases {
		if got := math.Float32bits(HalfToFloat32(c.h)); got != c.bits {
			t.Errorf("F16 %#04x: got %#08x, want %#08x", c.h, got, c.bits)
		}
	}
}

func TestBFloat16KnownBits(t *testing.T) {
	cases := []struct {
		b    uint16
		want float32
		bits uint32
	}{
		{0x0000, 0, 0x00000000},
		{0x8000, float32(math.Copysign(0, -1)), 0x80000000},
		{0x3f80, 1, 0x3f800000},
		{0xc040, -3, 0xc0400000},
		{0x0001, float32(math.Ldexp(1, -133)), 0x00010000}, // smallest subnormal
		{0x007f, float32(math.Ldexp(127, -133)), 0x007f0000},
		{0x7f7f, float32(math.Ldexp(255, 127-7)), 0x7f7f0000}, // largest finite
		{0x7f80, float32(math.Inf(1)), 0x7f800000},
		{0xff80, float32(math.Inf(-1)), 0xff800000},
	}
	for _, c := range cases {
		got := BFloat16ToFloat32(c.b)
		if math.Float32bits(got) != c.bits || got != c.want {
			t.Errorf("BF16 %#04x: got %v (%#08x), want %v (%#08x)", c.b, got, math.Float32bits(got), c.want, c.bits)
		}
	}
	if got := BFloat16ToFloat32(0x7fc1); !math.IsNaN(float64(got)) || math.Float32bits(got) != 0x7fc10000 {
		t.Errorf("BF16 NaN: got %#08x", math.Float32bits(got))
	}
}

// The lookup table of large F16 tensors holds, bit for bit, what
// HalfToFloat32 gives for every pattern (NaN payloads included), and a
// tensor read through it equals one read value by value.
func TestHalfTableIsHalfToFloat32(t *testing.T) {
	table := halfTable()
	raw := make([]byte, 0, 2<<16)
	for i := range 1 << 16 {
		if math.Float32bits(table[i]) != math.Float32bits(HalfToFloat32(uint16(i))) {
			t.Fatalf("%#04x: table %v, HalfToFloat32 %v", i, table[i], HalfToFloat32(uint16(i)))
		}
		raw = binary.LittleEndian.AppendUint16(raw, uint16(i))
	}
	got := decodeValues(DtypeF16, raw)
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(HalfToFloat32(uint16(i))) {
			t.Fatalf("decoded %#04x: %v", i, got[i])
		}
	}
}
