package compress

import (
	"encoding/binary"
	"fmt"
)

// packedLen is the byte length of n values of bits bits, packed LSB-first.
func packedLen(n, bits int) int { return int((uint64(n)*uint64(bits) + 7) / 8) }

// quantParams returns the offset and the inverse step of a b-bit quantiser
// over [min, max]. A zero-width range (all values equal) maps everything to
// level 0, which decodes to min exactly.
func quantParams(mn, mx float32, bits int) (lo, inv float64) {
	lo = float64(mn)
	if width := float64(mx) - lo; width > 0 {
		inv = float64(uint32(1)<<bits-1) / width
	}
	return lo, inv
}

// quantizeInto writes each value's level into dst, packed LSB-first. Values
// lie in [lo, lo+width], so x = (v−lo)·inv lies in [0, L] and truncation of
// x+0.5 (or x+u, u uniform in [0,1)) is floor; the clamp only catches the
// last-bit rounding of x at the top.
func quantizeInto(dst []byte, vals []float32, bits int, lo, inv float64, opt Options) {
	top := uint32(1)<<bits - 1
	if !opt.Stochastic && bits == 8 {
		dst = dst[:len(vals)]
		for i, v := range vals {
			q := uint32((float64(v)-lo)*inv + 0.5)
			dst[i] = byte(min(q, top))
		}
		return
	}
	if !opt.Stochastic && bits == 16 {
		dst = dst[:2*len(vals)]
		for i, v := range vals {
			q := uint32((float64(v)-lo)*inv + 0.5)
			binary.LittleEndian.PutUint16(dst[2*i:], uint16(min(q, top)))
		}
		return
	}
	var acc uint64
	var have uint
	o := 0
	for _, v := range vals {
		x := (float64(v) - lo) * inv
		if opt.Stochastic {
			x += opt.Rand.Float64()
		} else {
			x += 0.5
		}
		acc |= uint64(min(uint32(x), top)) << have
		have += uint(bits)
		if have >= 32 {
			binary.LittleEndian.PutUint32(dst[o:], uint32(acc))
			o += 4
			acc >>= 32
			have -= 32
		}
	}
	for have > 0 {
		dst[o] = byte(acc)
		o++
		acc >>= 8
		have -= min(have, 8)
	}
}

// dequantizeInto decodes len(out) packed levels from src. The level-to-value
// map is a table when there are at least as many values as levels; both
// paths compute lo + q·scale in float64, so they agree bit for bit. Non-zero
// pad bits in the last byte are refused: an encoding has exactly one form.
func dequantizeInto(out []float32, src []byte, bits int, lo, scale float64) error {
	n := len(out)
	if rem := (n * bits) % 8; rem != 0 && src[len(src)-1]>>rem != 0 {
		return fmt.Errorf("%w: non-zero pad bits after the last value", ErrCorrupt)
	}
	levels := 1 << bits
	if n >= levels {
		table := make([]float32, levels)
		for q := range table {
			table[q] = float32(lo + float64(q)*scale)
		}
		switch bits {
		case 8:
			src = src[:n]
			for i, q := range src {
				out[i] = table[q]
			}
			return nil
		case 16:
			src = src[:2*n]
			for i := range out {
				out[i] = table[binary.LittleEndian.Uint16(src[2*i:])]
			}
			return nil
		}
		unpackTable(out, src, bits, table)
		return nil
	}
	unpackFormula(out, src, bits, lo, scale)
	return nil
}

// unpackTable and unpackFormula read LSB-first packed levels. They are two
// loops rather than one taking a function, since a call per value costs
// more than the rest of the loop.
func unpackTable(out []float32, src []byte, bits int, table []float32) {
	mask := uint64(1)<<bits - 1
	var acc uint64
	var have uint
	p := 0
	for i := range out {
		if have < uint(bits) {
			// Refill a whole 32-bit word when it is there; the byte loop
			// covers the tail.
			if p+4 <= len(src) {
				acc |= uint64(binary.LittleEndian.Uint32(src[p:])) << have
				p += 4
				have += 32
			} else {
				for have < uint(bits) {
					acc |= uint64(src[p]) << have
					p++
					have += 8
				}
			}
		}
		out[i] = table[acc&mask]
		acc >>= uint(bits)
		have -= uint(bits)
	}
}

func unpackFormula(out []float32, src []byte, bits int, lo, scale float64) {
	mask := uint64(1)<<bits - 1
	var acc uint64
	var have uint
	p := 0
	for i := range out {
		for have < uint(bits) {
			acc |= uint64(src[p]) << have
			p++
			have += 8
		}
		out[i] = float32(lo + float64(acc&mask)*scale)
		acc >>= uint(bits)
		have -= uint(bits)
	}
}
