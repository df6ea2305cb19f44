// Package demo is `daf demo`, the project's main job: it shows on real
// text whether federating TALoRA banks with DAF helps, against honest
// baselines run on the same seeds and data.
//
// For every seed it runs these arms:
//
//   - local: each node trains its banks on its own shard only.
//   - central: one set of banks trained on the pooled shards with the whole
//     federation's compute (nodes × steps per round): the upper bound.
//   - fedavg: full DAF nodes over loopback libp2p in the Tenant tier, every
//     timestep group aggregated by sample-weighted average.
//   - daf: the same nodes with the seed's per-group strategies (coarse
//     weighted average, domain quality-weighted softmax, fine trimmed mean).
//   - daf_dp: the daf arm in the Public tier, where every release is clipped
//     and noised on the node (ε per round from federation.toml) and the
//     ledger's ε is reported.
//
// The federated arms start one node.Node per shard in this process, each
// with its own data directory, identity and libp2p host on 127.0.0.1; they
// find each other through bootstrap addresses and run real rounds (time
// slots from a shared genesis) with gossip, sealing, filters and
// aggregation exactly as `daf node` does. Every arm starts from the same
// banks, because averaging LoRA factors is only meaningful from a shared
// initialisation.
//
// After each round every node's banks are evaluated on its own held-out
// text (personal) and on the mix of all held-out text (global), per
// timestep group, with evaluation masks and timesteps fixed by the seed so
// that every arm is scored on the same draws. Results are averaged over
// seeds with their spread and written as results.json, results.md and one
// PNG per group.
package demo
