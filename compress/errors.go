package compress

import "errors"

// Sentinel errors, wrapped with the tensor (group/key) or field at fault.
var (
	// ErrNonFinite: a NaN or ±Inf was handed to the encoder, or decoded.
	ErrNonFinite = errors.New("non-finite value")
	// ErrBadOptions: quantisation bits, sparsity threshold or random source
	// are out of range.
	ErrBadOptions = errors.New("bad compression options")
	// ErrCorrupt: bytes that are not a valid encoding.
	ErrCorrupt = errors.New("corrupt compressed data")
	// ErrTooLarge: a count or length exceeds the decoder's limits.
	ErrTooLarge = errors.New("compressed data exceeds limits")
	// ErrShape: a tensor's shape does not match its element count.
	ErrShape = errors.New("tensor shape does not match its data")
)
