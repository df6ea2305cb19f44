package node

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dafnet/daf/adapter"
	"github.com/dafnet/daf/aggregate"
	"github.com/dafnet/daf/compress"
	"github.com/dafnet/daf/config"
	"github.com/dafnet/daf/defense"
	"github.com/dafnet/daf/gossip"
	"github.com/dafnet/daf/p2p"
	"github.com/dafnet/daf/privacy"
	"github.com/dafnet/daf/round"
	"github.com/dafnet/daf/seal"
	"github.com/dafnet/daf/wire"
)

// Config configures a node. Fed, DataDir and Listen are required in
// practice; the rest have defaults.
type Config struct {
	// Fed is the validated federation.toml.
	Fed config.Config
	// DataDir holds identity.key, state.db and adapters/.
	DataDir string
	// Listen multiaddrs (default TCP and QUIC on 127.0.0.1, system ports)
	// and Bootstrap peers (full multiaddrs with /p2p/<id>).
	Listen, Bootstrap []string
	// Trainer trains the local update each round; nil makes a node that
	// relays and aggregates but contributes nothing.
	Trainer Trainer
	// Genesis of the round slots; zero = the Unix epoch. Every node of a
	// federation must use the same value.
	Genesis time.Time
	// FederationID is signed into every envelope; nodes of another
	// federation are refused. Default "daf".
	FederationID string
	// ScopeKeys are the Group/Tenant keys the node holds at start (more
	// arrive as grants on /daf/keys/1 from ScopeAdmins).
	ScopeKeys []*seal.ScopeKey
	// ScopeAdmins are the peers whose scope key grants the node accepts.
	// The node always trusts grants it issued itself (a scope admin keeps
	// its scope key as a grant addressed to itself).
	ScopeAdmins []gossip.PeerID
	// Grants are marshalled scope key grants handed over at start (`daf
	// node --scope-grant`): one addressed to this node is opened into the
	// keyring (its issuer must be the node itself or a ScopeAdmin, its scope
	// the node's own); one addressed to another node is held and pushed to
	// that node whenever it connects, which is how an admin's node admits
	// members.
	Grants []Grant
	// PreviousEpochGrace is how long the older epochs of a scope still open
	// once a newer key is held (default 3 round intervals, at least 30 s).
	// After it only the newer key opens, so a member removed by a rotation
	// no longer counts in this node's rounds.
	PreviousEpochGrace time.Duration
	// OnRoundDone, if set, is called once per finished (round, scope),
	// completed or skipped, in round order, on a goroutine of its own.
	OnRoundDone func(RoundSummary)
	// MaxMessageBytes bounds an envelope (default 64 MiB).
	MaxMessageBytes int64
	// Logger receives structured logs (default: discarded).
	Logger *slog.Logger
	// Metrics is the node's registry (default: a new one).
	Metrics *Metrics
	// PingInterval for latency measurement (default 10 s; tests use less).
	PingInterval time.Duration
}

// Grant is a marshalled scope key grant and where it came from (a file
// name, for errors).
type Grant struct {
	Source string
	Raw    []byte
}

// RoundSummary describes one finished round at one node.
type RoundSummary struct {
	Round        uint64
	Scope        string
	Completed    bool
	SkipReason   string
	Detail       string
	Participants []gossip.PeerID
	// Adapter is a copy of the node's model after the round (nil while the
	// node has none).
	Adapter *adapter.Update
	// Duration is from the round's slot start to now.
	Duration time.Duration
}

// Status is a snapshot of the node for status output and tests.
type Status struct {
	PeerID          gossip.PeerID      `json:"peer_id"`
	Addrs           []string           `json:"addrs"`
	Round           uint64             `json:"round"`
	Phase           string             `json:"phase"`
	Peers           int                `json:"peers_connected"`
	KnownPeers      int                `json:"peers_known"`
	RoundsCompleted uint64             `json:"rounds_completed"`
	RoundsSkipped   map[string]uint64  `json:"rounds_skipped"`
	LastApplied     uint64             `json:"last_applied_round"`
	HasAdapter      bool               `json:"has_adapter"`
	EpsilonSpent    map[string]float64 `json:"epsilon_spent"`
	Received        map[string]uint64  `json:"updates_received"`
}

// Node is one running DAF node. Build it with New, run it with Run.
type Node struct {
	cfg     Config
	log     *slog.Logger
	id      *seal.Identity
	self    gossip.PeerID
	store   *Store
	host    *p2p.Host
	codec   *envelopeCodec
	machine *round.Machine
	metrics *Metrics
	engine  *aggregate.Engine
	ledger  *privacy.Ledger
	stats   *statsCache // nil without byzantine_detection
	latency *gossip.LatencyMatrix
	rng     *rand.Rand // loop goroutine only
	noise   *rand.Rand // training goroutine only: DP noise
	record  []byte     // own signed key record

	events chan func(time.Time) round.Ready
	// transfers: releases whose body a peer is sending us, closed when the
	// transfer ends; offers of the same release wait on them. Loop
	// goroutine only.
	transfers map[gossip.Digest]chan struct{}
	notify    chan RoundSummary
	open      *stage
	send      *stage
	combine   *stage
	runCtx    context.Context // cancelled when Run ends
	stop      context.CancelFunc
	running   atomic.Bool
	started   time.Time
	bg        sync.WaitGroup
	runOnce   sync.Once
	closeErr  error

	mu          sync.Mutex // guards the fields below
	current     *adapter.Update
	lastApplied uint64
	status      Status
	peerRecords map[gossip.PeerID][]byte // verified key records, for peer exchange
	memberships map[gossip.PeerID][]wire.Membership
	heldGrants  map[gossip.PeerID][]heldGrant // grants addressed to others, to serve them
	heldTotal   int                           // grants in heldGrants
	statsBase   round.Stats
}

// Errors of node construction.
var (
	ErrConfig = errors.New("node config")
)

// New opens the data directory (identity, state, adapters), starts the
// libp2p host and builds the round machine. The node does nothing until
// Run; Addrs is valid as soon as New returns.
func New(cfg Config) (*Node, error) {
	if cfg.DataDir == "" {
		return nil, fmt.Errorf("%w: DataDir is empty", ErrConfig)
	}
	if cfg.FederationID == "" {
		cfg.FederationID = "daf"
	}
	if cfg.MaxMessageBytes <= 0 {
		cfg.MaxMessageBytes = wire.DefaultMaxEnvelope
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	if err := cfg.Fed.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	id, self, _, err := LoadOrCreateIdentity(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, AdaptersDir), 0o700); err != nil {
		return nil, fmt.Errorf("data directory %s: %w", cfg.DataDir, err)
	}
	store, err := OpenStore(filepath.Join(cfg.DataDir, StateFile))
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg: cfg, log: cfg.Logger.With("node", shortID(self)), id: id, self: self, store: store,
		metrics: cfg.Metrics, latency: gossip.NewLatencyMatrix(),
		events:      make(chan func(time.Time) round.Ready, 256),
		transfers:   map[gossip.Digest]chan struct{}{},
		notify:      make(chan RoundSummary, 256),
		peerRecords: map[gossip.PeerID][]byte{},
		memberships: map[gossip.PeerID][]wire.Membership{},
		heldGrants:  map[gossip.PeerID][]heldGrant{},
	}
	n.runCtx, n.stop = context.WithCancel(context.Background())
	if err := n.build(); err != nil {
		store.Close()
		if n.host != nil {
			n.host.Close()
		}
		return nil, err
	}
	return n, nil
}

// build wires everything that New needs beyond the data directory.
func (n *Node) build() error {
	f := n.cfg.Fed.Federation
	n.rng = rand.New(rand.NewChaCha8(seedFrom(crand.Reader)))
	n.noise = rand.New(rand.NewChaCha8(seedFrom(crand.Reader)))
	rec, err := seal.NewKeyRecord(n.id, time.Now().Unix()).Marshal()
	if err != nil {
		return fmt.Errorf("key record: %w", err)
	}
	n.record = rec

	lim := wire.DefaultLimits()
	lim.MaxEnvelope = int(n.cfg.MaxMessageBytes)
	copts := compress.Options{SparsityThreshold: f.Compression.SparsityThreshold, QuantizationBits: f.Compression.QuantizationBits}
	n.codec, err = newEnvelopeCodec(n.id, n.cfg.FederationID, f.Gossip.MaxHops, lim, copts, crand.Reader)
	if err != nil {
		return err
	}
	for _, k := range n.cfg.ScopeKeys {
		if err := n.codec.addKey(k); err != nil {
			return fmt.Errorf("scope key %s: %w", k, err)
		}
	}
	for _, g := range n.cfg.Grants {
		if err := n.takeGrant(g.Raw, true); err != nil {
			return fmt.Errorf("%w: scope key grant %s: %w", ErrConfig, g.Source, err)
		}
	}

	n.ledger, err = privacy.NewLedger(n.store, f.Privacy.EpsilonBudget, f.Privacy.Delta)
	if err != nil {
		return err
	}
	n.engine, err = aggregate.NewEngine(aggregate.EngineConfigFromConfig(n.cfg.Fed))
	if err != nil {
		return fmt.Errorf("%w: aggregation: %w", ErrConfig, err)
	}

	rc, err := round.FromConfig(n.cfg.Fed, n.self, n.cfg.Trainer != nil)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if !n.cfg.Genesis.IsZero() {
		rc.Genesis = n.cfg.Genesis
	}
	for _, m := range rc.Memberships {
		if sealedTier(m.Tier) {
			n.codec.mu.RLock()
			_, kerr := n.codec.keys.Latest(m.Tier.String(), m.Scope)
			n.codec.mu.RUnlock()
			if kerr != nil && len(n.cfg.ScopeAdmins) == 0 {
				err := fmt.Errorf("%w: federation.node.tier %s scope %q: no scope key and no scope admin to grant one", ErrConfig, m.Tier, m.Scope)
				if elsewhere := n.grantsElsewhere(); elsewhere != "" {
					err = fmt.Errorf("%w (of the grants given, %s, not to this node %s)", err, elsewhere, n.self)
				}
				return err
			}
		}
	}
	deps := round.Deps{
		Codec:    n.codec,
		Selector: &gossip.AdaptiveSelector{Self: n.self, Latency: n.latency},
		Rand:     n.rng,
	}
	dcfg := defense.ConfigFromFederation(n.cfg.Fed)
	if f.Security.ByzantineDetection {
		n.stats = newStatsCache(n.store)
		det := defense.NewDetector(dcfg, n.stats)
		deps.Filter = defense.GossipFilter{Detector: det, Base: n.model}
		deps.Screen = sybilScreen{cfg: dcfg, node: n}
	}
	st, err := n.restoreState()
	if err != nil {
		return err
	}
	n.machine, err = round.New(rc, deps, st)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := n.loadAdapter(); err != nil {
		return err
	}

	n.host, err = p2p.New(p2p.Config{
		Identity: n.id.Private(), Listen: n.cfg.Listen, Bootstrap: n.cfg.Bootstrap,
		MaxMessageBytes: n.cfg.MaxMessageBytes, MaxOfferBytes: wire.MaxOffer, Logger: n.log, PingInterval: n.cfg.PingInterval,
		OnPeer: n.onPeer,
	})
	if err != nil {
		return err
	}
	n.registerMetrics()
	n.status = Status{PeerID: n.self, Addrs: n.host.Addrs()}
	return nil
}

func seedFrom(r io.Reader) [32]byte {
	var s [32]byte
	if _, err := io.ReadFull(r, s[:]); err != nil {
		// crypto/rand does not fail on supported platforms; a fixed seed
		// here would silently weaken DP noise, so refuse to continue.
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return s
}

func shortID(id gossip.PeerID) string {
	if len(id) > 12 {
		return string(id[len(id)-8:])
	}
	return string(id)
}

// restoreState rebuilds the round machine's State from state.db.
func (n *Node) restoreState() (round.State, error) {
	var st round.State
	peers, err := n.store.Peers()
	if err != nil {
		return st, err
	}
	reps, err := n.store.Reputations()
	if err != nil {
		return st, err
	}
	for _, p := range peers {
		if r, ok := reps[string(p.ID)]; ok {
			p.Reputation = r
		}
		st.Peers = append(st.Peers, p)
	}
	if v, ok, err := n.store.Meta(metaReleased); err != nil {
		return st, err
	} else if ok {
		if len(v) != 8 {
			return st, fmt.Errorf("%w: meta/%s has %d bytes", ErrCorruptState, metaReleased, len(v))
		}
		st.Released, st.HasReleased = binary.BigEndian.Uint64(v), true
	}
	return st, nil
}

const (
	metaReleased    = "released_round"
	currentAdapter  = "current.safetensors"
	sendTimeout     = 30 * time.Second
	peerRefreshRate = 2 * time.Second
	peerPushEvery   = 15 // refreshes between periodic peer-list pushes (30 s)
)

// loadAdapter reads adapters/current.safetensors if a previous run left one.
func (n *Node) loadAdapter() error {
	path := filepath.Join(n.cfg.DataDir, AdaptersDir, currentAdapter)
	u, err := adapter.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("restore adapter: %w", err)
	}
	n.current = u
	n.lastApplied = u.Meta.Round
	return nil
}

func (n *Node) registerMetrics() {
	n.metrics.BindBytes(n.host.BytesSent, n.host.BytesReceived)
}

// ID is the node's peer ID.
func (n *Node) ID() gossip.PeerID { return n.self }

// Addrs are the node's listen addresses with /p2p/<id>, ready to pass as
// another node's Bootstrap.
func (n *Node) Addrs() []string { return n.host.Addrs() }

// Metrics is the node's Prometheus registry wrapper.
func (n *Node) Metrics() *Metrics { return n.metrics }

// Adapters returns a copy of the node's current model (nil before the
// node has one).
func (n *Node) Adapters() *adapter.Update {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.current == nil {
		return nil
	}
	return n.current.Clone()
}

// Status returns a snapshot of the node.
func (n *Node) Status() Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.status
	s.Addrs = n.host.Addrs()
	s.Peers = len(n.host.Peers())
	s.LastApplied = n.lastApplied
	s.HasAdapter = n.current != nil
	return s
}

// Run drives the node until ctx ends, then shuts it down cleanly: the
// pipeline drains, the host closes, state.db is closed. A Node runs once.
func (n *Node) Run(ctx context.Context) error {
	err := errors.New("node: Run called twice")
	n.runOnce.Do(func() { err = n.run(ctx) })
	return err
}

func (n *Node) run(parent context.Context) error {
	ctx := n.runCtx
	defer n.stop()
	stopWatch := context.AfterFunc(parent, n.stop)
	defer stopWatch()
	n.started = time.Now()
	workers := runtime.GOMAXPROCS(0)
	n.open = newStage("open", workers, 4*workers, n.metrics)
	n.send = newStage("send", 16, 1024, n.metrics)
	n.combine = newStage("aggregate", 1, 4, n.metrics)
	n.host.HandleOffered(gossip.ProtoDelta, n.handleDelta)
	n.host.Handle(gossip.ProtoPeers, n.handlePeers)
	n.host.Handle(gossip.ProtoKeys, n.handleKeys)
	n.bg.Add(1)
	go n.notifier()
	n.running.Store(true)
	for _, p := range n.host.Peers() {
		n.onPeer(p, true)
	}
	n.log.Info("node running", "peer_id", n.self, "addrs", n.host.Addrs(), "round_interval", time.Duration(n.cfg.Fed.Federation.RoundIntervalSecs)*time.Second)

	err := n.loop(ctx)
	n.stop()

	// Shutdown order: stop accepting network work, drain the pipeline,
	// then close the host and the store that its handlers write to.
	n.open.Close()
	n.combine.Close()
	n.send.Close()
	herr := n.host.Close()
	if n.stats != nil {
		var b Batch
		n.stats.drain(&b)
		herr = errors.Join(herr, n.store.Commit(&b))
	}
	close(n.notify)
	n.bg.Wait()
	serr := n.store.Close()
	n.log.Info("node stopped")
	return errors.Join(err, herr, serr)
}

// submit hands an event to the loop goroutine; false if the node stopped.
func (n *Node) submit(ev func(time.Time) round.Ready) bool {
	select {
	case n.events <- ev:
		return true
	case <-n.runCtx.Done():
		return false
	}
}

// loop is the one goroutine that owns the round machine.
func (n *Node) loop(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	refresh := time.NewTicker(peerRefreshRate)
	defer refresh.Stop()
	pushes := 0
	for {
		var rd round.Ready
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
			rd = n.machine.Tick(time.Now())
		case ev := <-n.events:
			rd = ev(time.Now())
		case <-refresh.C:
			n.refreshPeers(time.Now())
			if pushes++; pushes%peerPushEvery == 0 {
				n.pushPeersAll()
			}
			rd = n.machine.Tick(time.Now())
		}
		if err := n.carry(ctx, rd); err != nil {
			return err
		}
		n.publishStatus()
		next := n.machine.NextDeadline()
		d := time.Until(next)
		if next.IsZero() || d > time.Second {
			d = time.Second
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(max(d, time.Millisecond))
	}
}

// pushPeersAll sends our peer list to every connected peer, off the loop.
func (n *Node) pushPeersAll() {
	for _, p := range n.host.Peers() {
		n.bg.Add(1)
		go func() {
			defer n.bg.Done()
			ctx, cancel := context.WithTimeout(n.runCtx, 10*time.Second)
			defer cancel()
			n.pushPeers(ctx, p)
		}()
	}
}

// refreshPeers marks connected peers as seen and folds ping latencies into
// the adaptive selector's matrix.
func (n *Node) refreshPeers(now time.Time) {
	table := n.machine.Engine().Table()
	for _, p := range n.host.Peers() {
		table.Seen(p, now)
		if d, ok := n.host.Latency(p); ok {
			n.latency.Observe(n.self, p, d)
		}
	}
}
