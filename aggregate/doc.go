// Package aggregate is the DAF aggregation engine: pure functions over
// float32 tensors that turn the updates of one round into one update. It
// does no I/O, reads no clock and uses no global randomness; the only
// randomness (the range finder of the product modes) comes from
// Options.Seed, so every node computes bit-identical results from the same
// inputs, whatever the number of goroutines.
//
// # Driving it
//
// Aggregate(name, updates, opts) runs one named strategy on every timestep
// group of the updates; each group is aggregated from the updates that
// carry it. An Engine (NewEngine, Engine.Aggregate) is the DAF engine of a
// node: one strategy per group from federation.toml, the privacy filter,
// min_nodes_for_aggregation, max_nodes_per_round, and the learned_attention
// reference carried from round to round.
package aggregate
