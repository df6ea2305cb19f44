package p2p

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dafnet/daf/gossip"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// Config configures a Host. Zero durations and sizes take the defaults below.
type Config struct {
	// Identity is the node's Ed25519 key; its public half is the peer ID.
	Identity ed25519.PrivateKey
	// Listen multiaddrs; default TCP and QUIC on 127.0.0.1, ports chosen by
	// the system.
	Listen []string
	// Bootstrap peers as full multiaddrs ending in /p2p/<peer ID>. They are
	// dialled at start and redialled whenever the connection is lost.
	Bootstrap []string
	// MaxMessageBytes bounds one message, or the body of a two-step one
	// (default 64 MiB, DESIGN §5).
	MaxMessageBytes int64
	// MaxOfferBytes bounds the offer of a two-step message (default 64 KiB;
	// a DAF envelope's offer is at most wire.MaxOffer, 663 bytes).
	MaxOfferBytes int64
	// InboundBudgetBytes bounds the inbound payload bytes held at once over
	// all streams (default 4 × MaxMessageBytes).
	InboundBudgetBytes int64
	// StreamTimeout bounds one request/verdict exchange when the caller's
	// context has no deadline (default 2 min: 64 MiB over a slow link).
	StreamTimeout time.Duration
	// PingInterval is how often connected peers are pinged (default 10 s).
	PingInterval time.Duration
	// RedialInterval is the base delay between redials of a lost peer; it
	// doubles per failure up to MaxRedialInterval (defaults 1 s and 15 s).
	RedialInterval    time.Duration
	MaxRedialInterval time.Duration
	// MaxKnownPeers bounds the peers learned through peer exchange
	// (default 1024).
	MaxKnownPeers int
	// OnPeer, if set, is told when a peer becomes connected or loses its
	// last connection. It runs on its own goroutine.
	OnPeer func(id gossip.PeerID, connected bool)
	Logger *slog.Logger
}

func (c *Config) applyDefaults() {
	if len(c.Listen) == 0 {
		c.Listen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.MaxOfferBytes <= 0 {
		c.MaxOfferBytes = 64 << 10
	}
	if c.InboundBudgetBytes < c.MaxMessageBytes {
		c.InboundBudgetBytes = 4 * c.MaxMessageBytes
	}
	if c.StreamTimeout <= 0 {
		c.StreamTimeout = 2 * time.Minute
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 10 * time.Second
	}
	if c.RedialInterval <= 0 {
		c.RedialInterval = time.Second
	}
	if c.MaxRedialInterval < c.RedialInterval {
		c.MaxRedialInterval = 15 * time.Second
		if c.MaxRedialInterval < c.RedialInterval {
			c.MaxRedialInterval = c.RedialInterval
		}
	}
	if c.MaxKnownPeers <= 0 {
		c.MaxKnownPeers = 1024
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// Peers learned at run time expire from the peerstore like libp2p's own;
// bootstrap peers never do.
var (
	permanentTTL time.Duration = peerstore.PermanentAddrTTL
	learnedTTL                 = peerstore.AddressTTL
)

// Host is a libp2p host speaking DAF's stream protocols. It implements
// gossip.Transport.
type Host struct {
	cfg    Config
	h      host.Host
	log    *slog.Logger
	budget *byteBudget

	mu       sync.Mutex
	handlers map[string]func(gossip.PeerID, []byte) error
	known    map[peer.ID]*knownPeer

	bytesSent     atomic.Uint64
	bytesReceived atomic.Uint64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed bool // under mu; no goroutine starts once set
}

// knownPeer is a peer the host keeps trying to be connected to.
type knownPeer struct {
	bootstrap bool
	failures  int
	nextDial  time.Time
	dialing   bool
	up        bool // announced as connected to OnPeer
}

var _ gossip.Transport = (*Host)(nil)

// New starts a host listening on cfg.Listen and begins dialling the
// bootstrap peers. Close stops it.
func New(cfg Config) (*Host, error) {
	cfg.applyDefaults()
	key, err := libp2pKey(cfg.Identity)
	if err != nil {
		return nil, err
	}
	boot := make([]peer.AddrInfo, 0, len(cfg.Bootstrap))
	for _, s := range cfg.Bootstrap {
		ai, err := ParseBootstrap(s)
		if err != nil {
			return nil, fmt.Errorf("bootstrap %q: %w", s, err)
		}
		boot = append(boot, ai)
	}
	listen := make([]ma.Multiaddr, 0, len(cfg.Listen))
	for _, s := range cfg.Listen {
		a, err := ParseListen(s)
		if err != nil {
			return nil, fmt.Errorf("listen %q: %w", s, err)
		}
		listen = append(listen, a)
	}
	limiter := rcmgr.NewFixedLimiter(rcmgr.DefaultLimits.AutoScale())
	rm, err := rcmgr.NewResourceManager(limiter)
	if err != nil {
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	h, err := libp2p.New(
		libp2p.Identity(key),
		libp2p.ListenAddrs(listen...),
		// No SO_REUSEPORT: with it a second node started on a taken port
		// listens too, and the kernel splits inbound connections between
		// the two at random. Outbound dials then use ephemeral ports, which
		// only matters for TCP hole punching, and relays are off anyway.
		libp2p.Transport(tcp.NewTCPTransport, tcp.DisableReuseport()),
		libp2p.Transport(quic.NewTransport),
		libp2p.DefaultSecurity,
		libp2p.DefaultMuxers,
		libp2p.ResourceManager(rm),
		libp2p.Ping(true),
		libp2p.DisableRelay(),
		// Metrics go to the node's own registry, never the global one.
		libp2p.DisableMetrics(),
	)
	if err != nil {
		rm.Close()
		return nil, fmt.Errorf("libp2p host on %v: %w", cfg.Listen, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	x := &Host{
		cfg:      cfg,
		h:        h,
		log:      cfg.Logger,
		budget:   newByteBudget(cfg.InboundBudgetBytes),
		handlers: map[string]func(gossip.PeerID, []byte) error{},
		known:    map[peer.ID]*knownPeer{},
		ctx:      ctx,
		cancel:   cancel,
	}
	for _, ai := range boot {
		if ai.ID == h.ID() {
			continue
		}
		h.Peerstore().AddAddrs(ai.ID, ai.Addrs, permanentTTL)
		x.known[ai.ID] = &knownPeer{bootstrap: true}
	}
	h.Network().Notify(&network.NotifyBundle{
		ConnectedF:    x.onConnected,
		DisconnectedF: x.onDisconnected,
	})
	x.wg.Add(2)
	go x.redialLoop()
	go x.pingLoop()
	return x, nil
}

// Close stops the background loops and the libp2p host.
func (x *Host) Close() error {
	x.mu.Lock()
	x.closed = true
	x.mu.Unlock()
	x.cancel()
	err := x.h.Close()
	x.wg.Wait()
	return err
}

// Self is this host's peer ID.
func (x *Host) Self() gossip.PeerID { return gossip.PeerID(x.h.ID().String()) }

// Addrs are the host's listen addresses as full multiaddrs with /p2p/<id>,
// ready to pass to another node's bootstrap list.
func (x *Host) Addrs() []string {
	var out []string
	for _, a := range x.h.Addrs() {
		out = append(out, a.String()+"/p2p/"+x.h.ID().String())
	}
	sort.Strings(out)
	return out
}

// Peers are the peers with at least one open connection, sorted.
func (x *Host) Peers() []gossip.PeerID {
	ps := x.h.Network().Peers()
	out := make([]gossip.PeerID, 0, len(ps))
	for _, p := range ps {
		if p != x.h.ID() {
			out = append(out, gossip.PeerID(p.String()))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Latency is the moving average of ping round trips to a peer, and false
// while no ping has completed yet.
func (x *Host) Latency(id gossip.PeerID) (time.Duration, bool) {
	pid, err := peer.Decode(string(id))
	if err != nil {
		return 0, false
	}
	d := x.h.Peerstore().LatencyEWMA(pid)
	return d, d > 0
}

// BytesSent and BytesReceived count DAF message bytes (frames, not libp2p
// overhead) since the host started: every frame written in full, whether
// the peer then took it or refused it, and every frame read.
func (x *Host) BytesSent() uint64     { return x.bytesSent.Load() }
func (x *Host) BytesReceived() uint64 { return x.bytesReceived.Load() }

// Connect dials a peer given as a full multiaddr and keeps it as a
// bootstrap peer (redialled when lost).
func (x *Host) Connect(ctx context.Context, addr string) error {
	ai, err := peer.AddrInfoFromString(addr)
	if err != nil {
		return fmt.Errorf("%w: %q: %v", ErrBadAddr, addr, err)
	}
	if ai.ID == x.h.ID() {
		return nil
	}
	x.h.Peerstore().AddAddrs(ai.ID, ai.Addrs, permanentTTL)
	x.mu.Lock()
	if kp := x.known[ai.ID]; kp != nil {
		kp.bootstrap = true
	} else {
		x.known[ai.ID] = &knownPeer{bootstrap: true}
	}
	x.mu.Unlock()
	if err := x.h.Connect(ctx, *ai); err != nil {
		return fmt.Errorf("connect %s: %w", ai.ID, err)
	}
	return nil
}

// AddAddrs records addresses learned for a peer (from peer exchange) and
// keeps dialling it until it fails too often. Unparsable addresses are
// skipped; the error names the first.
func (x *Host) AddAddrs(id gossip.PeerID, addrs []string) error {
	pid, err := peer.Decode(string(id))
	if err != nil {
		return fmt.Errorf("peer %q: %w", id, err)
	}
	if pid == x.h.ID() {
		return nil
	}
	var firstErr error
	var mas []ma.Multiaddr
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("%w: peer %s: %q: %v", ErrBadAddr, id, s, err)
			}
			continue
		}
		mas = append(mas, a)
	}
	x.h.Peerstore().AddAddrs(pid, mas, learnedTTL)
	x.mu.Lock()
	if _, ok := x.known[pid]; !ok && len(x.known) < x.cfg.MaxKnownPeers {
		x.known[pid] = &knownPeer{}
	}
	x.mu.Unlock()
	return firstErr
}

// PeerAddrs are the addresses the host knows for a peer.
func (x *Host) PeerAddrs(id gossip.PeerID) []string {
	pid, err := peer.Decode(string(id))
	if err != nil {
		return nil
	}
	var out []string
	for _, a := range x.h.Peerstore().Addrs(pid) {
		out = append(out, a.String())
	}
	sort.Strings(out)
	return out
}

func (x *Host) onConnected(_ network.Network, c network.Conn) {
	p := c.RemotePeer()
	x.mu.Lock()
	kp := x.known[p]
	if kp == nil && len(x.known) < x.cfg.MaxKnownPeers {
		kp = &knownPeer{}
		x.known[p] = kp
	}
	first := false
	if kp != nil {
		kp.failures = 0
		// A peer with two connections (TCP and QUIC) is announced once.
		if !kp.up {
			kp.up = true
			first = true
		}
	}
	x.mu.Unlock()
	if first && x.cfg.OnPeer != nil {
		x.background(func() { x.cfg.OnPeer(gossip.PeerID(p.String()), true) })
	}
}

func (x *Host) onDisconnected(n network.Network, c network.Conn) {
	p := c.RemotePeer()
	if n.Connectedness(p) == network.Connected {
		return
	}
	x.mu.Lock()
	if kp := x.known[p]; kp != nil {
		kp.up = false
		kp.nextDial = time.Now().Add(x.cfg.RedialInterval)
	}
	x.mu.Unlock()
	if x.cfg.OnPeer != nil {
		x.background(func() { x.cfg.OnPeer(gossip.PeerID(p.String()), false) })
	}
}

// background runs f on a goroutine that Close waits for, unless the host is
// already closing.
func (x *Host) background(f func()) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return
	}
	x.wg.Add(1)
	go func() {
		defer x.wg.Done()
		f()
	}()
}
