// Package privacy makes a node's releases differentially private and keeps
// count of what they cost. It holds the privacy tiers and their membership
// rules, clipping and the Gaussian mechanisms, the RDP accountant, the
// per-node privacy ledger, the tiered federation and the promotion rules
// between tiers. It does no I/O and reads no clock: the ledger persists
// through LedgerStore (bbolt in the node, MemoryLedgerStore in tests),
// randomness comes from a seeded *rand.Rand, promotion takes now as an
// argument. docs/PRIVACY.md gives the threat model.
//
// A node drives it like this:
//
//	ledger, _ := privacy.NewLedger(store, cfg.EpsilonBudget, cfg.Delta)
//	fed, _ := privacy.NewTieredFederation(memberships, newDAFAggregator)
//	promoter, _ := privacy.NewPromoter(privacy.DefaultPromotionRules(cfg.MinKAnonymity))
//
//	// every round, for every scope the node belongs to:
//	u := local.Clone()
//	rep, err := privacy.PrepareRelease(u, scope.Tier, cfg.Epsilon, cfg.Delta, cfg.ClipBound, rng)
//	err = ledger.Charge(scope.Tier, round, rep.NoiseMultiplier, 1) // before anything is sent
//	// ErrBudgetExceeded: do not send; the node has stopped releasing.
//	// send u only to peers p with privacy.CanReceive(p.Scopes, scope)
//
//	// aggregate phase:
//	res := fed.Federate(ownReleases, received) // one aggregate per scope
//
//	// patterns that may move to a more open tier:
//	if d := promoter.Check(pattern, now); d.Promoted { /* release at d.Target, as above */ }
//
// Public releases are clipped and noised on the node (peers are the
// adversary, so aggregation is post-processing); Group and Tenant releases
// are clipped only, and the ledger records them as not DP-protected
// without drawing on the budget. ε is reported by the accountant of
// Mironov et al. (RDP of the subsampled Gaussian, integer and fractional
// orders in log space) with the RDP→(ε, δ) conversion of Balle et al.
// 2020; it reproduces the values published by TensorFlow Privacy, Opacus
// and dp_accounting.
package privacy
