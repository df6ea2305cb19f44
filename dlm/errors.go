package dlm

import "errors"

// Sentinel errors, wrapped with the path, tensor, group or flag at fault.
var (
	// ErrConfig marks a model or training configuration that cannot work
	// (zero sizes, heads not dividing the width, a non-finite rate).
	ErrConfig = errors.New("invalid model configuration")
	// ErrBaseFile marks a base model file whose bytes do not form a valid
	// model (bad header, missing or misshapen tensor, non-finite weight).
	ErrBaseFile = errors.New("corrupt base model file")
	// ErrBanks marks a TALoRA update that does not fit the base model
	// (missing group or tensor, wrong shape, non-finite value).
	ErrBanks = errors.New("banks do not fit the base model")
	// ErrData marks training or evaluation text that cannot be used
	// (missing, empty, binary, or too short for a held-out split).
	ErrData = errors.New("unusable text data")
)
