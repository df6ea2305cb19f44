package p2p

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dafnet/daf/gossip"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Send delivers msg to peer `to` on stream protocol proto and waits for the
// peer's verdict. A refusal comes back as an error wrapping
// gossip.ErrRefused with the peer's reason.
func (x *Host) Send(ctx context.Context, to gossip.PeerID, proto string, msg []byte) error {
	if int64(len(msg)) > x.cfg.MaxMessageBytes {
		return fmt.Errorf("send to %s on %s: %w: %d bytes, limit %d", to, proto, ErrTooLarge, len(msg), x.cfg.MaxMessageBytes)
	}
	ctx, s, done, err := x.openSend(ctx, to, proto)
	if err != nil {
		return err
	}
	defer done()

	return x.writeAwaitingVerdict(ctx, s, to, proto, msg)
}

// writeAwaitingVerdict writes one frame and the end of the stream while it
// reads the receiver's verdict: a peer that refuses on the length alone
// answers before reading the body, and the sender must not sit blocked on
// flow control meanwhile. The stream is closed or reset on return.
func (x *Host) writeAwaitingVerdict(ctx context.Context, s network.Stream, to gossip.PeerID, proto string, msg []byte) error {
	written := make(chan error, 1)
	go func() {
		err := writeFrame(s, msg)
		if err == nil {
			err = s.CloseWrite()
		}
		written <- err
	}()
	accepted, reason, rerr := readVerdict(s)
	if rerr != nil || !accepted {
		_ = s.Reset()
	}
	werr := <-written
	if werr == nil {
		// Written is sent, whatever the peer then made of it.
		x.bytesSent.Add(uint64(4 + len(msg)))
	}
	switch {
	case rerr != nil && ctx.Err() != nil:
		return fmt.Errorf("send to %s on %s: %w", to, proto, ctx.Err())
	case rerr != nil && werr != nil:
		return fmt.Errorf("send to %s on %s: write: %w", to, proto, werr)
	case rerr != nil:
		return fmt.Errorf("send to %s on %s: %w", to, proto, rerr)
	case !accepted:
		return fmt.Errorf("send to %s on %s: %w", to, proto, gossip.ParseRefusal(reason))
	case werr != nil:
		return fmt.Errorf("send to %s on %s: write: %w", to, proto, werr)
	}
	_ = s.Close()
	return nil
}

// openSend opens a stream to `to` for one outgoing message, bounded by the
// context's deadline or, without one, by StreamTimeout; a cancelled context
// resets the stream at once, so no write or read stays blocked. done
// releases the timer and the cancellation hook.
func (x *Host) openSend(ctx context.Context, to gossip.PeerID, proto string) (context.Context, network.Stream, func(), error) {
	pid, err := peer.Decode(string(to))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("send on %s: peer %q: %w", proto, to, err)
	}
	if x.ctx.Err() != nil {
		return nil, nil, nil, ErrClosed
	}
	cancel := context.CancelFunc(func() {})
	if _, ok := ctx.Deadline(); !ok {
		ctx, cancel = context.WithTimeout(ctx, x.cfg.StreamTimeout)
	}
	s, err := x.h.NewStream(ctx, pid, protocol.ID(proto))
	if err != nil {
		cancel()
		return nil, nil, nil, fmt.Errorf("send to %s on %s: open stream: %w", to, proto, err)
	}
	deadline, _ := ctx.Deadline()
	_ = s.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = s.Reset() })
	return ctx, s, func() { stop(); cancel() }, nil
}

// Handle registers h for stream protocol proto, replacing any earlier
// handler. h runs on the stream's goroutine; its error is sent back to the
// sender as the refusal reason.
func (x *Host) Handle(proto string, h func(from gossip.PeerID, msg []byte) error) {
	x.mu.Lock()
	x.handlers[proto] = h
	x.mu.Unlock()
	x.h.SetStreamHandler(protocol.ID(proto), func(s network.Stream) {
		x.mu.Lock()
		h := x.handlers[proto]
		x.mu.Unlock()
		x.serveWith(s, proto, x.cfg.MaxMessageBytes, h)
	})
}

// serveWith reads one request of at most limit bytes, hands it to h and
// writes the verdict.
func (x *Host) serveWith(s network.Stream, proto string, limit int64, h func(gossip.PeerID, []byte) error) {
	from := gossip.PeerID(s.Conn().RemotePeer().String())
	ctx, cancel := context.WithTimeout(x.ctx, x.cfg.StreamTimeout)
	defer cancel()
	_ = s.SetDeadline(time.Now().Add(x.cfg.StreamTimeout))

	n, err := readFrameHeader(s, limit)
	if err != nil {
		x.refuse(s, proto, from, err)
		return
	}
	if err := x.budget.acquire(ctx, n); err != nil {
		x.refuse(s, proto, from, fmt.Errorf("%w: inbound budget of %d bytes: %w", gossip.ErrBusy, x.cfg.InboundBudgetBytes, err))
		return
	}
	defer x.budget.release(n)
	msg, err := readFrameBody(s, n)
	if err != nil {
		x.log.Debug("request cut short", "peer", from, "proto", proto, "bytes", n, "err", err)
		_ = s.Reset()
		return
	}
	x.bytesReceived.Add(uint64(4 + n))
	herr := h(from, msg)
	if err := writeVerdict(s, herr); err != nil {
		_ = s.Reset()
		return
	}
	_ = s.Close()
}

// refuse answers a request that was not read: the verdict goes out, and
// closing both halves discards whatever the sender still writes.
func (x *Host) refuse(s network.Stream, proto string, from gossip.PeerID, reason error) {
	x.log.Debug("request refused", "peer", from, "proto", proto, "reason", reason)
	if errors.Is(reason, ErrBadFrame) {
		_ = s.Reset()
		return
	}
	if err := writeVerdict(s, reason); err != nil {
		_ = s.Reset()
		return
	}
	_ = s.CloseWrite()
	_ = s.CloseRead()
}
