package wire

import "errors"

// Sentinel errors. Decoders wrap them with the field at fault; the daemon
// maps them to the daf_updates_received_total{result} labels.
var (
	// ErrTooLarge: a length exceeds a limit (checked before allocation).
	ErrTooLarge = errors.New("message exceeds size limit")
	// ErrMalformed: bytes that are not a well-formed message of this version.
	ErrMalformed = errors.New("malformed message")
	// ErrUnknownVersion: a well-formed prefix with a version we do not speak.
	ErrUnknownVersion = errors.New("unknown envelope version")
	// ErrBadTier: a tier that may not travel (private) or does not exist.
	ErrBadTier = errors.New("bad tier")
	// ErrBadSignature: the source's signature does not verify.
	ErrBadSignature = errors.New("bad envelope signature")
	// ErrReplay: this source's envelope for this round and scope was already
	// accepted with the same payload (also the normal fate of a gossip
	// duplicate arriving over a second path).
	ErrReplay = errors.New("replayed envelope")
	// ErrEquivocation: the source already had a different payload accepted
	// for this round and scope; one update per source, round and scope.
	ErrEquivocation = errors.New("second, different update from one source in one round")
	// ErrRoundOutOfWindow: the round is older than the accepted window or
	// more than one round ahead of the receiver.
	ErrRoundOutOfWindow = errors.New("round outside the accepted window")
	// ErrReplayGuardFull: the replay guard holds its maximum number of
	// entries for the current window; the envelope is refused, not forgotten.
	ErrReplayGuardFull = errors.New("replay guard full")
	// ErrMismatch: the payload's update disagrees with the signed envelope
	// (round, tier or scope).
	ErrMismatch = errors.New("update does not match its envelope")
)
