// Package sim is the in-memory side of DAF's network: a Network of
// gossip.Transport endpoints for tests of code that owns goroutines, and a
// Cluster, a deterministic multi-node harness in which every node's
// round.Machine runs against a virtual clock and a timed event queue. The
// Cluster also has the in-memory twins of the daemon's collaborators: a
// signing and sealing Codec, a Store, a norm-based Byzantine filter, a
// synthetic trainer and a sample-weighted aggregator.
//
// The Cluster carries deltas as the daemon's stream protocol does: an offer
// reaches the receiver one latency after it is sent, the receiver's round
// machine rules on it, and a body it asks for arrives one latency (the
// answer) plus one latency and its transfer time later. A release already
// held costs the offer only; an offer of a release whose body is on its
// way from another peer waits for that transfer, as the daemon's handler
// does.
//
// Scenario scripts in testdata/ drive a Cluster (dropouts, stragglers,
// partitions, Byzantine and forging nodes, restarts) and compare its log
// with the golden output below each command; go test ./sim -rewrite
// regenerates the outputs.
package sim
