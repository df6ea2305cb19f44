package p2p

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
)

// redialLoop keeps the host connected to every known peer: bootstrap peers
// forever, learned peers until they fail too often. A node that restarts
// after a crash is found again this way without any action on its part.
func (x *Host) redialLoop() {
	defer x.wg.Done()
	tick := time.NewTicker(x.cfg.RedialInterval / 2)
	defer tick.Stop()
	for {
		x.dialDue()
		select {
		case <-x.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// maxLearnedFailures drops a learned (non-bootstrap) peer after this many
// failed dials in a row.
const maxLearnedFailures = 8

func (x *Host) dialDue() {
	now := time.Now()
	var due []peer.ID
	x.mu.Lock()
	for p, kp := range x.known {
		if kp.dialing || now.Before(kp.nextDial) {
			continue
		}
		if x.h.Network().Connectedness(p) == network.Connected {
			continue
		}
		kp.dialing = true
		due = append(due, p)
	}
	x.mu.Unlock()
	for _, p := range due {
		x.background(func() { x.dial(p) })
	}
}

func (x *Host) dial(p peer.ID) {
	ctx, cancel := context.WithTimeout(x.ctx, 5*time.Second)
	err := x.h.Connect(ctx, peer.AddrInfo{ID: p, Addrs: x.h.Peerstore().Addrs(p)})
	cancel()
	x.mu.Lock()
	defer x.mu.Unlock()
	kp := x.known[p]
	if kp == nil {
		return
	}
	kp.dialing = false
	if err == nil {
		kp.failures = 0
		return
	}
	kp.failures++
	if !kp.bootstrap && kp.failures >= maxLearnedFailures {
		delete(x.known, p)
		return
	}
	wait := x.cfg.RedialInterval
	for i := 1; i < kp.failures && wait < x.cfg.MaxRedialInterval; i++ {
		wait *= 2
	}
	wait = min(wait, x.cfg.MaxRedialInterval)
	kp.nextDial = time.Now().Add(wait)
	x.log.Debug("dial failed", "peer", p, "failures", kp.failures, "retry_in", wait, "err", err)
}

// pingLoop measures round trips to every connected peer; libp2p's ping
// records them in the peerstore's moving average, which Latency reads.
func (x *Host) pingLoop() {
	defer x.wg.Done()
	tick := time.NewTicker(x.cfg.PingInterval)
	defer tick.Stop()
	for {
		for _, p := range x.h.Network().Peers() {
			x.background(func() { x.pingOnce(p) })
		}
		select {
		case <-x.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (x *Host) pingOnce(p peer.ID) {
	ctx, cancel := context.WithTimeout(x.ctx, 5*time.Second)
	defer cancel()
	res := <-ping.Ping(ctx, x.h, p)
	if res.Error != nil {
		x.log.Debug("ping failed", "peer", p, "err", res.Error)
	}
}
