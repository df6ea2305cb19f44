package node

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/dafnet/daf/gossip"
	"github.com/dafnet/daf/seal"
)

// grantFor makes the admin's grant of key to the node whose identity lives
// in dir (created here, as `daf keygen` would).
func grantFor(t *testing.T, admin *seal.Identity, key *seal.ScopeKey, dir string) Grant {
	t.Helper()
	id, _, _, err := LoadOrCreateIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	g, err := seal.NewScopeKeyGrant(rand.Reader, admin, key, seal.NewKeyRecord(id, time.Now().Unix()))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := g.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return Grant{Source: dir, Raw: raw}
}

// A tenant scope set up the way operators do it: the admin's node holds the
// scope key only as a grant to itself plus one grant per member; members
// start with no key at all, only the admin's peer ID. The admin's node hands
// each member its grant when they connect, and all three complete rounds
// together on sealed updates.
func TestMembersGetTheirScopeKeyFromTheAdminsNode(t *testing.T) {
	key, err := seal.NewScopeKey(rand.Reader, "tenant", "lab", 1)
	if err != nil {
		t.Fatal(err)
	}
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	admin, adminID, _, err := LoadOrCreateIdentity(dirs[0])
	if err != nil {
		t.Fatal(err)
	}
	adminGrants := []Grant{grantFor(t, admin, key, dirs[0]), grantFor(t, admin, key, dirs[1]), grantFor(t, admin, key, dirs[2])}

	completed := make([]chan uint64, len(dirs))
	var nodes []*Node
	for i, dir := range dirs {
		completed[i] = make(chan uint64, 64)
		cfg := Config{
			Fed: testFed(3), DataDir: dir, Trainer: NewPullTrainer(float32(i+1)*0.1, 2, 4, 3, 10),
			PingInterval: 200 * time.Millisecond,
			OnRoundDone: func(s RoundSummary) {
				if s.Completed && len(s.Participants) == 3 {
					select {
					case completed[i] <- s.Round:
					default:
					}
				}
			},
		}
		if i == 0 {
			cfg.Grants = adminGrants
		} else {
			cfg.ScopeAdmins = []gossip.PeerID{adminID}
			cfg.Bootstrap = nodes[0].Addrs()
		}
		n, err := New(cfg)
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		nodes = append(nodes, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, len(nodes))
	for _, n := range nodes {
		go func() { done <- n.Run(ctx) }()
	}
	defer func() {
		cancel()
		for range nodes {
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}
	}()
	for i := range nodes {
		select {
		case <-completed[i]:
		case <-time.After(slowdown * 40 * time.Second):
			t.Fatalf("node %d completed no round with all three members", i)
		}
	}
}

// A grant the node cannot use is a configuration error at start, naming
// which grant: one addressed to the node by an issuer it does not trust.
func TestUntrustedGrantRefusedAtStart(t *testing.T) {
	key, err := seal.NewScopeKey(rand.Reader, "tenant", "lab", 1)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := seal.GenerateIdentity(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	_, err = New(Config{Fed: testFed(3), DataDir: dir, Listen: []string{"/ip4/127.0.0.1/tcp/0"},
		Grants: []Grant{grantFor(t, stranger, key, dir)}})
	if !errors.Is(err, ErrConfig) || !errors.Is(err, gossip.ErrNotMember) {
		t.Fatalf("New with a stranger's grant: %v, want ErrConfig and ErrNotMember", err)
	}
}
