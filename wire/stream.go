package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Stream protocol IDs (libp2p protocol strings). The delta protocol is at
// version 2: an Offer first, the payload only when the receiver asks for it.
const (
	ProtocolDelta = "/daf/delta/2"
	ProtocolKeys  = "/daf/keys/1"
	ProtocolPeers = "/daf/peers/1"
)

// readChunk is how much a frame reader allocates ahead of the bytes actually
// received, so a peer announcing a 64 MiB frame and sending 10 bytes costs
// this, not 64 MiB.
const readChunk = 1 << 20

// WriteFrame writes one frame: a 4-byte big-endian length, then body.
func WriteFrame(w io.Writer, body []byte) error {
	if uint64(len(body)) > 0xffffffff {
		return fmt.Errorf("%w: frame of %d bytes", ErrTooLarge, len(body))
	}
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(body)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(body)
	return err
}

// ReadFrame reads one frame of at most max bytes. The length is checked
// before anything is allocated, and the buffer grows with the bytes that
// actually arrive.
func ReadFrame(r io.Reader, max int) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("read frame length: %w", err)
	}
	n := uint64(binary.BigEndian.Uint32(hdr[:]))
	if n > uint64(max) {
		return nil, fmt.Errorf("%w: frame of %d bytes, limit %d", ErrTooLarge, n, max)
	}
	return ReadFrameBody(r, n)
}

// ReadFrameBody reads the n-byte body of a frame whose length the caller
// has already read and checked against its limit (a transport that also
// reserves memory for the body between the two steps). The buffer grows
// with the bytes that actually arrive, at most readChunk ahead of them, so
// announcing a large frame costs a peer as much as sending it.
func ReadFrameBody(r io.Reader, n uint64) ([]byte, error) {
	buf := make([]byte, 0, min(n, readChunk))
	for uint64(len(buf)) < n {
		step := min(n-uint64(len(buf)), readChunk)
		if uint64(cap(buf)-len(buf)) < step {
			grown := make([]byte, len(buf), min(n, uint64(2*cap(buf))+step))
			copy(grown, buf)
			buf = grown
		}
		start := len(buf)
		buf = buf[:start+int(step)]
		if _, err := io.ReadFull(r, buf[start:]); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("%w: frame of %d bytes ended after %d: %w", ErrMalformed, n, start, err)
		}
	}
	return buf, nil
}

// WriteEnvelope writes e as one frame (the whole envelope at once, as in
// the delta protocol's first version; tests and tools).
func WriteEnvelope(w io.Writer, e *Envelope, lim Limits) error {
	b, err := e.MarshalWithin(lim)
	if err != nil {
		return err
	}
	return WriteFrame(w, b)
}

// ReadEnvelope reads one frame written by WriteEnvelope and decodes it. It does not
// verify the signature.
func ReadEnvelope(r io.Reader, lim Limits) (*Envelope, error) {
	b, err := ReadFrame(r, lim.MaxEnvelope)
	if err != nil {
		return nil, err
	}
	return Unmarshal(b, lim)
}
