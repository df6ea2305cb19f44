package adapter

import "errors"

// Sentinel errors; wrapped with the file and tensor at fault.
var (
	// ErrNonFinite marks a tensor holding NaN or ±Inf.
	ErrNonFinite = errors.New("non-finite value")
	// ErrCorrupt marks a file whose bytes do not form a valid update.
	ErrCorrupt = errors.New("corrupt update file")
)
