// Package node is the DAF daemon: it wires the round engine (package
// round), gossip, the libp2p transport (package p2p), the trainer, the
// aggregation engine, the privacy ledger, the Byzantine and Sybil filters
// and the durable store into one running node. `daf node` is a thin shell
// around it; the demo runs several Nodes in one process.
//
// # How it is driven
//
// New opens the data directory, starts the libp2p host (Addrs is valid at
// once) and builds a round.Machine; Run drives it until its context ends.
// One goroutine (the loop) owns the machine and feeds it events: a timer at
// the machine's next deadline, decoded deltas, peer records, training and
// aggregation results. Each event returns a round.Ready, which the loop
// carries out in order: persist (one bbolt transaction), send (queued),
// apply (write adapters/current.safetensors atomically, then report the
// round through OnRoundDone), then start aggregation and training off the
// loop.
//
// # The pipeline
//
//	trainer → clip/noise + ledger → (machine) compress → seal → sign → send stage: offer, payload if wanted
//	stream: offer → (machine) verify, held? → want → payload → open stage: hash → unseal → decompress → (machine) filters → aggregate stage
//
// A release arrives as an offer first (docs/PROTOCOL.md §6.1): the machine
// refuses one it holds, and the payload of a release already arriving
// from another peer is not asked for twice, so the open stage decodes each
// release once.
//
// CPU stages run on bounded worker pools: the open stage has one worker per
// core, so deltas from many peers are decoded in parallel; the aggregate
// stage runs the DAF engine (itself parallel over tensors) off the loop.
// Our own producers block on a full queue (back-pressure); work from the
// network is refused at once when its queue is full, and the sender is told
// ("busy"). Every drop is counted in daf_pipeline_dropped_total{stage}.
//
// # What travels
//
// A node releases its model plus its clipped (and, in the Public tier,
// noised) delta, and aggregates the adapters it receives; see train in
// release.go for why adapters rather than deltas. The Byzantine and Sybil
// filters judge each received adapter by its delta from the receiver's
// model.
//
// # Persistence
//
// The data directory holds identity.key (Ed25519, 0600), state.db (bbolt:
// peers, reputation, round log, privacy ledger, detector statistics, meta)
// and adapters/current.safetensors. Round numbers come from the clock and a
// genesis shared by the federation, so a node killed at any moment restarts
// in the same numbering, with its model, reputations and privacy ledger
// (charged before any release leaves the node), and joins the round in
// progress; peers re-offer their releases when it reconnects.
package node
