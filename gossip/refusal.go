package gossip

import (
	"errors"
	"strings"
)

// ErrBusy: the receiver could not take the message now (a full queue, its
// inbound budget, shutting down); another peer or a later try may do.
var ErrBusy = errors.New("busy")

// ResultBusy and ResultRefused are the labels of a refusal for want of
// room, and of one whose reason carries no known label.
const (
	ResultBusy    = "busy"
	ResultRefused = "refused"
)

// Refusal is a peer's refusal as a Transport reports it: errors.Is(err,
// ErrRefused) holds, and errors.As finds the Refusal. Label is the result
// label the reason starts with (docs/PROTOCOL.md §6), so a sender can act
// on why: an offer refused as a duplicate means the peer holds the
// release, and another peer should be offered it instead.
type Refusal struct {
	Label  string
	Reason string
}

func (r *Refusal) Error() string { return ErrRefused.Error() + ": " + r.Reason }

// Unwrap makes errors.Is(r, ErrRefused) hold.
func (r *Refusal) Unwrap() error { return ErrRefused }

// RefusalReason is the reason a receiver sends back for a handler's error:
// its result label, ": ", the error.
func RefusalReason(err error) string { return ResultOf(err) + ": " + err.Error() }

// ParseRefusal reads a refusal's reason as received: the label it starts
// with, or ResultRefused when it starts with none this node knows.
func ParseRefusal(reason string) *Refusal {
	r := &Refusal{Label: ResultRefused, Reason: reason}
	if label, _, ok := strings.Cut(reason, ": "); ok && knownLabels[label] {
		r.Label = label
	}
	return r
}

var knownLabels = map[string]bool{
	ResultAccepted: true, ResultDuplicate: true, ResultLate: true, ResultRoundFull: true,
	ResultRejectedSignature: true, ResultRejectedReplay: true, ResultRejectedEquivocal: true,
	ResultRejectedByzantine: true, ResultRejectedTier: true, ResultRejectedSize: true,
	ResultRejectedMalformed: true, ResultRejectedSeal: true, ResultRejectedHops: true,
	ResultRejectedDisabled: true, ResultBusy: true, ResultRefused: true,
}
