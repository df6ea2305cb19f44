package round

import (
	"errors"
	"fmt"
	"time"

	"github.com/dafnet/daf/config"
	"github.com/dafnet/daf/gossip"
	"github.com/dafnet/daf/privacy"
)

// Config is what the round machine needs of federation.toml, plus the
// node's identity and whether it trains.
type Config struct {
	Self gossip.PeerID
	// Genesis of the round slots; the zero value means the Unix epoch.
	Genesis            time.Time
	Interval           time.Duration // [federation] round_interval_secs
	PropagationTimeout time.Duration // [federation.gossip] propagation_timeout_secs
	PeerTimeout        time.Duration // [federation] peer_timeout_secs
	MinNodes           int           // [federation] min_nodes_for_aggregation
	MaxNodes           int           // [federation] max_nodes_per_round: updates aggregated per round and scope
	FanOut             int           // [federation.gossip] fan_out
	MaxHops            int           // [federation.gossip] max_hops
	Enabled            bool          // [federation] enabled
	ByzantineDetection bool          // [federation.security] byzantine_detection
	// Memberships are the (tier, scope) pairs the node aggregates in
	// ([federation.node] tier and scope give one).
	Memberships []gossip.Membership
	// Contributes: the node trains and releases an update each round.
	Contributes bool
}

// FromConfig maps a validated federation.toml onto a machine config.
func FromConfig(c config.Config, self gossip.PeerID, contributes bool) (Config, error) {
	f := c.Federation
	tier, err := privacy.ParseTier(f.Node.Tier)
	if err != nil {
		return Config{}, fmt.Errorf("federation.node.tier: %w", err)
	}
	rc := Config{
		Self:               self,
		Genesis:            time.Unix(0, 0),
		Interval:           time.Duration(f.RoundIntervalSecs) * time.Second,
		PropagationTimeout: time.Duration(f.Gossip.PropagationTimeoutSecs) * time.Second,
		PeerTimeout:        time.Duration(f.PeerTimeoutSecs) * time.Second,
		MinNodes:           f.MinNodesForAggregation,
		MaxNodes:           f.MaxNodesPerRound,
		FanOut:             f.Gossip.FanOut,
		MaxHops:            f.Gossip.MaxHops,
		Enabled:            f.Enabled,
		ByzantineDetection: f.Security.ByzantineDetection,
		Memberships:        []gossip.Membership{{Tier: tier, Scope: f.Node.Scope}},
		Contributes:        contributes,
	}
	return rc, rc.Validate()
}

// Validate reports every problem at once, naming the federation.toml key.
func (c Config) Validate() error {
	var errs []error
	if c.Self == "" {
		errs = append(errs, errors.New("round: node identity (Self) is empty"))
	}
	if c.Interval <= 0 {
		errs = append(errs, fmt.Errorf("federation.round_interval_secs = %v, want > 0", c.Interval))
	}
	if c.PropagationTimeout < 0 {
		errs = append(errs, fmt.Errorf("federation.gossip.propagation_timeout_secs = %v, want >= 0", c.PropagationTimeout))
	}
	if c.PeerTimeout < 0 {
		errs = append(errs, fmt.Errorf("federation.peer_timeout_secs = %v, want >= 0", c.PeerTimeout))
	}
	if c.MinNodes < 1 {
		errs = append(errs, fmt.Errorf("federation.min_nodes_for_aggregation = %d, want >= 1", c.MinNodes))
	}
	if c.MaxNodes < c.MinNodes {
		errs = append(errs, fmt.Errorf("federation.max_nodes_per_round = %d, below min_nodes_for_aggregation %d", c.MaxNodes, c.MinNodes))
	}
	if c.FanOut < 0 {
		errs = append(errs, fmt.Errorf("federation.gossip.fan_out = %d, want >= 0", c.FanOut))
	}
	if c.MaxHops < 1 {
		errs = append(errs, fmt.Errorf("federation.gossip.max_hops = %d, want >= 1", c.MaxHops))
	}
	if len(c.Memberships) == 0 {
		errs = append(errs, errors.New("federation.node.tier: the node belongs to no (tier, scope)"))
	}
	for _, m := range c.Memberships {
		if (m.Tier == privacy.Group || m.Tier == privacy.Tenant) && m.Scope == "" {
			errs = append(errs, fmt.Errorf("federation.node.scope: tier %s needs a scope id", m.Tier))
		}
	}
	return errors.Join(errs...)
}

func (c Config) schedule() Schedule {
	g := c.Genesis
	if g.IsZero() {
		g = time.Unix(0, 0)
	}
	return Schedule{Genesis: g, Interval: c.Interval, PropagationTimeout: c.PropagationTimeout}
}

func (c Config) engineConfig() gossip.EngineConfig {
	return gossip.EngineConfig{
		Self: c.Self, Memberships: c.Memberships, FanOut: c.FanOut, MaxHops: c.MaxHops,
		PeerTimeout: c.PeerTimeout, ByzantineDetection: c.ByzantineDetection,
	}
}
