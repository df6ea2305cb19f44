// Package wire is DAF's message layer: the signed, versioned envelope that
// carries one update from its source through relays, its hard size limits,
// the replay guard, and the framing of the /daf/delta/2, /daf/keys/1 and
// /daf/peers/1 stream protocols. docs/PROTOCOL.md is the specification; this
// package is its reference implementation.
//
// # Why a hand-written binary format
//
// The envelope is small and fixed: ten fields, two of them variable-length
// strings of at most 255 bytes and one opaque payload. A hand-written layout
// lets the decoder check every length against the limits before it allocates
// anything, put the payload last so a reader can stream it in chunks, and
// place the hop count (the one field relays change) at a fixed offset outside
// the signed bytes. The signed bytes are then a plain concatenation with a
// domain prefix, which any implementation can reproduce from the spec
// without a schema compiler; protobuf would add a generated-code dependency,
// unknown-field and duplicate-field rules that a signature must pin down,
// and varints whose non-canonical encodings make "the same message" ambiguous.
// The format is versioned by its second field; an unknown version is refused
// with an error naming both versions.
//
// # How it is driven
//
// A sender builds an Envelope (payload already compressed and, for Group and
// Tenant, sealed with the scope key over SealAD) and calls Sign. On a
// /daf/delta/2 stream it first sends the envelope's Offer (NewOffer: the
// header and the payload's SHA-256). The receiver decodes it with
// UnmarshalOffer (limits, the announced size included, checked before
// anything is allocated), checks VerifyOffer (the envelope's signature,
// before a byte of the payload is sent) and whether it already holds the
// release, and either refuses (a duplicate, say) or asks for the payload;
// the payload must then pass Offer.Matches (length and hash) before it is
// opened and decoded. The answer is a Reply whose Status (StatusOf maps
// this package's errors) is also the metric label. Whole envelopes
// (Marshal, Unmarshal, Verify, ReadEnvelope) remain the unit that is
// signed, stored and fuzzed. A relay increments Hops and forwards the envelope unchanged
// otherwise, without re-signing. /daf/keys/1 carries KeysRequest and
// /daf/peers/1 a peer list, one message per stream, each answered by a Reply.
//
// Sign and Verify live here rather than in seal so that seal knows nothing
// about envelopes: wire imports seal, never the other way round.
package wire
