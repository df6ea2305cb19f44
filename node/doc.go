// Package node is the DAF daemon: it wires the round engine, gossip, the
// libp2p transport, the trainer and the durable store into one running node.
//
// A data directory holds identity.key (the Ed25519 identity, 0600),
// state.db (bbolt: peers, reputation, round log, privacy ledger, detector
// statistics, meta) and adapters/ (safetensors, written atomically). Every
// state change is committed before the node acts on it, so a node killed at
// any moment restarts in the same round numbering with its adapters,
// reputations and privacy ledger intact.
package node
