// Package adapter is the TALoRA update model and its file formats.
//
// An Update holds, per timestep group ("coarse", "domain", "fine", or "all"
// for a plain PEFT adapter), float32 tensors keyed by their PEFT names, plus
// typed metadata (node, round, sample count, tier, scope, quality). Files are
// safetensors with the tensor name "<group>/<PEFT key>" and daf.* metadata
// keys, as specified in docs/FORMATS.md. Readers never trust a header:
// sizes, offsets and dtypes are checked against the file before anything is
// allocated.
package adapter
