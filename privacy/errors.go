package privacy

import "errors"

// Sentinel errors; callers match them with errors.Is. Every error returned
// by this package wraps one of them with the parameter, tier or round at
// fault.
var (
	// ErrBadParameter marks a privacy parameter outside its domain
	// (ε ≤ 0, δ outside (0,1), a NaN, a sampling rate outside (0,1], ...).
	ErrBadParameter = errors.New("bad privacy parameter")
	// ErrClassicInvalid marks a request for the classic Gaussian mechanism
	// at ε ≥ 1, where its σ formula does not give (ε, δ)-DP.
	ErrClassicInvalid = errors.New("classic Gaussian mechanism not valid")
	// ErrBudgetExceeded marks a release refused because it would take the
	// node's composed ε over its lifetime budget.
	ErrBudgetExceeded = errors.New("privacy budget exceeded")
	// ErrCorruptLedger marks stored ledger bytes that cannot be trusted.
	ErrCorruptLedger = errors.New("corrupt privacy ledger")
	// ErrNoSensitivity marks an aggregation strategy whose L2 sensitivity
	// to one node is not bounded usefully, so noise on its output would
	// not be differential privacy.
	ErrNoSensitivity = errors.New("no usable sensitivity bound")
	// ErrScope marks an update whose tier or scope does not fit where it
	// is being sent or aggregated.
	ErrScope = errors.New("privacy scope violation")
	// ErrBadRule marks a malformed promotion rule.
	ErrBadRule = errors.New("bad promotion rule")
)
