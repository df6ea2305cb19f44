package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/dafnet/daf/gossip"
	"github.com/dafnet/daf/p2p"
	"github.com/dafnet/daf/privacy"
	"github.com/dafnet/daf/seal"
	"github.com/dafnet/daf/wire"
)

// Scope key grants on the node (docs/PROTOCOL.md §3 and §6.2): taking one
// into the keyring, holding those addressed to others, serving them, and
// retiring older epochs after a rotation.

// takeGrant takes one scope key grant, handed over at start (atStart: a
// `daf node --scope-grant` file) or pushed by a peer. One addressed to this
// node, from itself or a scope admin, for the node's own scope, is opened
// into the keyring. One addressed to another node is held to be served to
// it; from a peer only if this node or one of its scope admins issued it,
// since anyone can sign a grant and an unchecked pusher could otherwise fill
// memory with grants to recipients it invents.
func (n *Node) takeGrant(raw []byte, atStart bool) error {
	g, err := seal.UnmarshalScopeKeyGrant(raw)
	if err != nil {
		return err
	}
	if err := g.Verify(); err != nil {
		return fmt.Errorf("%w: %v", gossip.ErrSignature, err)
	}
	recipient, err := p2p.PeerIDFromPublicKey(g.Recipient)
	if err != nil {
		return err
	}
	issuer, err := p2p.PeerIDFromPublicKey(g.Issuer)
	if err != nil {
		return err
	}
	trusted := issuer == n.self || slices.Contains(n.cfg.ScopeAdmins, issuer)
	if recipient != n.self {
		if !trusted && !atStart {
			return fmt.Errorf("%w: grant to %s issued by %s, neither this node nor one of its scope admins", gossip.ErrNotMember, recipient, issuer)
		}
		return n.holdGrant(recipient, g, raw)
	}
	if !trusted {
		return fmt.Errorf("%w: grant of %s/%s epoch %d issued by %s, which is not a scope admin of this node (trust it as the admin with daf node --scope-admin %s)",
			gossip.ErrNotMember, g.Tier, g.Scope, g.Epoch, issuer, issuer)
	}
	err = n.openGrant(g, issuer)
	if err != nil && !atStart {
		// A scope admin's grant this node cannot take (another scope, or a
		// second key for an epoch it holds) leaves it without the admin's
		// key; only the operator can sort that out. A retired epoch pushed
		// again is routine (the admin's node still holds the old grant).
		lvl := slog.LevelWarn
		if errors.Is(err, seal.ErrRetiredScopeKey) {
			lvl = slog.LevelDebug
		}
		n.log.Log(n.runCtx, lvl, "scope key grant of a scope admin refused", "issuer", shortID(issuer), "err", err)
	}
	return err
}

// openGrant opens a trusted grant addressed to this node into the keyring.
func (n *Node) openGrant(g *seal.ScopeKeyGrant, issuer gossip.PeerID) error {
	if !n.memberOf(g.Tier, g.Scope) {
		own := n.cfg.Fed.Federation.Node
		return fmt.Errorf("%w: grant of the %s/%s key, but federation.node is tier %s scope %q",
			gossip.ErrNotMember, g.Tier, g.Scope, own.Tier, own.Scope)
	}
	k, err := g.Open(n.id)
	if err != nil {
		return err
	}
	n.codec.mu.Lock()
	_, notHeld := n.codec.keys.Get(k.Tier, k.Scope, k.Epoch)
	err = n.codec.keys.Add(k)
	newest, _ := n.codec.keys.Latest(k.Tier, k.Scope)
	older := len(n.codec.keys.Epochs(k.Tier, k.Scope)) > 1
	n.codec.mu.Unlock()
	if err != nil || notHeld == nil {
		return err // refused, or the same key again (pushed on every reconnect)
	}
	n.log.Info("scope key received", "scope", k.String(), "issuer", shortID(issuer))
	if older {
		n.retireOlderEpochs(newest)
	}
	return nil
}

// retireOlderEpochs forgets, after the grace period, the epochs of k's
// scope older than k, the newest held. Until then updates sealed just
// before a rotation (by members that have not received the new key yet)
// still open; after it, nothing sealed under an older epoch does, so a
// member a rotation removed stops counting in this node's rounds.
func (n *Node) retireOlderEpochs(k *seal.ScopeKey) {
	time.AfterFunc(n.previousEpochGrace(), func() {
		n.codec.mu.Lock()
		n.codec.keys.Retire(k.Tier, k.Scope, k.Epoch)
		n.codec.mu.Unlock()
		n.log.Info("older scope key epochs retired", "scope", k.Tier+"/"+k.Scope, "below_epoch", k.Epoch)
	})
}

// previousEpochGrace is Config.PreviousEpochGrace or its default: three
// round intervals, at least 30 s (a member that lost its connection to the
// admin redials within 15 s and then gets the new key).
func (n *Node) previousEpochGrace() time.Duration {
	if g := n.cfg.PreviousEpochGrace; g > 0 {
		return g
	}
	return max(3*time.Duration(n.cfg.Fed.Federation.RoundIntervalSecs)*time.Second, 30*time.Second)
}

// memberOf reports whether (tier, scope) is the node's own scope.
func (n *Node) memberOf(tier, scope string) bool {
	for _, m := range n.ownMemberships() {
		if privacy.Tier(m.Tier).String() == tier && m.Scope == scope {
			return true
		}
	}
	return false
}

// heldGrant is a grant addressed to another node, kept to be served to it.
type heldGrant struct {
	issuer, tier, scope string
	epoch               uint32
	raw                 []byte
}

// holdGrant keeps g for recipient: once per issuer, scope and epoch, at
// most maxHeldGrantsPerPeer per recipient and maxHeldGrants in all; past a
// bound the grant is refused (kept grants are never evicted for new ones).
func (n *Node) holdGrant(recipient gossip.PeerID, g *seal.ScopeKeyGrant, raw []byte) error {
	h := heldGrant{issuer: string(g.Issuer), tier: g.Tier, scope: g.Scope, epoch: g.Epoch, raw: bytes.Clone(raw)}
	n.mu.Lock()
	defer n.mu.Unlock()
	held := n.heldGrants[recipient]
	for _, o := range held {
		if o.issuer == h.issuer && o.tier == h.tier && o.scope == h.scope && o.epoch == h.epoch {
			return nil
		}
	}
	if len(held) >= maxHeldGrantsPerPeer || n.heldTotal >= maxHeldGrants {
		return fmt.Errorf("grant to %s not kept: this node holds at most %d grants per node and %d in all", recipient, maxHeldGrantsPerPeer, maxHeldGrants)
	}
	n.heldGrants[recipient] = append(held, h)
	n.heldTotal++
	return nil
}

// grantsFor are the grants held for peer: all of them (tier 0), or those
// of one scope from minEpoch on, as a "want grants" message asks.
func (n *Node) grantsFor(peer gossip.PeerID, tier uint8, scope string, minEpoch uint32) [][]byte {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out [][]byte
	for _, h := range n.heldGrants[peer] {
		if tier == 0 || (h.tier == privacy.Tier(tier).String() && h.scope == scope && h.epoch >= minEpoch) {
			out = append(out, h.raw)
		}
	}
	return out
}

func (n *Node) sendGrants(to gossip.PeerID, grants [][]byte) {
	for _, g := range grants {
		msg, err := (&wire.KeysRequest{Kind: wire.KeysPutGrant, Grant: g}).Marshal()
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(n.runCtx, 10*time.Second)
		err = n.host.Send(ctx, to, gossip.ProtoKeys, msg)
		cancel()
		if err != nil {
			n.log.Debug("grant not delivered", "peer", shortID(to), "err", err)
		}
	}
}

// Bounds of the grants a node keeps for others: per recipient (a few
// scopes times the epochs still in use) and in all (an admin's node holds
// one per member; 4096 grants of at most seal.MaxGrantLen, 746 bytes, are
// under 3 MiB).
const (
	maxHeldGrantsPerPeer = 64
	maxHeldGrants        = 4096
)

// grantsElsewhere names the grants given at start that are addressed to
// other nodes, for the error of a node left without its own key.
func (n *Node) grantsElsewhere() string {
	var out []string
	for _, g := range n.cfg.Grants {
		sg, err := seal.UnmarshalScopeKeyGrant(g.Raw)
		if err != nil || bytes.Equal(sg.Recipient, n.id.Public()) {
			continue
		}
		to, err := p2p.PeerIDFromPublicKey(sg.Recipient)
		if err != nil {
			continue
		}
		out = append(out, fmt.Sprintf("%s is addressed to %s", g.Source, to))
	}
	return strings.Join(out, "; ")
}
