package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dafnet/daf/gossip"
	"github.com/dafnet/daf/p2p"
	"github.com/dafnet/daf/privacy"
	"github.com/dafnet/daf/round"
	"github.com/dafnet/daf/seal"
	"github.com/dafnet/daf/wire"
	ma "github.com/multiformats/go-multiaddr"
)

// ErrStopping is the refusal a peer gets while the node shuts down
// (labelled busy: another peer can take the message).
var ErrStopping = fmt.Errorf("%w: node shutting down", gossip.ErrBusy)

// handleDelta serves /daf/delta/2 (docs/PROTOCOL.md §6.1). The round
// machine rules on the offer first, on its own goroutine: a release the
// node holds, or one outside its round window or scopes, is refused there
// and its body never sent. While another peer is sending the same release,
// the offer waits for that transfer to end, then is judged again ("have"
// if the body arrived, "send it" if it did not). A wanted body is decoded
// (hash check, unsealing, decompression) on the open stage's workers, in
// parallel across deltas, and the machine's verdict on it goes back to
// the sender. A full open queue refuses the delta at once (counted as a
// pipeline drop): the sender learns it and gossip brings the release by
// another path.
func (n *Node) handleDelta(from gossip.PeerID, offer []byte, fetch func(int) ([]byte, error)) error {
	ctx := n.runCtx
	env, err := n.offered(ctx, from, offer)
	if err != nil {
		return err
	}
	// From here the transfer must end on the loop, whatever happens, so
	// that offers waiting for it go on.
	settled := false
	defer func() {
		if !settled {
			n.submit(func(now time.Time) round.Ready {
				n.endTransfer(env.Digest)
				return n.machine.DeltaAbandoned(now, from, env.Digest)
			})
		}
	}()
	body, err := fetch(env.BodySize)
	if err != nil {
		return err
	}
	decoded := make(chan gossip.Inbound, 1)
	if err := n.open.TrySubmit(func() { decoded <- gossip.DecodeBody(n.codec, from, env, body) }); err != nil {
		return fmt.Errorf("%w: %w", gossip.ErrBusy, err)
	}
	var in gossip.Inbound
	select {
	case in = <-decoded:
	case <-ctx.Done():
		return ErrStopping
	}
	verdict := make(chan error, 1)
	ok := n.submit(func(now time.Time) round.Ready {
		rd, err := n.machine.DeltaReceived(now, from, nil, &in)
		n.endTransfer(env.Digest)
		verdict <- err
		return rd
	})
	if !ok {
		return ErrStopping
	}
	settled = true
	select {
	case err := <-verdict:
		n.log.Debug("delta received", "from", shortID(from), "source", shortID(env.Source), "round", env.Round, "result", gossip.ResultOf(err), "bytes", len(body))
		return err
	case <-ctx.Done():
		return ErrStopping
	}
}

// offered has the round machine rule on an offer, waiting while the same
// release is arriving from another peer (at most sendTimeout, the time a
// sender gives a whole transfer). nil: the body is wanted, and a transfer
// is open for it until endTransfer.
func (n *Node) offered(ctx context.Context, from gossip.PeerID, offer []byte) (gossip.Envelope, error) {
	waitUntil := time.Now().Add(sendTimeout)
	for {
		var env gossip.Envelope
		var wait chan struct{}
		res := make(chan error, 1)
		ok := n.submit(func(now time.Time) round.Ready {
			rd, e, err := n.machine.DeltaOffered(now, from, offer)
			switch {
			case err == nil:
				// A second transfer of the release from the same peer (a
				// retry) shares the first one's channel: replacing it
				// would leave the offers waiting on it asleep.
				if _, open := n.transfers[e.Digest]; !open {
					n.transfers[e.Digest] = make(chan struct{})
				}
			case errors.Is(err, gossip.ErrInFlight):
				wait = n.transfers[e.Digest]
			}
			env = e
			res <- err
			return rd
		})
		if !ok {
			return gossip.Envelope{}, ErrStopping
		}
		var err error
		select {
		case err = <-res:
		case <-ctx.Done():
			return gossip.Envelope{}, ErrStopping
		}
		if !errors.Is(err, gossip.ErrInFlight) {
			if err != nil {
				n.log.Debug("offer refused", "from", shortID(from), "result", gossip.ResultOf(err))
			}
			return env, err
		}
		if wait == nil {
			// A transfer the machine knows and the node does not: cannot
			// happen, but a sender must not wait on it.
			return env, fmt.Errorf("%w: %w", gossip.ErrBusy, err)
		}
		timer := time.NewTimer(time.Until(waitUntil))
		select {
		case <-wait:
			timer.Stop()
		case <-timer.C:
			return env, fmt.Errorf("%w: %w", gossip.ErrBusy, err)
		case <-ctx.Done():
			timer.Stop()
			return gossip.Envelope{}, ErrStopping
		}
	}
}

// endTransfer wakes the offers waiting for a release's body. Loop
// goroutine only.
func (n *Node) endTransfer(d gossip.Digest) {
	if ch, ok := n.transfers[d]; ok {
		close(ch)
		delete(n.transfers, d)
	}
}

// onPeer is told by the host when a peer connects or goes away. A new
// connection gets our peer list (our own signed record first), and the
// round machine offers it our release if the round still collects.
func (n *Node) onPeer(id gossip.PeerID, up bool) {
	if !n.running.Load() || n.runCtx.Err() != nil {
		return
	}
	if !up {
		n.log.Debug("peer disconnected", "peer", shortID(id))
		return
	}
	n.log.Debug("peer connected", "peer", shortID(id))
	n.submit(func(now time.Time) round.Ready {
		// A reconnecting peer may have restarted and lost what it held.
		n.machine.Engine().PeerRestarted(id)
		n.machine.Engine().Table().Seen(id, now)
		return round.Ready{}
	})
	ctx, cancel := context.WithTimeout(n.runCtx, 10*time.Second)
	defer cancel()
	if rec, err := (&wire.KeysRequest{Kind: wire.KeysRecord, Record: n.record}).Marshal(); err == nil {
		if err := n.host.Send(ctx, id, gossip.ProtoKeys, rec); err != nil {
			n.log.Debug("key record not delivered", "peer", shortID(id), "err", err)
		}
	}
	n.pushPeers(ctx, id)
	if grants := n.grantsFor(id, 0, "", 0); len(grants) > 0 {
		// Admitting a member is handing it its grant; a member that already
		// holds the key unwraps the same key again, which changes nothing.
		n.sendGrants(id, grants)
	}
	n.askMissingGrants(ctx, id)
}

// askMissingGrants asks a newly connected peer for the grants it holds for
// us in every sealed scope we belong to but hold no key for (the admin's
// node, or any peer the admin pushed our grant to, serves them).
func (n *Node) askMissingGrants(ctx context.Context, id gossip.PeerID) {
	for _, m := range n.ownMemberships() {
		tier := privacy.Tier(m.Tier)
		if !sealedTier(tier) {
			continue
		}
		n.codec.mu.RLock()
		_, err := n.codec.keys.Latest(tier.String(), m.Scope)
		n.codec.mu.RUnlock()
		if err == nil {
			continue
		}
		msg, err := (&wire.KeysRequest{Kind: wire.KeysWantGrants, Tier: m.Tier, Scope: m.Scope}).Marshal()
		if err != nil {
			continue
		}
		if err := n.host.Send(ctx, id, gossip.ProtoKeys, msg); err != nil {
			n.log.Debug("grant request not delivered", "peer", shortID(id), "err", err)
		}
	}
}

// pushPeers sends our peer list to one peer (on connect and periodically).
func (n *Node) pushPeers(ctx context.Context, id gossip.PeerID) {
	msg, err := n.peerList(id)
	if err != nil {
		n.log.Warn("peer list", "err", err)
		return
	}
	if err := n.host.Send(ctx, id, gossip.ProtoPeers, msg); err != nil {
		n.log.Debug("peer exchange failed", "peer", shortID(id), "err", err)
	}
}

// ownMemberships are the (tier, scope) pairs the node announces.
func (n *Node) ownMemberships() []wire.Membership {
	tier, err := privacy.ParseTier(n.cfg.Fed.Federation.Node.Tier)
	if err != nil || tier == privacy.Private {
		return nil
	}
	return []wire.Membership{{Tier: uint8(tier), Scope: n.cfg.Fed.Federation.Node.Scope}}
}

// peerList encodes our own entry and the peers we hold verified records
// for (except the recipient), for /daf/peers/1.
func (n *Node) peerList(to gossip.PeerID) ([]byte, error) {
	own := wire.PeerEntry{KeyRecord: n.record, Memberships: n.ownMemberships()}
	for _, a := range n.host.Addrs() {
		if b := addrBytes(a, n.self); b != nil && len(own.Addrs) < wire.MaxAddrsPerPeer {
			own.Addrs = append(own.Addrs, b)
		}
	}
	entries := []wire.PeerEntry{own}
	n.mu.Lock()
	ids := make([]gossip.PeerID, 0, len(n.peerRecords))
	for id := range n.peerRecords {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if id == to || len(entries) >= wire.MaxPeersPerList {
			continue
		}
		e := wire.PeerEntry{KeyRecord: n.peerRecords[id], Memberships: n.memberships[id]}
		for _, a := range n.host.PeerAddrs(id) {
			if b := addrBytes(a, id); b != nil && len(e.Addrs) < wire.MaxAddrsPerPeer {
				e.Addrs = append(e.Addrs, b)
			}
		}
		entries = append(entries, e)
	}
	n.mu.Unlock()
	return wire.MarshalPeerList(entries)
}

// addrBytes is the binary multiaddr without the /p2p/ suffix.
func addrBytes(s string, id gossip.PeerID) []byte {
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		return nil
	}
	if rest, last := ma.SplitLast(a); last != nil && last.Protocol().Code == ma.P_P2P {
		if last.Value() != string(id) {
			return nil
		}
		a = rest
	}
	if len(a) == 0 {
		return nil
	}
	if _, err := a.ValueForProtocol(ma.P_P2P); err == nil {
		return nil // a relayed address: not ours to hand out
	}
	return a.Bytes()
}

// handlePeers takes a pushed peer list: every entry's key record must
// verify, its addresses go to the host's dialler, and its memberships and
// keys to the round machine's peer table. The entries' memberships are
// claims, used only to choose whom to send to.
func (n *Node) handlePeers(from gossip.PeerID, msg []byte) error {
	entries, err := wire.UnmarshalPeerList(msg)
	if err != nil {
		return err
	}
	now := time.Now()
	var infos []gossip.PeerInfo
	var bad error
	for i, e := range entries {
		rec, err := seal.ParseKeyRecord(e.KeyRecord)
		var id gossip.PeerID
		if err == nil {
			id, err = p2p.PeerIDFromPublicKey(rec.Identity)
		}
		// Every peer list repeats records the node already verified; a
		// signature check and a curve multiplication per entry per list
		// were a tenth of a 16-node federation's CPU. Only a record that
		// differs from the one held for its identity is checked.
		if err == nil && !n.knownRecord(id, e.KeyRecord) {
			err = rec.Verify()
		}
		if err != nil {
			// A bad record is dropped and charged to the sender; the rest
			// of its list is still used.
			bad = errors.Join(bad, fmt.Errorf("peer list entry %d: %w", i, err))
			continue
		}
		if id == n.self {
			continue
		}
		info := gossip.PeerInfo{ID: id, SignKey: rec.Identity, BoxKey: rec.X25519, Contributes: true}
		for _, b := range e.Addrs {
			a, err := ma.NewMultiaddrBytes(b)
			if err != nil {
				bad = errors.Join(bad, fmt.Errorf("peer list entry %d (%s): address: %w", i, id, err))
				continue
			}
			info.Addrs = append(info.Addrs, a.String())
		}
		// A peer's own entry says what it is a member of, none included.
		// Another peer's entry without memberships only says the sender
		// does not know them (it may hold just the key record): taken as
		// "none" it would overwrite what the peer itself said, and the
		// node would stop sending it releases, refuse its relays and stop
		// waiting for its update.
		if len(e.Memberships) > 0 || id == from {
			info.Memberships = []gossip.Membership{}
			for _, m := range e.Memberships {
				info.Memberships = append(info.Memberships, gossip.Membership{Tier: privacy.Tier(m.Tier), Scope: m.Scope})
			}
		}
		if id == from {
			info.LastSeen = now
		} else {
			info.LastSeen = now.Add(-time.Duration(e.SeenSecsAgo) * time.Second)
		}
		n.mu.Lock()
		n.peerRecords[id] = append([]byte(nil), e.KeyRecord...)
		if info.Memberships != nil {
			n.memberships[id] = slices.Clone(e.Memberships)
		}
		n.mu.Unlock()
		if len(info.Addrs) > 0 {
			full := make([]string, len(info.Addrs))
			for j, a := range info.Addrs {
				full[j] = a + "/p2p/" + string(id)
			}
			_ = n.host.AddAddrs(id, full)
		}
		infos = append(infos, info)
	}
	n.submit(func(now time.Time) round.Ready {
		var all round.Ready
		if bad != nil {
			n.machine.Engine().Table().Adjust(from, -gossip.PenaltyBad)
		}
		for _, info := range infos {
			rd, err := n.machine.PeerSeen(now, info)
			if err != nil {
				n.log.Info("peer record refused", "peer", shortID(info.ID), "err", err)
			}
			all = mergeReady(all, rd)
		}
		return all
	})
	if bad != nil {
		return fmt.Errorf("%w: %w", gossip.ErrSignature, bad)
	}
	return nil
}

// knownRecord reports whether rec is byte for byte the verified key record
// held for id.
func (n *Node) knownRecord(id gossip.PeerID, rec []byte) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	held, ok := n.peerRecords[id]
	return ok && bytes.Equal(held, rec)
}

func mergeReady(a, b round.Ready) round.Ready {
	a.Persist = append(a.Persist, b.Persist...)
	a.Send = append(a.Send, b.Send...)
	a.Apply = append(a.Apply, b.Apply...)
	a.Aggregate = append(a.Aggregate, b.Aggregate...)
	a.Train = append(a.Train, b.Train...)
	a.Skipped = append(a.Skipped, b.Skipped...)
	return a
}

// handleKeys serves /daf/keys/1 (docs/PROTOCOL.md §6.2): a peer's key
// record (its X25519 key, for grants addressed to it), a request for the
// grants we hold for it, or a grant. A grant addressed to us from a
// configured scope admin is unwrapped into the keyring; one addressed to
// another node is kept to be served to it on request.
func (n *Node) handleKeys(from gossip.PeerID, msg []byte) error {
	q, err := wire.UnmarshalKeysRequest(msg)
	if err != nil {
		return err
	}
	switch q.Kind {
	case wire.KeysRecord:
		rec, err := seal.UnmarshalKeyRecord(q.Record)
		if err != nil {
			return err
		}
		if err := rec.Verify(); err != nil {
			return fmt.Errorf("%w: %v", gossip.ErrSignature, err)
		}
		id, err := p2p.PeerIDFromPublicKey(rec.Identity)
		if err != nil {
			return err
		}
		if id != from {
			return fmt.Errorf("%w: key record of %s sent by %s", gossip.ErrSignature, id, from)
		}
		n.mu.Lock()
		n.peerRecords[id] = append([]byte(nil), q.Record...)
		n.mu.Unlock()
		n.submit(func(now time.Time) round.Ready {
			rd, err := n.machine.PeerSeen(now, gossip.PeerInfo{ID: id, SignKey: rec.Identity, BoxKey: rec.X25519, Contributes: true, LastSeen: now})
			if err != nil {
				n.log.Info("key record refused", "peer", shortID(id), "err", err)
			}
			return rd
		})
		return nil
	case wire.KeysWantGrants:
		if grants := n.grantsFor(from, q.Tier, q.Scope, q.MinEpoch); len(grants) > 0 {
			go n.sendGrants(from, grants)
		}
		return nil
	case wire.KeysPutGrant:
		return n.takeGrant(q.Grant, false)
	}
	return fmt.Errorf("%w: keys message kind %d", gossip.ErrMalformed, q.Kind)
}
