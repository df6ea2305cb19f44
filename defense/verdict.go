package defense

import "fmt"

// Outcome is the detector's judgement of one update.
type Outcome int

const (
	// Accepted: aggregate with full weight; the node's statistics learned
	// from it.
	Accepted Outcome = iota
	// Suspicious: aggregate with Verdict.Weight < 1; statistics untouched,
	// no reputation reward (doc.go, "Suspicious").
	Suspicious
	// Rejected: drop the update; statistics untouched; penalize the source.
	Rejected
)

func (o Outcome) String() string {
	switch o {
	case Accepted:
		return "accepted"
	case Suspicious:
		return "suspicious"
	case Rejected:
		return "rejected"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// Reason says which check produced a Suspicious or Rejected outcome.
type Reason int

const (
	// NoReason accompanies Accepted.
	NoReason Reason = iota
	// ExcessiveMagnitude: Check 1, the joint norm is above
	// MaxMagnitudeMultiplier × the reference norm.
	ExcessiveMagnitude
	// DirectionAnomaly: Check 2, too many direction flips.
	DirectionAnomaly
	// GroupNormOutOfRange: Check 3, a timestep group's norm is outside the
	// range of the other nodes' norms for that group.
	GroupNormOutOfRange
	// NonFinite: a tensor holds NaN or ±Inf.
	NonFinite
	// EmptyUpdate: the update carries no values at all.
	EmptyUpdate
)

func (r Reason) String() string {
	switch r {
	case NoReason:
		return "none"
	case ExcessiveMagnitude:
		return "excessive_magnitude"
	case DirectionAnomaly:
		return "direction_anomaly"
	case GroupNormOutOfRange:
		return "group_norm_out_of_range"
	case NonFinite:
		return "non_finite"
	case EmptyUpdate:
		return "empty_update"
	}
	return fmt.Sprintf("reason(%d)", int(r))
}

// Verdict is the result of Detector.Validate.
type Verdict struct {
	Outcome Outcome
	Reason  Reason
	// Detail names the measured value and the limit it broke, for logs.
	Detail string
	// Weight multiplies the update's aggregation weight: 1 when Accepted,
	// in (0, SuspiciousWeight] when Suspicious, 0 when Rejected.
	Weight float64
}

func (v Verdict) String() string {
	if v.Outcome == Accepted {
		return "accepted"
	}
	return fmt.Sprintf("%s (%s): %s", v.Outcome, v.Reason, v.Detail)
}

func accepted() Verdict { return Verdict{Outcome: Accepted, Reason: NoReason, Weight: 1} }

func rejected(r Reason, format string, args ...any) Verdict {
	return Verdict{Outcome: Rejected, Reason: r, Detail: fmt.Sprintf(format, args...), Weight: 0}
}
