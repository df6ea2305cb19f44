package p2p

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dafnet/daf/gossip"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// A two-step stream (gossip.Transport.SendOffered) carries, in order:
//
//	sender:   frame(offer)
//	receiver: reply: want (verdict 2), or accept / refuse as on any stream
//	sender:   frame(body), only after want, then closes its write side
//	receiver: reply: accept / refuse
//
// The receiver checks the size the offer announced against
// MaxMessageBytes and reserves it from the inbound budget before it says
// want, so a body is never sent that the receiver could not take, and one
// it already holds is never sent at all.

// SendOffered implements gossip.Transport.
func (x *Host) SendOffered(ctx context.Context, to gossip.PeerID, proto string, offer, body []byte) error {
	if int64(len(offer)) > x.cfg.MaxOfferBytes {
		return fmt.Errorf("send to %s on %s: %w: offer of %d bytes, limit %d", to, proto, ErrTooLarge, len(offer), x.cfg.MaxOfferBytes)
	}
	if int64(len(body)) > x.cfg.MaxMessageBytes {
		return fmt.Errorf("send to %s on %s: %w: %d bytes, limit %d", to, proto, ErrTooLarge, len(body), x.cfg.MaxMessageBytes)
	}
	ctx, s, done, err := x.openSend(ctx, to, proto)
	if err != nil {
		return err
	}
	defer done()
	fail := func(err error) error {
		_ = s.Reset()
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return fmt.Errorf("send to %s on %s: %w", to, proto, err)
	}

	if err := writeFrame(s, offer); err != nil {
		return fail(fmt.Errorf("write offer: %w", err))
	}
	kind, reason, err := readReply(s, true)
	if err != nil {
		return fail(err)
	}
	x.bytesSent.Add(uint64(4 + len(offer)))
	switch kind {
	case verdictRefuse:
		_ = s.Reset()
		return fmt.Errorf("send to %s on %s: %w", to, proto, gossip.ParseRefusal(reason))
	case verdictAccept:
		_ = s.Close()
		return nil
	}
	return x.writeAwaitingVerdict(ctx, s, to, proto, body)
}

// HandleOffered implements gossip.Transport: h runs on the stream's
// goroutine, and its error (or nil) is the verdict the sender gets.
func (x *Host) HandleOffered(proto string, h gossip.OfferHandler) {
	x.h.SetStreamHandler(protocol.ID(proto), func(s network.Stream) {
		x.serveOffered(s, proto, h)
	})
}

// errBodyStream marks a fetch that failed on the stream after want was
// sent: the sender can no longer be given a verdict.
var errBodyStream = errors.New("body not received")

func (x *Host) serveOffered(s network.Stream, proto string, h gossip.OfferHandler) {
	from := gossip.PeerID(s.Conn().RemotePeer().String())
	ctx, cancel := context.WithTimeout(x.ctx, x.cfg.StreamTimeout)
	defer cancel()
	_ = s.SetDeadline(time.Now().Add(x.cfg.StreamTimeout))

	offer, err := readFrame(s, x.cfg.MaxOfferBytes)
	if err != nil {
		x.refuse(s, proto, from, err)
		return
	}
	x.bytesReceived.Add(uint64(4 + len(offer)))
	var held int64
	defer func() { x.budget.release(held) }()
	wanted, broken := false, false
	fetch := func(size int) ([]byte, error) {
		if wanted {
			return nil, fmt.Errorf("body of %s asked for twice", proto)
		}
		if size < 0 || int64(size) > x.cfg.MaxMessageBytes {
			return nil, fmt.Errorf("%w: body of %d bytes announced, limit %d", ErrTooLarge, size, x.cfg.MaxMessageBytes)
		}
		if err := x.budget.acquire(ctx, int64(size)); err != nil {
			return nil, fmt.Errorf("%w: inbound budget of %d bytes: %w", gossip.ErrBusy, x.cfg.InboundBudgetBytes, err)
		}
		held = int64(size)
		wanted = true
		if err := writeWant(s); err != nil {
			broken = true
			return nil, fmt.Errorf("%w: answering the offer: %v", errBodyStream, err)
		}
		n, err := readFrameHeader(s, int64(size))
		if err == nil && n != int64(size) {
			err = fmt.Errorf("%w: body of %d bytes, the offer announced %d", ErrBadFrame, n, size)
		}
		var body []byte
		if err == nil {
			body, err = readFrameBody(s, n)
		}
		if err != nil {
			broken = true
			x.log.Debug("body cut short", "peer", from, "proto", proto, "bytes", size, "err", err)
			return nil, fmt.Errorf("%w: %w", errBodyStream, err)
		}
		x.bytesReceived.Add(uint64(4 + n))
		return body, nil
	}
	herr := h(from, offer, fetch)
	if broken {
		_ = s.Reset()
		return
	}
	if err := writeVerdict(s, herr); err != nil {
		_ = s.Reset()
		return
	}
	if !wanted {
		// Whatever the sender still writes is discarded.
		_ = s.CloseWrite()
		_ = s.CloseRead()
		return
	}
	_ = s.Close()
}
