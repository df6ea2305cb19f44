package aggregate

import "errors"

// Sentinel errors. Every error returned by this package wraps one of these
// (or adapter.ErrNonFinite) together with the node, group and tensor at fault.
var (
	// ErrNoUpdates: nothing to aggregate.
	ErrNoUpdates = errors.New("no updates to aggregate")
	// ErrUnknownStrategy: a strategy name that is not one of Strategies.
	ErrUnknownStrategy = errors.New("unknown aggregation strategy")
	// ErrBadOption: an option out of range (trim fraction, temperature, rank...).
	ErrBadOption = errors.New("bad aggregation option")
	// ErrZeroWeights: every weight is zero (for example all sample counts are 0),
	// so no average exists.
	ErrZeroWeights = errors.New("all aggregation weights are zero")
	// ErrTrimAll: the trimmed mean would discard every value.
	ErrTrimAll = errors.New("trimmed mean would trim every update")
	// ErrTooFewForKrum: Krum needs n > 2f+2 updates for its guarantee.
	ErrTooFewForKrum = errors.New("too few updates for krum")
	// ErrMismatch: updates disagree on kind, tensor keys or shapes.
	ErrMismatch = errors.New("updates do not match")
	// ErrNeedFactors: a product mode (exact, svd) was asked of updates that
	// are not complete LoRA factors (daf.kind=delta without a base), or a
	// LoRA module misses one of its halves.
	ErrNeedFactors = errors.New("LoRA product mode needs complete factors")
	// ErrInsufficientNodes: the DAF engine has fewer updates for a group than
	// min_nodes_for_aggregation.
	ErrInsufficientNodes = errors.New("insufficient nodes for aggregation")
	// ErrDuplicateNode: the DAF engine got two updates from the same node.
	ErrDuplicateNode = errors.New("duplicate node in one round")
)
