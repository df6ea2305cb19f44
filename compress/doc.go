// Package compress is the seed's DeltaCompressor made safe: per-tensor codecs
// for update deltas and the codec of a whole update payload.
//
// # Tensor codecs
//
// EncodeTensor picks one of four self-describing codecs (header: codec byte,
// bits byte, element count), all little-endian:
//
//   - constant: every element equal (max == min); one float32, exact.
//   - sparse: more than SparsityThreshold of the elements are exactly zero;
//     ascending u32 indices of the non-zeros and their values, quantised like
//     dense values over the non-zeros' own min/max. Zeros stay exact.
//   - dense: min and max as float32, then each element quantised to
//     QuantizationBits (1..16) bits, packed LSB-first.
//   - raw: QuantizationBits = 32 keeps float32 values bit for bit.
//
// Quantisation uses L = 2^b − 1 steps of s = (max − min)/L. Round to nearest
// (the default) guarantees, for every element,
//
//	|x − x̂| ≤ s/2 + 2^-23 · max(|min|, |max|)
//
// (the second term is float32 rounding of the decoded value). Stochastic
// rounding picks the upper level with probability equal to the fractional
// position between levels, so E[x̂] = x (unbiased) with |x − x̂| < s + the
// same rounding term. NaN and ±Inf are refused before anything is encoded.
//
// Decoders trust nothing: element counts are checked against the caller's
// limit before allocation, byte lengths must match the header exactly, sparse
// indices must be strictly increasing and in range, pad bits must be zero and
// every decoded value is finite.
//
// # Error feedback
//
// ErrorFeedback carries each tensor's quantisation residual into the next
// round: it encodes x + r and keeps r' = (x + r) − decode(...), so the error
// does not accumulate over rounds (the sum of what was sent tracks the sum of
// the true deltas to within one round's error).
//
// # Update payload
//
// EncodeUpdate writes a whole adapter.Update (metadata, quality, every
// group's tensors with shapes, each tensor through EncodeTensor) in one
// deterministic byte string: maps are written in sorted order, and
// DecodeUpdate insists on strictly ascending names, which also rules out
// duplicates. This is the envelope payload before sealing.
//
// The package does no I/O and reads no clock; stochastic rounding draws from
// the *rand.Rand in Options, so a seeded source reproduces a run.
package compress
