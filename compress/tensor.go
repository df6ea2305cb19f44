package compress

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"
)

// Codec identifiers, the first byte of an encoded tensor.
const (
	codecDense    byte = 1
	codecSparse   byte = 2
	codecConstant byte = 3
	codecRaw      byte = 4
)

// headerLen: codec(1) bits(1) element count(4).
const headerLen = 6

// stats is what one pass over a tensor learns before choosing a codec.
type stats struct {
	min, max float32
	nonZero  int
}

// scan checks every value is finite and finds min, max and the number of
// non-zeros in one pass. It runs over every value of every update, so it is
// written for throughput: two values per load, no branches and no float
// comparisons. Min and max are taken on order-preserving integer keys
// of the bit patterns (integer min/max compile to conditional moves, float
// min/max to several instructions for their NaN and signed-zero rules). The
// same keys make the finiteness check free: every NaN and ±Inf has a key at
// or beyond the key of ±Inf, so only the final min and max need testing, and
// the index of a bad value is searched for only once one is known to exist.
func scan(data []float32) (stats, error) {
	if len(data) == 0 {
		return stats{}, nil
	}
	all := data
	var zeros uint64
	lo, hi := int32(math.MaxInt32), int32(math.MinInt32)
	// The bit patterns are read in place, two per aligned 64-bit load:
	// separate float loads and moves to integer registers (what
	// math.Float32bits compiles to) cost more than the rest of the loop
	// body. A value before the first 8-byte boundary and an odd last value
	// are taken one by one. Both halves of a word are treated alike, so the
	// byte order does not matter.
	if uintptr(unsafe.Pointer(unsafe.SliceData(data)))%8 != 0 {
		lo, hi, zeros = scanOne(math.Float32bits(data[0]), lo, hi, zeros)
		data = data[1:]
	}
	var pairs []uint64
	if len(data) >= 2 {
		pairs = unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(data))), len(data)/2)
	}
	for _, w := range pairs {
		b0, b1 := uint32(w), uint32(w>>32)
		zeros += zeroBit(b0) + zeroBit(b1)
		k0, k1 := orderKey(b0), orderKey(b1)
		lo = min(lo, min(k0, k1))
		hi = max(hi, max(k0, k1))
	}
	if len(data)%2 == 1 {
		lo, hi, zeros = scanOne(math.Float32bits(data[len(data)-1]), lo, hi, zeros)
	}
	if lo <= negInfKey || hi >= posInfKey {
		for i, v := range all {
			if k := orderKey(math.Float32bits(v)); k <= negInfKey || k >= posInfKey {
				return stats{}, fmt.Errorf("%w: element %d is %v", ErrNonFinite, i, v)
			}
		}
	}
	return stats{min: fromOrderKey(lo), max: fromOrderKey(hi), nonZero: len(all) - int(zeros)}, nil
}

// scanOne folds one value into scan's running min, max and zero count.
func scanOne(b uint32, lo, hi int32, zeros uint64) (int32, int32, uint64) {
	k := orderKey(b)
	return min(lo, k), max(hi, k), zeros + zeroBit(b)
}

// The keys of −Inf (bits 0xff800000) and +Inf (0x7f800000): a finite
// value's key lies strictly between, every NaN's key outside.
const (
	negInfKey int32 = -0x7f800001
	posInfKey int32 = 0x7f800000
)

// orderKey maps float32 bits to an int32 that sorts like the float (for
// non-NaN values): negative floats have their magnitude bits flipped so that
// larger magnitudes sort lower. fromOrderKey is its inverse.
func orderKey(b uint32) int32 { return int32(b) ^ int32(uint32(int32(b)>>31)>>1) }

func fromOrderKey(k int32) float32 {
	return math.Float32frombits(uint32(k ^ int32(uint32(k>>31)>>1)))
}

// zeroBit is 1 for ±0 and 0 for any other bit pattern, without a branch:
// shifting out the sign leaves 0 only for a zero, and 0 − 1 is the one
// value that sets the top bit of the 64-bit difference.
func zeroBit(bits uint32) uint64 { return (uint64(bits<<1) - 1) >> 63 }

// nonZeroRange is min and max over the non-zero values, needed only by the
// sparse codec.
func nonZeroRange(data []float32) (lo, hi float32) {
	lo, hi = float32(math.Inf(1)), float32(math.Inf(-1))
	for _, v := range data {
		if v != 0 {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	return lo, hi
}

// EncodeTensor encodes data with the codec the options and the data call for
// (see the package documentation). It refuses NaN and ±Inf.
func EncodeTensor(data []float32, opt Options) ([]byte, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	if uint64(len(data)) > math.MaxUint32 {
		return nil, fmt.Errorf("%w: %d elements in one tensor", ErrTooLarge, len(data))
	}
	st, err := scan(data)
	if err != nil {
		return nil, err
	}
	n := len(data)
	bits := opt.QuantizationBits
	switch {
	case n == 0:
		return header(codecRaw, RawBits, 0, 0), nil
	case st.min == st.max:
		b := header(codecConstant, 0, n, 4)
		return binary.LittleEndian.AppendUint32(b, math.Float32bits(st.min)), nil
	case float64(n-st.nonZero)/float64(n) > opt.SparsityThreshold:
		return encodeSparse(data, st, opt), nil
	case bits == RawBits:
		b := header(codecRaw, RawBits, n, 4*n)
		b = b[:headerLen+4*n]
		putRaw(b[headerLen:], data)
		return b, nil
	default:
		b := header(codecDense, bits, n, 8+packedLen(n, bits))
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(st.min))
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(st.max))
		b = b[:len(b)+packedLen(n, bits)]
		lo, inv := quantParams(st.min, st.max, bits)
		quantizeInto(b[headerLen+8:], data, bits, lo, inv, opt)
		return b, nil
	}
}

func header(codec byte, bits, n, bodyCap int) []byte {
	b := make([]byte, headerLen, headerLen+bodyCap)
	b[0] = codec
	b[1] = byte(bits)
	binary.LittleEndian.PutUint32(b[2:], uint32(n))
	return b
}

func encodeSparse(data []float32, st stats, opt Options) []byte {
	n, count, bits := len(data), st.nonZero, opt.QuantizationBits
	valueBytes := 4 * count
	if bits != RawBits {
		valueBytes = 8 + packedLen(count, bits)
	}
	b := header(codecSparse, bits, n, 4+4*count+valueBytes)
	b = binary.LittleEndian.AppendUint32(b, uint32(count))
	values := make([]float32, 0, count)
	for i, v := range data {
		if v != 0 {
			b = binary.LittleEndian.AppendUint32(b, uint32(i))
			values = append(values, v)
		}
	}
	if bits == RawBits {
		start := len(b)
		b = b[:start+4*count]
		putRaw(b[start:], values)
		return b
	}
	minNZ, maxNZ := nonZeroRange(values)
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(minNZ))
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(maxNZ))
	start := len(b)
	b = b[:start+packedLen(count, bits)]
	lo, inv := quantParams(minNZ, maxNZ, bits)
	quantizeInto(b[start:], values, bits, lo, inv, opt)
	return b
}

// DecodeTensor decodes one tensor of at most maxElems elements. Every length
// is checked before the output is allocated.
func DecodeTensor(b []byte, maxElems int) ([]float32, error) {
	if len(b) < headerLen {
		return nil, fmt.Errorf("%w: %d bytes is shorter than a tensor header", ErrCorrupt, len(b))
	}
	codec, bits := b[0], int(b[1])
	n := int(binary.LittleEndian.Uint32(b[2:]))
	if n > maxElems {
		return nil, fmt.Errorf("%w: tensor of %d elements, limit %d", ErrTooLarge, n, maxElems)
	}
	body := b[headerLen:]
	switch codec {
	case codecConstant:
		if bits != 0 || len(body) != 4 {
			return nil, fmt.Errorf("%w: constant tensor with bits %d and %d body bytes", ErrCorrupt, bits, len(body))
		}
		v := math.Float32frombits(binary.LittleEndian.Uint32(body))
		if err := checkFinite(v, "constant value"); err != nil {
			return nil, err
		}
		out := make([]float32, n)
		for i := range out {
			out[i] = v
		}
		return out, nil
	case codecRaw:
		if bits != RawBits || uint64(len(body)) != 4*uint64(n) {
			return nil, fmt.Errorf("%w: raw tensor of %d elements with bits %d and %d body bytes", ErrCorrupt, n, bits, len(body))
		}
		out := make([]float32, n)
		if err := decodeRaw(out, body); err != nil {
			return nil, err
		}
		return out, nil
	case codecDense:
		if bits < 1 || bits > 16 || uint64(len(body)) != 8+uint64(packedLen(n, bits)) {
			return nil, fmt.Errorf("%w: dense tensor of %d elements with bits %d and %d body bytes", ErrCorrupt, n, bits, len(body))
		}
		lo, scale, err := rangeOf(body, bits)
		if err != nil {
			return nil, err
		}
		out := make([]float32, n)
		if err := dequantizeInto(out, body[8:], bits, lo, scale); err != nil {
			return nil, err
		}
		return out, nil
	case codecSparse:
		return decodeSparse(body, n, bits)
	}
	return nil, fmt.Errorf("%w: unknown tensor codec %d", ErrCorrupt, codec)
}

func decodeSparse(body []byte, n, bits int) ([]float32, error) {
	if bits != RawBits && (bits < 1 || bits > 16) {
		return nil, fmt.Errorf("%w: sparse tensor with bits %d", ErrCorrupt, bits)
	}
	if len(body) < 4 {
		return nil, fmt.Errorf("%w: sparse tensor without a count", ErrCorrupt)
	}
	count := int(binary.LittleEndian.Uint32(body))
	if count > n {
		return nil, fmt.Errorf("%w: sparse tensor with %d non-zeros in %d elements", ErrCorrupt, count, n)
	}
	valueBytes := 4 * uint64(count)
	if bits != RawBits {
		valueBytes = 8 + uint64(packedLen(count, bits))
	}
	if uint64(len(body)) != 4+4*uint64(count)+valueBytes {
		return nil, fmt.Errorf("%w: sparse tensor of %d non-zeros at %d bits has %d body bytes, want %d", ErrCorrupt, count, bits, len(body), 4+4*uint64(count)+valueBytes)
	}
	idx := body[4 : 4+4*count]
	prev := -1
	for j := 0; j < count; j++ {
		i := int(binary.LittleEndian.Uint32(idx[4*j:]))
		if i >= n {
			return nil, fmt.Errorf("%w: sparse index %d out of range (tensor of %d elements)", ErrCorrupt, i, n)
		}
		if i <= prev {
			return nil, fmt.Errorf("%w: sparse index %d after %d (indices must be strictly increasing)", ErrCorrupt, i, prev)
		}
		prev = i
	}
	values := make([]float32, count)
	vb := body[4+4*count:]
	if bits == RawBits {
		if err := decodeRaw(values, vb); err != nil {
			return nil, err
		}
	} else {
		lo, scale, err := rangeOf(vb, bits)
		if err != nil {
			return nil, err
		}
		if err := dequantizeInto(values, vb[8:], bits, lo, scale); err != nil {
			return nil, err
		}
	}
	out := make([]float32, n)
	for j, v := range values {
		out[binary.LittleEndian.Uint32(idx[4*j:])] = v
	}
	return out, nil
}

func putRaw(dst []byte, vals []float32) {
	dst = dst[:4*len(vals)]
	for i, v := range vals {
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
	}
}

func decodeRaw(out []float32, body []byte) error {
	body = body[:4*len(out)]
	var ex uint32
	for i := range out {
		bits := binary.LittleEndian.Uint32(body[4*i:])
		ex = max(ex, bits&0x7f800000)
		out[i] = math.Float32frombits(bits)
	}
	if ex == 0x7f800000 {
		for i, v := range out {
			if math.Float32bits(v)&0x7f800000 == 0x7f800000 {
				return fmt.Errorf("%w: raw element %d is %v", ErrNonFinite, i, v)
			}
		}
	}
	return nil
}

// rangeOf reads and checks a quantised block's min and max.
func rangeOf(body []byte, bits int) (lo, scale float64, err error) {
	mn := math.Float32frombits(binary.LittleEndian.Uint32(body))
	mx := math.Float32frombits(binary.LittleEndian.Uint32(body[4:]))
	if err := checkFinite(mn, "min"); err != nil {
		return 0, 0, err
	}
	if err := checkFinite(mx, "max"); err != nil {
		return 0, 0, err
	}
	if mn > mx {
		return 0, 0, fmt.Errorf("%w: min %v above max %v", ErrCorrupt, mn, mx)
	}
	levels := float64(uint32(1)<<bits - 1)
	return float64(mn), (float64(mx) - float64(mn)) / levels, nil
}

func checkFinite(v float32, what string) error {
	if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
		return fmt.Errorf("%w: %s is %v", ErrNonFinite, what, v)
	}
	return nil
}
