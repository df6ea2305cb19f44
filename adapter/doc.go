// Package adapter is the TALoRA update model and its file formats.
//
// An Update holds, per timestep group ("coarse", "domain", "fine", or "all"
// for a plain PEFT adapter), float32 tensors keyed by their PEFT names, plus
// typed metadata (node, round, sample count, tier, scope, quality). Files are
// safetensors with the tensor name "<group>/<PEFT key>" and daf.* metadata
// keys, as specified in docs/FORMATS.md: Marshal and WriteFile write F32,
// Unmarshal and ReadFile read F32, F16 and BF16 and widen exactly. A file
// without daf.format, such as PEFT's adapter_model.safetensors, is read as
// the single group "all"; ReadPEFT also reads adapter_config.json and
// ExportPEFT writes one group back out as a PEFT adapter directory.
//
// ReadFileMapped is ReadFile for updates that are only read, such as the
// inputs of daf aggregate: it maps the file read-only and lets F32 tensors
// use the file's pages where they lie, so reading N large files costs
// neither N copies of their values nor the time to make them. The mapping
// lives until its Close; the trade-offs (read-only tensors, inputs that
// must not be truncated in place meanwhile) are on ReadFileMapped. Either
// way NaN and infinities are found in one pass over the raw bits on every
// core, and WriteFile streams tensors to the file from where they lie.
//
// Readers never trust a header: the header length, every dtype, shape and
// offset are checked against the file before anything is allocated, the
// tensors must tile the data section exactly, and every refusal wraps
// ErrCorrupt (or ErrNonFinite for NaN and infinities) and names the file
// and the tensor or metadata key at fault. Writes are atomic (temporary
// file, fsync, rename, fsync of the directory), so a crash never leaves a
// torn update in a node's data directory.
package adapter
