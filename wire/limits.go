package wire

// DefaultMaxEnvelope is 64 MiB: an update of about 16 M float32 values
// uncompressed, far above a LoRA delta of the reference model, small enough
// that a handful of concurrent streams cannot exhaust a node's memory.
const DefaultMaxEnvelope = 64 << 20

// Limits bound what a decoder accepts. Every length is checked against them
// before any buffer of that length is allocated.
type Limits struct {
	// MaxEnvelope is the largest encoded envelope (header, signature and
	// payload) in bytes. It also bounds the payload frame of /daf/delta/2
	// (an offer announcing more is refused before the payload is sent).
	MaxEnvelope int
	// MaxControlFrame is the largest /daf/keys/1 or /daf/peers/1 frame.
	MaxControlFrame int
}

// DefaultLimits returns the limits a node uses unless configured otherwise.
func DefaultLimits() Limits {
	return Limits{MaxEnvelope: DefaultMaxEnvelope, MaxControlFrame: 1 << 20}
}
