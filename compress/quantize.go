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
// last-bit rounding of x at the top. Other widths than 8 and 16 bits go
// through a block of levels: one tight loop computes them, another packs
// them, so neither carries the other's branches.
func quantizeInto(dst []byte, vals []float32, bits int, lo, inv float64, opt Options) {
	top := uint32(1)<<bits - 1
	if !opt.Stochastic && bits == 8 {
		quantize8(dst[:len(vals)], vals, lo, inv)
		return
	}
	if !opt.Stochastic && bits == 16 {
		quantize16(dst[:2*len(vals)], vals, lo, inv)
		return
	}
	var levels [256]uint32
	w := bitWriter{dst: dst, bits: uint(bits)}
	for len(vals) > 0 {
		block := vals[:min(len(vals), len(levels))]
		vals = vals[len(block):]
		q := levels[:len(block)]
		if opt.Stochastic {
			for i, v := range block {
				q[i] = min(uint32((float64(v)-lo)*inv+opt.Rand.Float64()), top)
			}
		} else {
			for i, v := range block {
				q[i] = nearest(v, lo, inv, top)
			}
		}
		w.put(q)
	}
	w.flush()
}

// bitWriter packs levels of bits bits LSB-first into dst, a 32-bit word at
// a time.
type bitWriter struct {
	dst  []byte
	o    int
	acc  uint64
	have uint
	bits uint
}

func (w *bitWriter) put(levels []uint32) {
	acc, have, o, bits := w.acc, w.have, w.o, w.bits
	for _, q := range levels {
		acc |= uint64(q) << have
		have += bits
		if have >= 32 {
			binary.LittleEndian.PutUint32(w.dst[o:], uint32(acc))
			o += 4
			acc >>= 32
			have -= 32
		}
	}
	w.acc, w.have, w.o = acc, have, o
}

// flush writes the last partial word's bytes; the pad bits above the last
// level are zero.
func (w *bitWriter) flush() {
	for w.have > 0 {
		w.dst[w.o] = byte(w.acc)
		w.o++
		w.acc >>= 8
		w.have -= min(w.have, 8)
	}
}

// nearest is the round-to-nearest level of v, clamped to top. The float64
// arithmetic is that of the reference quantiser, so levels agree with it
// except at exact ties.
func nearest(v float32, lo, inv float64, top uint32) uint32 {
	return min(uint32((float64(v)-lo)*inv+0.5), top)
}

// quantize8 and quantize16 are the common widths, four values per iteration
// with the bounds checks hoisted out of the loop.
func quantize8(dst []byte, vals []float32, lo, inv float64) {
	dst = dst[:len(vals)]
	i := 0
	for ; i+4 <= len(vals); i += 4 {
		v, d := vals[i:i+4:i+4], dst[i:i+4:i+4]
		d[0] = byte(nearest(v[0], lo, inv, 255))
		d[1] = byte(nearest(v[1], lo, inv, 255))
		d[2] = byte(nearest(v[2], lo, inv, 255))
		d[3] = byte(nearest(v[3], lo, inv, 255))
	}
	for ; i < len(vals); i++ {
		dst[i] = byte(nearest(vals[i], lo, inv, 255))
	}
}

func quantize16(dst []byte, vals []float32, lo, inv float64) {
	dst = dst[:2*len(vals)]
	i := 0
	for ; i+4 <= len(vals); i += 4 {
		v, d := vals[i:i+4:i+4], dst[2*i:2*i+8:2*i+8]
		q01 := nearest(v[0], lo, inv, 0xffff) | nearest(v[1], lo, inv, 0xffff)<<16
		q23 := nearest(v[2], lo, inv, 0xffff) | nearest(v[3], lo, inv, 0xffff)<<16
		binary.LittleEndian.PutUint64(d, uint64(q01)|uint64(q23)<<32)
	}
	for ; i < len(vals); i++ {
		binary.LittleEndian.PutUint16(dst[2*i:], uint16(nearest(vals[i], lo, inv, 0xffff)))
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
			dequantize8(out, src[:n], (*[256]float32)(table))
			return nil
		case 16:
			dequantize16(out, src[:2*n], (*[1 << 16]float32)(table))
			return nil
		}
		unpackTable(out, src, bits, table)
		return nil
	}
	unpackFormula(out, src, bits, lo, scale)
	return nil
}

// dequantize8 and dequantize16 look levels up four at a time; the table
// is an array, so the lookups need no bounds checks.
func dequantize8(out []float32, src []byte, table *[256]float32) {
	src = src[:len(out)]
	i := 0
	for ; i+4 <= len(out); i += 4 {
		s, o := src[i:i+4:i+4], out[i:i+4:i+4]
		o[0], o[1], o[2], o[3] = table[s[0]], table[s[1]], table[s[2]], table[s[3]]
	}
	for ; i < len(out); i++ {
		out[i] = table[src[i]]
	}
}

func dequantize16(out []float32, src []byte, table *[1 << 16]float32) {
	src = src[:2*len(out)]
	i := 0
	for ; i+4 <= len(out); i += 4 {
		w, o := binary.LittleEndian.Uint64(src[2*i:]), out[i:i+4:i+4]
		o[0], o[1], o[2], o[3] = table[uint16(w)], table[uint16(w>>16)], table[uint16(w>>32)], table[uint16(w>>48)]
	}
	for ; i < len(out); i++ {
		out[i] = table[binary.LittleEndian.Uint16(src[2*i:])]
	}
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
