package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dafnet/daf/compress"
	"github.com/dafnet/daf/gossip"
	"github.com/dafnet/daf/p2p"
	"github.com/dafnet/daf/privacy"
	"github.com/dafnet/daf/seal"
	"github.com/dafnet/daf/wire"
)

func mustScopeKey(t *testing.T, tier, scope string, epoch uint32) *seal.ScopeKey {
	t.Helper()
	k, err := seal.NewScopeKey(rand.Reader, tier, scope, epoch)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustIdentity(t *testing.T) (*seal.Identity, gossip.PeerID) {
	t.Helper()
	id, err := seal.GenerateIdentity(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := p2p.PeerIDFromPublicKey(id.Public())
	if err != nil {
		t.Fatal(err)
	}
	return id, pid
}

// grantTo is issuer's marshalled grant of key to recipient.
func grantTo(t *testing.T, issuer *seal.Identity, key *seal.ScopeKey, recipient *seal.Identity) []byte {
	t.Helper()
	g, err := seal.NewScopeKeyGrant(rand.Reader, issuer, key, seal.NewKeyRecord(recipient, time.Now().Unix()))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := g.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// putGrant is a peer's /daf/keys/1 grant message to n.
func putGrant(t *testing.T, n *Node, from gossip.PeerID, raw []byte) error {
	t.Helper()
	msg, err := (&wire.KeysRequest{Kind: wire.KeysPutGrant, Grant: raw}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return n.handleKeys(from, msg)
}

// runUntilCleanup runs n until the test ends.
func runUntilCleanup(t *testing.T, n *Node) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func (n *Node) heldGrantCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	total := 0
	for _, gs := range n.heldGrants {
		total += len(gs)
	}
	return total
}

// A grant addressed to the node for a scope it does not belong to (another
// scope name, or the right name in the other sealed tier) is refused at
// start naming both, instead of leaving the node to wait for a key that
// never comes.
func TestGrantForAnotherScopeRefusedAtStart(t *testing.T) {
	admin, adminID := mustIdentity(t)
	for _, key := range []*seal.ScopeKey{mustScopeKey(t, "tenant", "other", 1), mustScopeKey(t, "group", "lab", 1)} {
		t.Run(key.String(), func(t *testing.T) {
			dir := t.TempDir()
			g := grantFor(t, admin, key, dir)
			_, err := New(Config{Fed: testFed(3), DataDir: dir, Listen: []string{"/ip4/127.0.0.1/tcp/0"},
				ScopeAdmins: []gossip.PeerID{adminID}, Grants: []Grant{g}})
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("New: %v, want ErrConfig", err)
			}
			for _, want := range []string{g.Source, key.Tier + "/" + key.Scope, `tier tenant scope "lab"`} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %q", err, want)
				}
			}
		})
	}
}

// A node given only grants addressed to other nodes (say, the admin's own
// grant handed to a member by mistake) and no scope admin says which grant
// went to whom, not only that the key is missing.
func TestGrantForAnotherNodeNamedWhenTheKeyIsMissing(t *testing.T) {
	admin, adminID := mustIdentity(t)
	key := mustScopeKey(t, "tenant", "lab", 1)
	g := Grant{Source: "acme.grant", Raw: grantTo(t, admin, key, admin)}
	_, err := New(Config{Fed: testFed(3), DataDir: t.TempDir(), Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Grants: []Grant{g}})
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "acme.grant") || !strings.Contains(err.Error(), string(adminID)) {
		t.Fatalf("New: %v, want ErrConfig naming acme.grant and its recipient %s", err, adminID)
	}
}

// A member's own grant handed over on the command line still needs its
// issuer trusted; the refusal names the issuer so the fix is one flag away.
func TestUntrustedGrantRefusalNamesTheIssuer(t *testing.T) {
	admin, adminID := mustIdentity(t)
	dir := t.TempDir()
	_, err := New(Config{Fed: testFed(3), DataDir: dir, Listen: []string{"/ip4/127.0.0.1/tcp/0"},
		Grants: []Grant{grantFor(t, admin, mustScopeKey(t, "tenant", "lab", 1), dir)}})
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "scope admin") || !strings.Contains(err.Error(), string(adminID)) {
		t.Fatalf("New: %v, want ErrConfig naming the issuer %s as not a scope admin", err, adminID)
	}
}

// A hostile peer cannot make a node keep what it pushes: grants addressed
// to others are kept only if this node or one of its scope admins issued
// them, only once each, at most maxHeldGrantsPerPeer per recipient and
// maxHeldGrants in all, however many recipients the pusher invents.
func TestHeldGrantsFromPeersAreBounded(t *testing.T) {
	admin, adminID := mustIdentity(t)
	dir := t.TempDir()
	key := mustScopeKey(t, "tenant", "lab", 1)
	n, err := New(Config{Fed: testFed(3), DataDir: dir, Listen: []string{"/ip4/127.0.0.1/tcp/0"},
		ScopeAdmins: []gossip.PeerID{adminID}, Grants: []Grant{grantFor(t, admin, key, dir)}})
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, n)
	_, pusher := mustIdentity(t)

	stranger, _ := mustIdentity(t)
	for i := 0; i < 50; i++ {
		victim, _ := mustIdentity(t)
		if err := putGrant(t, n, pusher, grantTo(t, stranger, key, victim)); !errors.Is(err, gossip.ErrNotMember) {
			t.Fatalf("stranger's grant to another node: %v, want ErrNotMember", err)
		}
	}
	if got := n.heldGrantCount(); got != 0 {
		t.Fatalf("%d grants of a stranger held, want 0", got)
	}

	// The admin's grant to one member, pushed twice, is held once; more
	// epochs than the per-recipient bound keep the bound.
	member, memberID := mustIdentity(t)
	g := grantTo(t, admin, key, member)
	for i := 0; i < 2; i++ {
		if err := putGrant(t, n, pusher, g); err != nil {
			t.Fatalf("admin's grant to a member: %v", err)
		}
	}
	if got := n.heldGrantCount(); got != 1 {
		t.Fatalf("the same grant pushed twice: %d held, want 1", got)
	}
	for e := uint32(2); e <= maxHeldGrantsPerPeer+10; e++ {
		_ = putGrant(t, n, pusher, grantTo(t, admin, mustScopeKey(t, "tenant", "lab", e), member))
	}
	n.mu.Lock()
	perMember := len(n.heldGrants[memberID])
	n.mu.Unlock()
	if perMember != maxHeldGrantsPerPeer {
		t.Fatalf("%d grants held for one member, want the bound %d", perMember, maxHeldGrantsPerPeer)
	}

	// Many recipients: the total stays bounded.
	for i := 0; i < maxHeldGrants+20-perMember; i++ {
		victim, _ := mustIdentity(t)
		_ = putGrant(t, n, pusher, grantTo(t, admin, key, victim))
	}
	if got := n.heldGrantCount(); got != maxHeldGrants {
		t.Fatalf("%d grants held in all, want the bound %d", got, maxHeldGrants)
	}
}

// "want grants" (kind 2) is answered with the grants held for the asker in
// the scope it names, from the epoch it names (docs/PROTOCOL.md §6.2).
func TestWantGrantsServesTheAskedScopeAndEpochs(t *testing.T) {
	admin, adminID := mustIdentity(t)
	member, memberID := mustIdentity(t)
	other, _ := mustIdentity(t)
	dir := t.TempDir()
	own := grantFor(t, admin, mustScopeKey(t, "tenant", "lab", 3), dir)
	var grants []Grant
	want := map[string]bool{}
	for _, k := range []*seal.ScopeKey{
		mustScopeKey(t, "tenant", "lab", 1), mustScopeKey(t, "tenant", "lab", 2), mustScopeKey(t, "tenant", "lab", 3),
		mustScopeKey(t, "group", "lab", 3), mustScopeKey(t, "tenant", "lab2", 3),
	} {
		raw := grantTo(t, admin, k, member)
		grants = append(grants, Grant{Source: k.String(), Raw: raw})
		if k.Tier == "tenant" && k.Scope == "lab" && k.Epoch >= 2 {
			want[string(raw)] = true
		}
	}
	grants = append(grants, Grant{Source: "other", Raw: grantTo(t, admin, mustScopeKey(t, "tenant", "lab", 3), other)}, own)
	n, err := New(Config{Fed: testFed(3), DataDir: dir, Listen: []string{"/ip4/127.0.0.1/tcp/0"},
		ScopeAdmins: []gossip.PeerID{adminID}, Grants: grants})
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, n)
	got := n.grantsFor(memberID, uint8(privacy.Tenant), "lab", 2)
	if len(got) != len(want) {
		t.Fatalf("%d grants served, want %d", len(got), len(want))
	}
	for _, g := range got {
		if !want[string(g)] {
			t.Errorf("served a grant outside tenant/lab epoch ≥ 2")
		}
	}
	if all := n.grantsFor(memberID, 0, "", 0); len(all) != 5 {
		t.Errorf("all grants for the member: %d, want 5", len(all))
	}
}

// sealedEnvelope is an update of source for round 7 sealed under key.
func sealedEnvelope(t *testing.T, source *seal.Identity, key *seal.ScopeKey) gossip.Envelope {
	t.Helper()
	c, err := newEnvelopeCodec(source, "daf", 3, wire.DefaultLimits(), compress.DefaultOptions(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.addKey(key); err != nil {
		t.Fatal(err)
	}
	tier, _ := privacy.ParseTier(key.Tier)
	msg, err := c.Pack(7, gossip.Membership{Tier: tier, Scope: key.Scope}, 3, NewPullTrainer(0.2, 2, 3, 3, 7).Target)
	if err != nil {
		t.Fatal(err)
	}
	env, err := c.Unpack(msg)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// Rotation revokes: once a member holds epoch 2, what is sealed under epoch
// 1 (by the member the rotation removed, who has no other key) still opens
// for a grace period and then never again, even if someone pushes the old
// grant back. Without this the removed member stays a participant of every
// round of the members that remain.
func TestOlderEpochsStopOpeningAfterTheGrace(t *testing.T) {
	admin, adminID := mustIdentity(t)
	removed, _ := mustIdentity(t)
	dir := t.TempDir()
	e1, e2 := mustScopeKey(t, "tenant", "lab", 1), mustScopeKey(t, "tenant", "lab", 2)
	g1 := grantFor(t, admin, e1, dir)
	const grace = 300 * time.Millisecond
	n, err := New(Config{Fed: testFed(3), DataDir: dir, Listen: []string{"/ip4/127.0.0.1/tcp/0"},
		ScopeAdmins: []gossip.PeerID{adminID}, Grants: []Grant{g1}, PreviousEpochGrace: grace})
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, n)
	old, current := sealedEnvelope(t, removed, e1), sealedEnvelope(t, removed, e2)
	if _, err := n.codec.Open(old); err != nil {
		t.Fatalf("epoch 1 before any rotation: %v", err)
	}
	_, pusher := mustIdentity(t)
	if err := putGrant(t, n, pusher, grantFor(t, admin, e2, dir).Raw); err != nil {
		t.Fatalf("epoch 2 grant: %v", err)
	}
	rotated := time.Now()
	if _, err := n.codec.Open(old); err != nil && time.Since(rotated) < grace {
		t.Fatalf("epoch 1 within the grace: %v", err)
	}
	waitCond(t, "epoch 1 to stop opening", 10*time.Second, func() bool {
		_, err := n.codec.Open(old)
		return errors.Is(err, gossip.ErrSeal)
	})
	if _, err := n.codec.Open(current); err != nil {
		t.Fatalf("epoch 2 after the grace: %v", err)
	}
	if err := putGrant(t, n, pusher, g1.Raw); err == nil {
		t.Error("the epoch 1 grant pushed again after retirement was taken")
	}
	if _, err := n.codec.Open(old); !errors.Is(err, gossip.ErrSeal) {
		t.Errorf("epoch 1 after its grant was pushed again: %v, want ErrSeal", err)
	}
}

// An admin restarting with both the old and the new key (a rotation done
// while members are still on the old one) retires the old one the same way.
func TestOlderEpochsGivenAtStartRetireToo(t *testing.T) {
	admin, adminID := mustIdentity(t)
	removed, _ := mustIdentity(t)
	dir := t.TempDir()
	e1, e2 := mustScopeKey(t, "tenant", "lab", 1), mustScopeKey(t, "tenant", "lab", 2)
	n, err := New(Config{Fed: testFed(3), DataDir: dir, Listen: []string{"/ip4/127.0.0.1/tcp/0"},
		ScopeAdmins: []gossip.PeerID{adminID}, Grants: []Grant{grantFor(t, admin, e2, dir), grantFor(t, admin, e1, dir)},
		PreviousEpochGrace: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, n)
	old := sealedEnvelope(t, removed, e1)
	waitCond(t, "epoch 1 to stop opening", 10*time.Second, func() bool {
		_, err := n.codec.Open(old)
		return errors.Is(err, gossip.ErrSeal)
	})
	if _, err := n.codec.Open(sealedEnvelope(t, removed, e2)); err != nil {
		t.Fatalf("epoch 2: %v", err)
	}
}

// lockedBuffer is a log sink several goroutines write to.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A scope admin's grant the node cannot take leaves it without the admin's
// key; the refusal reaches the pusher only as a debug line there, so the
// node itself warns. Here the admin ran "scope new" twice for epoch 1.
func TestRefusedGrantOfAScopeAdminIsWarned(t *testing.T) {
	admin, adminID := mustIdentity(t)
	dir := t.TempDir()
	var logs lockedBuffer
	n, err := New(Config{Fed: testFed(3), DataDir: dir, Listen: []string{"/ip4/127.0.0.1/tcp/0"},
		ScopeAdmins: []gossip.PeerID{adminID}, Grants: []Grant{grantFor(t, admin, mustScopeKey(t, "tenant", "lab", 1), dir)},
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	runUntilCleanup(t, n)
	_, pusher := mustIdentity(t)
	err = putGrant(t, n, pusher, grantFor(t, admin, mustScopeKey(t, "tenant", "lab", 1), dir).Raw)
	if !errors.Is(err, seal.ErrBadScopeKey) {
		t.Fatalf("second key for epoch 1: %v, want ErrBadScopeKey", err)
	}
	if got := logs.String(); !strings.Contains(got, "level=WARN") || !strings.Contains(got, "already holds a different key") {
		t.Errorf("no warning naming the conflict; logs:\n%s", got)
	}
}
