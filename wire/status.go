package wire

import (
	"errors"
	"fmt"
	"io"
)

// Status is a receiver's answer to one message, so that a sender learns
// when and why a peer refused. Its String is the result label of
// daf_updates_received_total.
type Status uint8

const (
	StatusAccepted Status = iota
	// StatusDuplicate: already held (a gossip duplicate or a replay). Not
	// misbehaviour of the relay that sent it.
	StatusDuplicate
	StatusRejectedSize
	StatusRejectedMalformed
	StatusRejectedVersion
	StatusRejectedSignature
	StatusRejectedReplay // round outside the window, or equivocation
	StatusRejectedTier   // private tier, not a member of the scope, no key
	StatusRejectedByzantine
	StatusRejectedFederation // another federation id
	StatusRejectedHops       // hop count beyond max_hops
	StatusBusy               // receive queue full; try later or another peer
	statusCount
)

var statusNames = [...]string{
	"accepted", "duplicate", "rejected_size", "rejected_malformed", "rejected_version",
	"rejected_signature", "rejected_replay", "rejected_tier", "rejected_byzantine",
	"rejected_federation", "rejected_hops", "busy",
}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// StatusOf maps this package's errors to the status a receiver answers.
// Errors from other layers (Byzantine filters, membership) are mapped by
// their callers.
func StatusOf(err error) Status {
	switch {
	case err == nil:
		return StatusAccepted
	case errors.Is(err, ErrReplay):
		return StatusDuplicate
	case errors.Is(err, ErrTooLarge):
		return StatusRejectedSize
	case errors.Is(err, ErrUnknownVersion):
		return StatusRejectedVersion
	case errors.Is(err, ErrBadSignature):
		return StatusRejectedSignature
	case errors.Is(err, ErrRoundOutOfWindow), errors.Is(err, ErrEquivocation):
		return StatusRejectedReplay
	case errors.Is(err, ErrReplayGuardFull):
		return StatusBusy
	case errors.Is(err, ErrBadTier):
		return StatusRejectedTier
	default:
		return StatusRejectedMalformed
	}
}

// Reply is the frame a receiver sends back on /daf/delta/1 (and for a pushed
// key grant on /daf/keys/1): a status and a one-line reason for logs.
type Reply struct {
	Status Status
	Reason string
}

// MaxReasonLen bounds Reply.Reason; longer reasons are cut when written.
const MaxReasonLen = 255

// WriteReply writes r as one frame: status byte, reason length byte, reason.
func WriteReply(w io.Writer, r Reply) error {
	reason := r.Reason
	if len(reason) > MaxReasonLen {
		reason = reason[:MaxReasonLen]
	}
	b := append([]byte{byte(r.Status), byte(len(reason))}, reason...)
	return WriteFrame(w, b)
}

// ReadReply reads a reply frame.
func ReadReply(r io.Reader) (Reply, error) {
	b, err := ReadFrame(r, 2+MaxReasonLen)
	if err != nil {
		return Reply{}, err
	}
	return UnmarshalReply(b)
}

// UnmarshalReply decodes a reply frame's body.
func UnmarshalReply(b []byte) (Reply, error) {
	if len(b) < 2 || len(b) != 2+int(b[1]) {
		return Reply{}, fmt.Errorf("%w: reply of %d bytes", ErrMalformed, len(b))
	}
	if Status(b[0]) >= statusCount {
		return Reply{}, fmt.Errorf("%w: unknown reply status %d", ErrMalformed, b[0])
	}
	return Reply{Status: Status(b[0]), Reason: string(b[2:])}, nil
}
