package gossip

import (
	"errors"
	"maps"
)

// Result labels, as exported by the daemon in
// daf_updates_received_total{result}. "late" and "round_full" deltas were
// valid: they are relayed but not aggregated here.
const (
	ResultAccepted          = "accepted"
	ResultDuplicate         = "duplicate"
	ResultLate              = "late"
	ResultRoundFull         = "round_full"
	ResultRejectedSignature = "rejected_signature"
	ResultRejectedReplay    = "rejected_replay"
	ResultRejectedEquivocal = "rejected_equivocation"
	ResultRejectedByzantine = "rejected_byzantine"
	ResultRejectedTier      = "rejected_tier"
	ResultRejectedSize      = "rejected_size"
	ResultRejectedMalformed = "rejected_malformed"
	ResultRejectedSeal      = "rejected_seal"
	ResultRejectedHops      = "rejected_hops"
	ResultRejectedDisabled  = "rejected_disabled"
)

// ResultOf maps an error returned by the receive path to its result label.
func ResultOf(err error) string {
	switch {
	case err == nil:
		return ResultAccepted
	case errors.Is(err, ErrDuplicate):
		return ResultDuplicate
	case errors.Is(err, ErrLate):
		return ResultLate
	case errors.Is(err, ErrRoundFull):
		return ResultRoundFull
	case errors.Is(err, ErrSignature):
		return ResultRejectedSignature
	case errors.Is(err, ErrReplay):
		return ResultRejectedReplay
	case errors.Is(err, ErrEquivocation):
		return ResultRejectedEquivocal
	case errors.Is(err, ErrByzantine):
		return ResultRejectedByzantine
	case errors.Is(err, ErrNotMember):
		return ResultRejectedTier
	case errors.Is(err, ErrTooLarge):
		return ResultRejectedSize
	case errors.Is(err, ErrSeal):
		return ResultRejectedSeal
	case errors.Is(err, ErrHops):
		return ResultRejectedHops
	case errors.Is(err, ErrDisabled):
		return ResultRejectedDisabled
	case errors.Is(err, ErrBusy):
		return ResultBusy
	}
	return ResultRejectedMalformed
}

// senderAtFault reports whether the peer on the connection is to blame for
// a rejection, so its reputation drops by PenaltyBad. A relay is expected to
// verify before forwarding, so a forged, malformed, oversize or out-of-scope
// delta is its fault. Duplicates, late and full rounds are normal in gossip.
// A Byzantine verdict depends on each node's own statistics, so an honest
// relay may pass what we refuse: only the source itself is blamed for it.
func senderAtFault(err error, from, source PeerID) bool {
	switch ResultOf(err) {
	case ResultRejectedSignature, ResultRejectedMalformed, ResultRejectedSize,
		ResultRejectedTier, ResultRejectedSeal, ResultRejectedHops, ResultRejectedEquivocal:
		return true
	case ResultRejectedByzantine:
		return from == source
	}
	return false
}

// Counters are the engine's running totals since it was created, the
// numbers behind the daemon's Prometheus counters.
type Counters struct {
	Received   map[string]uint64 // by result label
	DeltasSent uint64            // offers sent
	// Declined counts offers the peer refused as held: no payload was
	// sent, and the release was offered to another peer instead.
	Declined      uint64
	SendFailures  uint64
	BytesSent     uint64
	BytesReceived uint64
}

func newCounters() Counters { return Counters{Received: map[string]uint64{}} }

// Clone returns an independent copy.
func (c Counters) Clone() Counters {
	c.Received = maps.Clone(c.Received)
	if c.Received == nil {
		c.Received = map[string]uint64{}
	}
	return c
}
