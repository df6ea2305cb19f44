// Package config decodes and validates federation.toml.
//
// Load (a path) and Decode (bytes) start from Default(), the seed's example
// values plus the keys DAF adds, so a file only needs the keys it changes.
// Decoding is strict: an unknown key, a value of the wrong type or a range
// that is not [start, end] is a problem naming its line and dotted key.
// Validate checks values and the rules between them (group ranges must tile
// [0, 1000] without overlap or gap, strategies must be known, privacy
// parameters finite and in range). Both report every problem at once, as a
// *Problems that wraps ErrInvalid, so a user fixes a file in one pass.
//
// The package only describes the federation; each key takes effect in the
// package named next to it in the README's config reference.
package config
