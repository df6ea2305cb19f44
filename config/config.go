package config

// Config is federation.toml. Field names follow the seed's example; the
// comments give units and where each key takes effect.
type Config struct {
	Federation Federation `toml:"federation"`
}

// Federation is the [federation] table and its sub-tables.
type Federation struct {
	Enabled                bool  `toml:"enabled"`
	RoundIntervalSecs      int64 `toml:"round_interval_secs"`
	MinNodesForAggregation int   `toml:"min_nodes_for_aggregation"`
	MaxNodesPerRound       int   `toml:"max_nodes_per_round"`
	// PeerTimeoutSecs: peers silent longer than this are not selected.
	PeerTimeoutSecs int64 `toml:"peer_timeout_secs"`

	Node        Node        `toml:"node"`
	Gossip      Gossip      `toml:"gossip"`
	DAF         DAF         `toml:"daf"`
	Security    Security    `toml:"security"`
	Privacy     Privacy     `toml:"privacy"`
	Compression Compression `toml:"compression"`
}

// Node is [federation.node]: where this node sits in the tier hierarchy.
type Node struct {
	Tier  string `toml:"tier"`  // private | group | tenant | public
	Scope string `toml:"scope"` // group or tenant id
}

// Gossip is [federation.gossip].
type Gossip struct {
	FanOut                 int   `toml:"fan_out"`
	MaxHops                int   `toml:"max_hops"`
	PropagationTimeoutSecs int64 `toml:"propagation_timeout_secs"`
}

// DAF is [federation.daf]: timestep groups ([start, end) in t) and the
// aggregation strategy of each.
type DAF struct {
	CoarseRange    [2]int  `toml:"coarse_range"`
	DomainRange    [2]int  `toml:"domain_range"`
	FineRange      [2]int  `toml:"fine_range"`
	CoarseStrategy string  `toml:"coarse_strategy"`
	DomainStrategy string  `toml:"domain_strategy"`
	FineStrategy   string  `toml:"fine_strategy"`
	TrimFraction   float64 `toml:"trim_fraction"`
}

// Security is [federation.security].
type Security struct {
	ByzantineDetection     bool    `toml:"byzantine_detection"`
	MaxMagnitudeMultiplier float64 `toml:"max_magnitude_multiplier"`
	DirectionFlipThreshold int     `toml:"direction_flip_threshold"`
}

// Privacy is [federation.privacy]. Epsilon and Delta are per release
// (per round); EpsilonBudget is the node's lifetime budget (0 = account and
// report only).
type Privacy struct {
	Epsilon       float64 `toml:"epsilon"`
	Delta         float64 `toml:"delta"`
	ClipBound     float64 `toml:"clip_bound"`
	MinKAnonymity int     `toml:"min_k_anonymity"`
	EpsilonBudget float64 `toml:"epsilon_budget"`
}

// Compression is [federation.compression].
type Compression struct {
	SparsityThreshold float64 `toml:"sparsity_threshold"`
	QuantizationBits  int     `toml:"quantization_bits"`
}

// Default returns the seed's example values plus our added keys' defaults.
func Default() Config {
	return Config{Federation: Federation{
		Enabled:                true,
		RoundIntervalSecs:      120,
		MinNodesForAggregation: 3,
		MaxNodesPerRound:       50,
		PeerTimeoutSecs:        300,
		Node:                   Node{Tier: "public"},
		Gossip:                 Gossip{FanOut: 4, MaxHops: 3, PropagationTimeoutSecs: 30},
		DAF: DAF{
			CoarseRange: [2]int{700, 1000}, DomainRange: [2]int{300, 700}, FineRange: [2]int{0, 300},
			CoarseStrategy: "weighted_average", DomainStrategy: "quality_weighted", FineStrategy: "trimmed_mean",
			TrimFraction: 0.1,
		},
		Security:    Security{ByzantineDetection: true, MaxMagnitudeMultiplier: 10, DirectionFlipThreshold: 5},
		Privacy:     Privacy{Epsilon: 1.0, Delta: 1e-5, ClipBound: 1.0, MinKAnonymity: 5},
		Compression: Compression{SparsityThreshold: 0.9, QuantizationBits: 8},
	}}
}
