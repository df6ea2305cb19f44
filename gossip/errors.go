package gossip

import "errors"

// Why a delta was not taken. A Codec or Filter implementation wraps these so
// that the engine can count each rejection under its reason and decide
// whose fault it was.
var (
	ErrMalformed    = errors.New("malformed delta")
	ErrSignature    = errors.New("bad signature")
	ErrTooLarge     = errors.New("delta exceeds size limit")
	ErrSeal         = errors.New("cannot open sealed payload")
	ErrNotMember    = errors.New("scope membership violated")
	ErrReplay       = errors.New("round outside the accepted window")
	ErrEquivocation = errors.New("second, different update from the same source for the round")
	ErrDuplicate    = errors.New("duplicate delta")
	ErrHops         = errors.New("hop count above max_hops")
	ErrByzantine    = errors.New("update rejected by the Byzantine filter")
	ErrLate         = errors.New("round no longer collecting")
	ErrRoundFull    = errors.New("round already has max_nodes_per_round updates")
	ErrDisabled     = errors.New("federation disabled on this node")
	// ErrInFlight: another peer is sending this node the same release
	// right now. Not a refusal: the offer is asked again once that
	// transfer ends (Engine.Offered).
	ErrInFlight = errors.New("release already being received from another peer")
	// ErrBodyMismatch: a body that is not the one its offer announced
	// (length or hash). The offer's signature covers the hash, so the
	// sender changed it; counted as malformed.
	ErrBodyMismatch = errors.New("body does not match its offer")
)
