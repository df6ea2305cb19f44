// Package gossip spreads model updates through a federation: the seed's
// GossipProtocol and AdaptivePeerSelector without the network.
//
//   - PeerTable: what a node knows of its peers (addresses, Ed25519 and
//     X25519 keys, reputation, (tier, scope) memberships, last seen,
//     incarnation). Reputation starts at 0.5, +0.01 for an accepted delta
//     and −0.1 for a bad one, always charged to the peer on the connection,
//     never to the source a message claims.
//   - Selection: ReputationSelector is the seed's select_peers (reputation
//     plus a seeded U[0, 0.2) jitter); AdaptiveSelector scores 0.4
//     reputation + 0.3 latency + 0.2 freshness + 0.1 diversity with at most
//     40 % of a selection from one tier when several are present. Peers
//     silent longer than peer_timeout_secs are never candidates.
//   - FanOut: max(⌈√N⌉, fan_out) of the N live members of the scope.
//   - Engine: Publish packs the node's own update and offers it to the
//     fan-out; Offered runs the checks that need no payload on an offer
//     (signature, scope membership, hop bound, round window,
//     de-duplication, equivocation) and says whether to ask for the
//     payload; Receive runs the rest of handle_delta's checks (opening,
//     Byzantine Filter) and Admit rewards the sender and relays with one
//     hop less, never to peers known to hold the release. An offer declined
//     as held is offered to another peer (SendFailed), so fan-out counts
//     peers that took the payload. Every outcome is counted by result label
//     (Counters), the numbers behind the daemon's metrics.
//
// Nothing of a scope reaches a peer outside it: releases go only to peers
// whose record lists the scope, and deltas of a scope this node is not in,
// or carried by a peer known to be outside it, are refused.
//
// The package does no I/O. Messages leave and arrive through a Transport
// (libp2p in the daemon, package sim in tests), bytes become updates
// through a Codec (wire + seal + compress in the daemon), and time and
// randomness enter only as values and seeded sources passed by the caller.
// An Engine belongs to one goroutine; package round drives it.
package gossip
