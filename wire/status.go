package wire

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// Status is a receiver's answer to one message, so that a sender learns
// when and why a peer refused. Its String is the result label of
// daf_updates_received_total.
// Accepted is 0; every other status is a refusal.
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
	// StatusRefused: refused for a reason outside this list (the reason
	// text says which), e.g. by a peer that reports only accept/refuse.
	StatusRefused
	statusCount
)

var statusNames = [...]string{
	"accepted", "duplicate", "rejected_size", "rejected_malformed", "rejected_version",
	"rejected_signature", "rejected_replay", "rejected_tier", "rejected_byzantine",
	"rejected_federation", "rejected_hops", "busy", "refused",
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

// Reply is what a receiver answers on every DAF stream: accepted, or
// refused with a one-line reason. On the wire it is
//
//	verdict u8 (0 accepted, 1 refused) ‖ u16 reason length ‖ reason
//
// (not length-framed; an accept has an empty reason). A refusal's reason
// starts with the status label and a colon, e.g. "rejected_signature: …",
// so a sender can count refusals by status without a second code space.
type Reply struct {
	Status Status
	Reason string
}

// MaxReasonLen bounds a refusal reason in bytes; longer reasons are cut.
const MaxReasonLen = 1024

const (
	verdictAccepted = 0
	verdictRefused  = 1
)

// Marshal encodes the reply.
func (r Reply) Marshal() []byte {
	if r.Status == StatusAccepted {
		return []byte{verdictAccepted, 0, 0}
	}
	reason := r.Status.String()
	if r.Reason != "" {
		reason += ": " + r.Reason
	}
	if len(reason) > MaxReasonLen {
		reason = reason[:MaxReasonLen]
	}
	b := []byte{verdictRefused, byte(len(reason) >> 8), byte(len(reason))}
	return append(b, reason...)
}

// WriteReply writes r.
func WriteReply(w io.Writer, r Reply) error {
	_, err := w.Write(r.Marshal())
	return err
}

// ReadReply reads a reply. A refusal whose reason does not start with a
// known status label is StatusRefused with the whole reason.
func ReadReply(r io.Reader) (Reply, error) {
	var hdr [3]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return Reply{}, fmt.Errorf("%w: reading reply: %w", ErrMalformed, err)
	}
	n := int(hdr[1])<<8 | int(hdr[2])
	if n > MaxReasonLen {
		return Reply{}, fmt.Errorf("%w: reply reason of %d bytes, limit %d", ErrMalformed, n, MaxReasonLen)
	}
	buf := make([]byte, 3+n)
	copy(buf, hdr[:])
	if _, err := io.ReadFull(r, buf[3:]); err != nil {
		return Reply{}, fmt.Errorf("%w: reply reason cut short: %w", ErrMalformed, err)
	}
	return UnmarshalReply(buf)
}

// UnmarshalReply decodes a complete reply.
func UnmarshalReply(b []byte) (Reply, error) {
	if len(b) < 3 || len(b) != 3+(int(b[1])<<8|int(b[2])) || len(b)-3 > MaxReasonLen {
		return Reply{}, fmt.Errorf("%w: reply of %d bytes", ErrMalformed, len(b))
	}
	reason := string(b[3:])
	switch b[0] {
	case verdictAccepted:
		if reason != "" {
			return Reply{}, fmt.Errorf("%w: accepted reply with a %d-byte reason", ErrMalformed, len(reason))
		}
		return Reply{Status: StatusAccepted}, nil
	case verdictRefused:
		label, detail, _ := strings.Cut(reason, ": ")
		for s := StatusAccepted + 1; s < statusCount; s++ {
			if s.String() == label {
				return Reply{Status: s, Reason: detail}, nil
			}
		}
		return Reply{Status: StatusRefused, Reason: reason}, nil
	}
	return Reply{}, fmt.Errorf("%w: unknown verdict byte %d", ErrMalformed, b[0])
}
