// Package defense holds the federation's filters against bad updates: the
// Byzantine detector (the seed's ByzantineDetector), Sybil clustering (the
// seed's detect_sybil) and peer reputation. Subpackage attack crafts the
// attacks these are evaluated against. The package does no I/O and reads no
// clock or global randomness: statistics persist through StatsStore, time
// enters Reputation.Decay as an explicit duration.
//
// # These are filters, not the guarantee
//
// Every check here compares an update with its own source's history or
// with what other nodes sent. An attacker that behaves within those
// ranges (a little-is-enough update, a slowly growing norm) or that makes
// new identities faster than history accumulates is not stopped by them.
// The guarantee against Byzantine nodes comes from two other places:
//
//   - Admission (DESIGN §5): a closed federation admits only allowlisted
//     identities or holders of membership certificates; new identities
//     start on probation (low reputation, hence low weight), so identities
//     are not free.
//   - The robust aggregators (package aggregate), each of which bounds the
//     influence of a fraction of arbitrary updates among n:
//     trimmed mean with trim fraction β (⌊β·n⌋ values cut per side)
//     tolerates up to ⌊β·n⌋ attackers, so 10 % with the default
//     trim_fraction; coordinate-wise median fewer than n/2; Krum and
//     multi-Krum f attackers when n > 2f + 2; geometric median fewer than
//     n/2 (breakdown point 1/2); centered clipping a fraction δ well below
//     1/2 (its analysis, Karimireddy et al. 2021, takes δ up to about 0.1),
//     the remaining error growing with δ times the clipping radius.
//     The plain and quality-weighted averages tolerate none: a single
//     unfiltered update can move them anywhere, which is why the
//     filters run before every strategy.
//
// The filters remove the gross attacks cheaply (boosted, noisy, flipped,
// cloned updates), which keeps the attacker fraction the aggregator sees
// below its breakdown point.
//
// # Driving the detector
//
// For every update that passed signature, replay and tier checks, the node
// calls Detector.Validate. Rejected: drop it and Penalize its source (its
// signature verified, so the source wrote it). Suspicious: aggregate it with
// its sample weight multiplied by Verdict.Weight, neither Reward nor
// Penalize. Accepted: aggregate with full weight and Reward the source.
// Once a round's updates are collected, DetectSybil over them gives the
// identities whose updates to drop from that round's aggregation.
// GossipFilter does the per-update part for the gossip engine
// (gossip.Filter): it judges by the envelope's signed source, turns
// Rejected into gossip.ErrByzantine and carries a Suspicious weight into
// Meta.Samples.
//
// Reputation penalties for a message that failed before its source could
// be established (bad signature, malformed envelope, oversize) go to the
// peer that sent it on the connection, never to the source it claims:
// anyone can write any source into an envelope.
//
// # The checks
//
// Check 1 (magnitude): the update's joint L2 norm over all groups above
// MaxMagnitudeMultiplier × the node's mean accepted norm is
// Rejected(ExcessiveMagnitude). The mean is exact over the first 20
// accepted updates and exponential (weight 1/20) after.
//
// Check 2 (direction): the update's cosine with the node's reference
// direction below −0.5 (FlipCosine) is a flip. More than
// DirectionFlipThreshold flips within the node's last 32 accepted updates
// (FlipWindow) is Rejected(DirectionAnomaly). The reference is a blend of
// the node's accepted non-flipped updates, kept as a 1024-value count
// sketch (SketchDims) so NodeStats stays small whatever the model size.
// Flips do not move the reference, so a node that keeps sending flipped
// updates is rejected after DirectionFlipThreshold of them; a window
// rather than a lifetime count, so an honest node's rare oscillations age
// out.
//
// Check 3 (timestep-group norm): for each group, the range is
// exp(median ± max(k·1.4826·MAD, ln 2)) over the log of the other nodes'
// latest accepted norms for that group (k = RangeK; log scale because norms
// spread multiplicatively; the ln 2 floor because clipped updates often
// share one norm exactly). It applies once at least 3 other nodes reported
// the group (MinPopulation). A group outside its range makes the update
// Suspicious(GroupNormOutOfRange).
//
// Non-finite values are Rejected(NonFinite) and an update with no values
// Rejected(EmptyUpdate), even with detection disabled: no strategy can use
// them.
//
// Statistics (NodeStats) change only on Accepted, so neither rejected nor
// suspicious updates can drag a node's own reference or the population's.
//
// # Suspicious
//
// A Suspicious update is not dropped: a group norm out of range is as
// often a site with unusual data as an attack. It is down-weighted:
// Verdict.Weight is at most 1/2 (SuspiciousWeight), and when a group is
// above its range, hi/norm, so its weighted contribution is no larger than
// an in-range update's. It earns no reputation reward, so a node whose
// updates are always suspicious never climbs above where it started, and a
// new identity stays on probation. Its statistics are not updated: the
// node's next update is judged against the same history.
//
// # New nodes
//
// A node has no history when it first appears. Until it has WarmupUpdates
// accepted updates, Check 1 compares its norm with the median mean norm of
// the established nodes (those past warm-up, at least 3 of them) instead
// of its own; with no such population yet it uses its own short history,
// and a node's very first update in a federation of newcomers has no
// reference and passes Check 1. Check 2 starts with the node's second
// accepted update. Check 3 applies to new and old nodes alike. Warm-up
// updates that pass are Accepted and build the node's history; the
// reduced weight of a new identity comes from Reputation's probation,
// not from the detector.
//
// # Reputation
//
// A score in [0,1] per peer: +0.01 per valid delta, −0.1 per invalid one
// (the seed's values), clamped. New identities start at ProbationStart
// (0.1) and are on probation until ProbationUpdates (20) valid deltas. A
// silent peer decays towards Neutral (0.5), or towards ProbationStart
// while on probation, with the silence passed by the caller:
// target + (score − target)·2^(−silent/half-life). High trust must be kept
// up, penalties are forgiven slowly, and waiting does not end probation.
//
// # Persistence
//
// NodeStats and ReputationSnapshot are plain JSON-encodable structs. The
// detector's population reference needs no storage of its own: it is
// rebuilt from the stored NodeStats as nodes are heard from, or at once
// with Detector.Prime.
package defense
