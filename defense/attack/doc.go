// Package attack crafts malicious TALoRA updates and realistic honest ones,
// for the defense tests, the benchmarks and the simulator.
//
// Every generator is a pure function of its inputs and, where it draws
// random numbers, of the *rand.Rand it is given (math/rand/v2), so a
// scenario replays exactly from its seed. Inputs are never modified; the
// result is a new update.
//
// Attacks, each against the defence it is known to stress:
//
//   - SignFlip: the negated honest update (pulls the aggregate backwards;
//     the Byzantine detector's direction check).
//   - Scale: the honest update times a factor, e.g. 10 (boosting; the
//     magnitude and group-norm checks).
//   - GaussianNoise: the honest update plus N(0, std²) per value (random
//     garbage of large norm).
//   - LittleIsEnough: mean − z·std per coordinate over the honest updates
//     (Baruch et al., 2019): each coordinate stays inside the honest
//     spread, so norm and per-coordinate filters pass it, yet colluders
//     sending it together shift median and trimmed-mean aggregates.
//   - InnerProduct: −ε × the honest mean (Xie et al., 2020): makes the
//     inner product of the aggregate with the true gradient negative while
//     its norm stays small.
//   - SybilClones: n copies of one update with tiny relative perturbations,
//     sent under n identities (Sybil clustering).
//
// HonestNonIID generates the honest side: per timestep group a shared
// direction that drifts over rounds, a fixed per-node domain offset, fresh
// noise every round, and norms that differ per group, per node and shrink
// over rounds, as in a federation of sites fine-tuning on different data.
package attack
