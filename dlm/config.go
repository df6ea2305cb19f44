package dlm

import (
	"fmt"
	"math"
)

// Vocabulary: one token per byte value plus the absorbing mask token.
const (
	ByteVocab  = 256
	MaskToken  = ByteVocab
	InputVocab = ByteVocab + 1
	// ShiftVocab indexes the neighbour embeddings: every input token plus
	// EdgeToken for "outside the window".
	ShiftVocab = InputVocab + 1
	EdgeToken  = InputVocab
	// TimeBuckets is the resolution of the learned timestep embedding:
	// t ∈ [0,1000) falls into bucket t/50. 50 divides the default group
	// boundaries (300, 700), so no bucket straddles two banks.
	TimeBuckets = 20
)

// ModelConfig fixes the shape of the denoiser and of its LoRA banks.
type ModelConfig struct {
	SeqLen int     // bytes per sequence (and learned positions)
	DModel int     // residual width
	Heads  int     // attention heads; must divide DModel
	Layers int     // transformer blocks
	FF     int     // hidden width of each block's MLP
	Rank   int     // LoRA rank of every bank
	Alpha  float64 // LoRA alpha; the update is scaled by Alpha/Rank
}

// DefaultConfig is the shape of the shipped base model; doc.go says why.
func DefaultConfig() ModelConfig {
	return ModelConfig{SeqLen: 64, DModel: 64, Heads: 4, Layers: 2, FF: 128, Rank: 4, Alpha: 8}
}

// Validate reports every problem of the configuration at once.
func (c ModelConfig) Validate() error {
	var probs []string
	check := func(ok bool, format string, args ...any) {
		if !ok {
			probs = append(probs, fmt.Sprintf(format, args...))
		}
	}
	check(c.SeqLen >= 2 && c.SeqLen <= 4096, "seq_len %d outside [2, 4096]", c.SeqLen)
	check(c.DModel >= 2 && c.DModel <= 4096, "d_model %d outside [2, 4096]", c.DModel)
	check(c.Heads >= 1 && c.Heads <= c.DModel, "heads %d outside [1, d_model]", c.Heads)
	check(c.Heads >= 1 && c.DModel%max(c.Heads, 1) == 0, "heads %d do not divide d_model %d", c.Heads, c.DModel)
	check(c.Layers >= 1 && c.Layers <= 64, "layers %d outside [1, 64]", c.Layers)
	check(c.FF >= 1 && c.FF <= 16384, "ff %d outside [1, 16384]", c.FF)
	check(c.Rank >= 1 && c.Rank <= c.DModel, "rank %d outside [1, d_model]", c.Rank)
	check(!math.IsNaN(c.Alpha) && !math.IsInf(c.Alpha, 0) && c.Alpha > 0, "lora alpha %v is not a positive finite number", c.Alpha)
	if len(probs) == 0 {
		return nil
	}
	msg := probs[0]
	for _, p := range probs[1:] {
		msg += "; " + p
	}
	return fmt.Errorf("%w: %s", ErrConfig, msg)
}

// loraScale is PEFT's α/r.
func (c ModelConfig) loraScale() float32 { return float32(c.Alpha / float64(c.Rank)) }

func (c ModelConfig) headDim() int { return c.DModel / c.Heads }
