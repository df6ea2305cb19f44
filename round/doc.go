// Package round is the federation round engine: the seed's Init → Gossip →
// Collect → Aggregate → Apply → Done timeline as a state machine with no
// I/O, no clock and no goroutines, in the style of etcd's raft.
//
// # Driving it
//
// One goroutine owns a Machine and feeds it events, each with the current
// time; every call returns a Ready that the caller carries out:
//
//	for {
//		select {
//		case <-timer(m.NextDeadline()):   rd = m.Tick(now)
//		case o := <-offers:               rd, env, verdict = m.DeltaOffered(now, o.from, o.offer) // nil: ask for the payload
//		case d := <-payloads:             rd, verdict = m.DeltaReceived(now, d.from, nil, &d.decoded) // verdict goes back to the sender
//		case p := <-peers:                rd, _ = m.PeerSeen(now, p)
//		case t := <-trained:              rd, _ = m.LocalUpdateReady(now, t.round, t.updates...)
//		case a := <-aggregated:           rd, _ = m.AggregateDone(now, a.round, a.scope, a.update, a.err)
//		case f := <-sendFailures:         rd = m.SendFailed(now, f.out, f.err)
//		}
//		store(rd.Persist); send(rd.Send); apply(rd.Apply)
//		startAggregation(rd.Aggregate); startTraining(rd.Train); log(rd.Skipped)
//	}
//
// Aggregation and training run off the loop (they are CPU-heavy) and come
// back as events; so does gossip.DecodeBody of an incoming payload (hash
// check, unsealing, decompression), passed as pre. A payload that never
// arrives after its offer was wanted is reported with DeltaAbandoned, so
// the release is taken from the next peer that offers it.
// Sends run off the loop too; a failed one comes back as SendFailed. Call
// PeerSeen for every connected peer at least once per round (with the
// peer's Incarnation, e.g. its start time, from its peer record), or quiet
// peers drop out of selection after peer_timeout_secs.
//
// # Rounds
//
// Round numbers are time slots from a genesis shared by the federation (the
// Unix epoch by default): round = ⌊(now − genesis)/round_interval⌋; see
// Schedule for why. Within round r the seed's marks are fractions of the
// interval: Gossip at 1/12, Collect at 3/12, Aggregate at 6/12, Apply at
// 9/12 (10, 30, 60, 90 of 120 s).
//
//   - Init: the local update for r is being trained.
//   - Gossip (from 1/12): the local update is released to fan-out peers as
//     soon as it is ready; one that is ready later is still released while
//     Collect is open.
//   - Collect (from 3/12): deltas keep arriving and are relayed. Collect
//     closes propagation_timeout_secs after it opened, at the latest at the
//     Aggregate mark, and earlier as soon as every expected update is in
//     (every live contributing member of the scope, and this node).
//   - Aggregate: fewer than min_nodes_for_aggregation updates → the round is
//     skipped with its reason; otherwise one AggregateJob per (tier, scope)
//     holding exactly the updates that arrived, after the Sybil Screen.
//   - Apply: the aggregate is handed back as soon as it is computed; a
//     result not back before the slot ends is dropped (aggregation_timeout).
//   - Done: nothing until the next slot.
//
// Deltas for round r+1 are accepted and buffered while r finishes, which
// absorbs clock skew between nodes; older rounds are refused as replays.
//
// # Training schedule
//
// Training for round r+1 is requested as soon as round r is settled here,
// so it overlaps the rest of r: with the seed's fractions training has from
// the Apply mark of r to the Aggregate mark of r+1, 3/4 of an interval,
// more when r ended early. This is what lets a 1–3 s demo interval work
// with 0.5–1.5 s of training per round as well as the product's 120 s. A
// node that starts or restarts mid-round trains for the current round if
// its Collect is open (joining late), otherwise for the next.
//
// # Restarts
//
// Persist records (round log, peer table once per round, releases) let a
// restarted node resume: the clock gives the round, State restores
// reputation, and a node that already released for round r does not
// release a second, different update for it (peers would refuse it as
// equivocation). Deltas received before the crash are lost; peers offer
// their releases again when the node reappears (PeerSeen) while Collect is
// open.
package round
