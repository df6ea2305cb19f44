// Package schedule maps diffusion timesteps to TALoRA timestep groups.
//
// A group is a range [Start, End) of t in [0, 1000] with a semantic role
// (coarse structure at high noise, domain patterns in the middle, fine
// refinement at low noise) and the aggregation strategy the federation uses
// for it. Groups come from federation.toml's ranges (FromConfig) or from
// mask-rate thresholds of a noise schedule (GroupsFromNoiseThresholds, the
// seed's "noise schedule semantic grouping"). Lookup finds the group of a
// timestep; BlendWeights gives the weight of each group's LoRA bank at t
// when banks are blended near group boundaries instead of switched.
//
// The package is pure: no I/O, no clock, no randomness. The reference model
// (dlm) drives it once per training or sampling step.
package schedule
