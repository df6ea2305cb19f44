package defense

import "errors"

// Sentinel errors; wrapped with the node, field or peer at fault.
var (
	// ErrInvalidConfig marks a Config or ReputationParams value that is out
	// of range, NaN or infinite.
	ErrInvalidConfig = errors.New("invalid defense config")
	// ErrBadUpdate marks an update the detector cannot judge at all: nil,
	// or without a source node.
	ErrBadUpdate = errors.New("bad update")
	// ErrCorruptStats marks per-node statistics loaded from a store that
	// cannot have been written by this package (wrong sketch length,
	// non-finite or negative values).
	ErrCorruptStats = errors.New("corrupt detector statistics")
	// ErrStore marks a failure of the StatsStore behind the detector.
	ErrStore = errors.New("detector statistics store")
	// ErrCorruptReputation marks a reputation snapshot that cannot be
	// restored (a score outside [0,1] or NaN).
	ErrCorruptReputation = errors.New("corrupt reputation snapshot")
)
