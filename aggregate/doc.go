// Package aggregate is the DAF aggregation engine: pure functions over
// float32 tensors that turn the updates of one round into one update. It
// does no I/O, reads no clock and uses no global randomness; the only
// randomness (the range finder of the product modes) comes from
// Options.Seed, so nodes on the same kernel path compute bit-identical
// results from the same inputs, whatever the number of goroutines. The
// AVX2 kernels (amd64) and the pure-Go ones (other CPUs, -tags purego) sum
// in different orders and the former fuse multiply-adds, so across the two
// an aggregate may differ in the last float32 bit and in the sign of a zero.
//
// # Driving it
//
// Aggregate(name, updates, opts) runs one named strategy on every timestep
// group of the updates; each group is aggregated from the updates that
// carry it, and one update is returned as it is. An Engine (NewEngine,
// Engine.Aggregate) is a node's DAF engine: the privacy filter first, then
// max_nodes_per_round (the updates with the most samples are kept, ties by
// node id, so the kept set does not depend on arrival order), then
// min_nodes_for_aggregation in total and per group (ErrInsufficientNodes
// names the group and its count), then one strategy per group from
// federation.toml (EngineConfigFromConfig; seed defaults coarse
// weighted_average, domain quality_weighted, fine trimmed_mean). The engine
// keeps the aggregate as the next round's learned_attention reference.
//
// # Strategies
//
// Two kinds. Coordinate-wise strategies (trimmed_mean, median) take an
// order statistic per parameter. Combining strategies return coefficients
// c_i (finite, summing to 1) and the aggregate Σ c_i·x_i; the coefficients
// come from metadata (sample counts, quality reports) or from the Gram
// matrix G_ij = ⟨x_i, x_j⟩ of the group's parameters, accumulated in
// float64, from which every distance ‖Σ c_k x_k − x_i‖ follows. Working on
// G alone is what lets the same code run on LoRA products without forming
// them (see below).
//
//   - weighted_average: c_i = samples_i / Σ samples. All zero → ErrZeroWeights.
//   - quality_weighted: c = softmax(score/T). PerplexityImprovement scores
//     (ppl_before − ppl_after)/ppl_before of the group, TaskAccuracy the
//     reported accuracy on Options.Task (mean over tasks when empty),
//     Composite a weighted sum of both. A missing or non-finite score
//     (ppl_before = 0, NaN) counts as 0, so weights stay finite and sum to 1.
//   - trimmed_mean: cuts k = floor(β·n) values from each end of every
//     coordinate (β = trim_fraction; β = 0.1 cuts nothing below n = 10) and
//     averages the rest, unweighted. n − 2k < 1 → ErrTrimAll.
//   - median: coordinate-wise; the mean of the two middle values for even n.
//   - learned_attention: see below.
//   - krum: the update whose squared distances to its n−f−2 nearest others
//     sum least (Blanchard et al. 2017); multi_krum averages the n−f
//     best-scored (Options.MultiKrumM to choose another count). Refused
//     with ErrTooFewForKrum when n ≤ 2f+2.
//   - geometric_median: the smoothed Weiszfeld iteration of RFA (Pillutla,
//     Kakade, Harchaoui 2022), weighted by samples, smoothing ν relative to
//     the median update norm (Options.Nu, default 1e-6), started one
//     Vardi–Zhang step off the weighted medoid rather than at the mean, which
//     a far attacker drags away.
//   - centered_clip: Karimireddy, He, Jaggi 2021, started at the medoid,
//     radius τ = Options.ClipRadius or the median distance to the medoid.
//
// # What learned_attention learns
//
// The seed describes "attention-based (learns optimal combination)" without
// saying what is learned. Here it is exact: the attention query is a
// reference update q, and update i receives weight
//
//	w_i = softmax_i( −(‖x_i − q‖ / d̄) / T ),  d̄ = mean_j ‖x_j − q‖,
//
// per group, with T = Options.Temperature. Dividing by d̄ makes the weights
// independent of the scale of the parameters: an update at the average
// distance gets e^{-1/T} times the weight of one at the query itself, one
// at twice that distance e^{-2/T}. What is learned, round after round, is the query: the Engine
// sets q to the group's previous aggregate, so the federation attends to
// updates that continue the direction it has been taking and discounts
// those that pull away from it. Nothing is trained by gradient descent;
// the only state is the previous aggregate (Engine.Reference, which a
// daemon persists with SetReference). In the first round, or for a group
// the reference lacks (or whose shapes changed), q is the coordinate mean
// of the round's updates. A named learned_attention call uses
// Options.Reference, or the mean when it is nil.
//
// # Byzantine tolerance
//
// f of n updates may be arbitrary (an attacker's, or corrupted):
//
//	weighted_average    0: one update moves the result anywhere; a node
//	                    can also claim any sample count
//	quality_weighted    0: quality is self-reported, so a liar takes the weight
//	learned_attention   0: a far outlier is discounted exponentially, but
//	                    its pull grows with its distance; not robust
//	trimmed_mean        f ≤ floor(β·n) per coordinate (fraction below β)
//	median              f < n/2 per coordinate
//	krum, multi_krum    n > 2f+2, i.e. f < (n−2)/2, with f declared up front
//	geometric_median    breakdown point 1/2: Byzantine sample weight < 1/2
//	                    of the total (a node can inflate its samples)
//	centered_clip       proven for a Byzantine fraction δ ≤ 0.1 (with a
//	                    good start; here the medoid), degrades beyond
//
// Coordinate-wise bounds hold per coordinate: an attacker needs to be an
// extreme in the coordinates it wants to move. None of these stop an
// attacker that stays within the honest spread; defense/ adds detection
// and reputation on top.
//
// # LoRA modes
//
// Factor (default, the seed's way) aggregates lora_A and lora_B element by
// element; B factors of nodes with another lora_alpha are first rescaled to
// the first update's α/r. The product of averaged factors is not the
// average of the products unless every node shares A; the tests measure the
// difference. Exact pairs each module's factors and returns B = [c_1 s_1 B_1
// | … | c_n s_n B_n], A = [A_1; …; A_n] (s_i = α_i/r_i), whose product is
// exactly Σ c_i·s_i·B_i·A_i, ranks may differ between nodes, and the rank
// is the sum of the ranks of the updates with c_i ≠ 0 (krum keeps one). The
// distance strategies then measure distances between the products ΔW_i
// through ⟨ΔW_i, ΔW_j⟩ = s_i s_j Σ_pq (B_iᵀB_j)_pq (A_i A_jᵀ)_pq, at
// r_i·r_j·(out+in) cost instead of out·in. SVD re-factorises that sum to
// Options.Rank (default: the largest input rank) by Gram–Schmidt QR of the
// stacked B and Aᵀ and an SVD of the small R×R core, never forming the
// dense out×in matrix, and reports ‖ΔW − ΔW_R‖_F/‖ΔW‖_F (Report.SVDRelError
// and daf.svd_rel_error). Factors come out balanced (√σ on each side) and
// padded with zeros to exactly R.
//
// Coordinate-wise statistics of products are not a product of anything
// smaller, so in Exact and SVD mode trimmed_mean and median form each
// module's dense ΔW (row block by row block) and factorise it with a
// randomised range finder (Halko, Martinsson, Tropp 2011; seeded by
// Options.Seed) whose rank grows until the residual, estimated with random
// probes, is within 1e-6 of ‖ΔW‖ (Exact), or that keeps rank R with two
// power iterations (SVD). Outputs of the product modes carry one lora_alpha
// (the largest module rank) with each B scaled so that (α/r)·B·A is the
// aggregate. Products need complete factors: daf.kind=adapter, or deltas
// made whole with WithBase. fan_in_fan_out (GPT-2's Conv1D) only changes
// where ΔW is added (DeltaWeight returns it in the stored orientation):
// transposition commutes with every strategy and factorisation.
//
// # Bad input
//
// A NaN or infinity rejects its update with an error naming the node and
// tensor; updates that disagree on kind, keys or shapes are an ErrMismatch
// naming node, group, tensor and both shapes; every sentinel is wrapped
// with %w. The output is checked finite before it is returned.
//
// # Speed
//
// Parameters are cut into 16 Ki-element spans spread over GOMAXPROCS
// goroutines; extra memory is the output plus per-worker scratch (O(P), no
// copy of the inputs). Weighted sums fold four inputs per pass over an
// L1-resident accumulator. On amd64 with AVX2, order statistics run a
// comparator network across 64 coordinates at once (Batcher's odd–even
// merge sort, pruned to the rows that are read: 8 comparators for five
// inputs, 330–340 for fifty), in assembly, 8 lanes per instruction.
// Elsewhere they use branch-free min/max networks for n ≤ 5, a streaming
// second-smallest/second-largest kernel for one cut per side, and
// otherwise a branch-free quickselect on order-preserving int32 keys
// gathered element-major. Trimmed sums never subtract the extremes from a
// total (1e30 would swallow every honest value); they add the kept values,
// or clamp to the kept range.
package aggregate
