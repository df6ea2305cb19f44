package p2p

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/dafnet/daf/gossip"
	"github.com/dafnet/daf/wire"
)

// Wire format of one request on a DAF stream:
//
//	uint32 big-endian length N | N bytes of message
//
// and of the reply:
//
//	1 byte verdict (0 accept, 1 refuse, 2 want) | uint16 big-endian length R | R bytes of reason (UTF-8)
//
// "want" (with no reason) is only the answer to the offer of a two-step
// stream (offered.go): send the body.
//
// A fixed-width length rather than a varint keeps the limit check trivial:
// four bytes are read and compared with the limit before any buffer is made,
// and the buffer then grows with the bytes that arrive.

const (
	verdictAccept = 0
	verdictRefuse = 1
	verdictWant   = 2

	// maxReasonBytes bounds a refusal reason; longer reasons are cut.
	maxReasonBytes = 1024
	// DefaultMaxMessageBytes is DESIGN §5's default envelope limit.
	DefaultMaxMessageBytes = 64 << 20
)

// writeFrame writes one length-prefixed message.
func writeFrame(w io.Writer, msg []byte) error {
	if uint64(len(msg)) > uint64(^uint32(0)) {
		return fmt.Errorf("%w: %d bytes do not fit a 32-bit frame", ErrTooLarge, len(msg))
	}
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(msg)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(msg)
	return err
}

// readFrameHeader reads the length and checks it against limit before the
// caller allocates anything.
func readFrameHeader(r io.Reader, limit int64) (int64, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, fmt.Errorf("%w: reading length: %v", ErrBadFrame, err)
	}
	n := int64(binary.BigEndian.Uint32(hdr[:]))
	if n > limit {
		return n, fmt.Errorf("%w: %d bytes announced, limit %d", ErrTooLarge, n, limit)
	}
	return n, nil
}

// readFrame reads one message of at most limit bytes.
func readFrame(r io.Reader, limit int64) ([]byte, error) {
	n, err := readFrameHeader(r, limit)
	if err != nil {
		return nil, err
	}
	return readFrameBody(r, n)
}

// readFrameBody reads the n bytes announced by a checked header. The buffer
// grows with the bytes that arrive (wire.ReadFrameBody), so a peer that
// announces the limit and sends little costs little.
func readFrameBody(r io.Reader, n int64) ([]byte, error) {
	msg, err := wire.ReadFrameBody(r, uint64(n))
	if err != nil {
		return nil, fmt.Errorf("%w: message of %d bytes cut short: %v", ErrBadFrame, n, err)
	}
	return msg, nil
}

// writeVerdict writes the reply frame; a nil refusal means accept. The
// reason starts with the refusal's result label (gossip.RefusalReason), so
// the sender can tell a duplicate from a fault.
func writeVerdict(w io.Writer, refusal error) error {
	if refusal == nil {
		_, err := w.Write([]byte{verdictAccept, 0, 0})
		return err
	}
	reason := gossip.RefusalReason(refusal)
	if errors.Is(refusal, ErrTooLarge) {
		reason = gossip.ResultRejectedSize + ": " + refusal.Error()
	}
	if len(reason) > maxReasonBytes {
		reason = reason[:maxReasonBytes]
	}
	buf := make([]byte, 3+len(reason))
	buf[0] = verdictRefuse
	binary.BigEndian.PutUint16(buf[1:3], uint16(len(reason)))
	copy(buf[3:], reason)
	_, err := w.Write(buf)
	return err
}

// writeWant answers an offer: send the body.
func writeWant(w io.Writer) error {
	_, err := w.Write([]byte{verdictWant, 0, 0})
	return err
}

// readVerdict reads the reply frame: accepted, or refused with the reason.
func readVerdict(r io.Reader) (accepted bool, reason string, err error) {
	kind, reason, err := readReply(r, false)
	return kind == verdictAccept, reason, err
}

// readReply reads a reply frame; want is valid only where wantOK.
func readReply(r io.Reader, wantOK bool) (kind byte, reason string, err error) {
	var hdr [3]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, "", fmt.Errorf("%w: reading verdict: %v", ErrBadFrame, err)
	}
	n := int(binary.BigEndian.Uint16(hdr[1:3]))
	if n > maxReasonBytes {
		return 0, "", fmt.Errorf("%w: refusal reason of %d bytes, limit %d", ErrBadFrame, n, maxReasonBytes)
	}
	switch {
	case hdr[0] == verdictAccept, hdr[0] == verdictWant && wantOK:
		if n != 0 {
			return 0, "", fmt.Errorf("%w: verdict %d with a %d-byte reason", ErrBadFrame, hdr[0], n)
		}
		return hdr[0], "", nil
	case hdr[0] == verdictRefuse:
		buf := make([]byte, n)
		if _, err := io.ReadFull(r, buf); err != nil {
			return 0, "", fmt.Errorf("%w: refusal reason cut short: %v", ErrBadFrame, err)
		}
		return verdictRefuse, string(buf), nil
	default:
		return 0, "", fmt.Errorf("%w: unknown verdict byte %d", ErrBadFrame, hdr[0])
	}
}
