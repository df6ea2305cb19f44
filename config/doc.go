// Package config decodes and validates federation.toml. Decoding is strict
// (an unknown key is an error naming its line), Default returns the seed's
// values, and Validate reports every problem at once, each naming its key.
package config
