// Package gossip spreads model updates through a federation: a peer table
// with reputation, peer selection, fan-out, verification of received
// deltas and their relay with a hop bound and de-duplication.
//
// The package does no I/O of its own. Messages leave and arrive through a
// Transport (libp2p in the daemon, package sim in tests), and time enters
// only as values passed in by the caller.
package gossip
