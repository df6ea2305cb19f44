package p2p

import "errors"

var (
	// ErrTooLarge marks a message longer than the configured limit; it is
	// raised before any buffer for the message is allocated.
	ErrTooLarge = errors.New("message exceeds size limit")
	// ErrBadFrame marks a reply or request frame that does not parse.
	ErrBadFrame = errors.New("malformed frame")
	// ErrBadAddr marks a multiaddr that cannot be used (missing /p2p/ part,
	// unparsable text).
	ErrBadAddr = errors.New("bad multiaddr")
	// ErrClosed is returned by operations on a closed Host.
	ErrClosed = errors.New("p2p host closed")
)
