package dlm

import (
	"math/rand/v2"
	"testing"

	"github.com/dafnet/daf/adapter"
)

func randomText(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 3))
	words := []string{"func ", "return ", "light ", "the ", "colour ", "err ", "nil", "{\n", "}\n", "(x)", " := ", "ray ", "of ", "prism "}
	var out []byte
	for len(out) < n {
		out = append(out, words[rng.IntN(len(words))]...)
	}
	return out[:n]
}

// BenchmarkTrainStep measures local bank training of the default model
// (forward + backward of every sequence, AdamW) in training bytes per second.
func BenchmarkTrainStep(b *testing.B) {
	base, err := newBase(DefaultConfig(), 1)
	if err != nil {
		b.Fatal(err)
	}
	banks := NewBanks(base, adapter.DefaultGroups, 1)
	data := randomText(64<<10, 1)
	cfg := TrainConfig{Steps: 4, Batch: 16, LR: 1e-2, Seed: 1, ClipGrad: 1}
	tokens := 0
	for b.Loop() {
		res, err := Train(base, banks, data, cfg)
		if err != nil {
			b.Fatal(err)
		}
		tokens += res.Tokens
	}
	b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkPretrainStep measures a full-gradient step (every base weight).
func BenchmarkPretrainStep(b *testing.B) {
	data := randomText(64<<10, 1)
	cfg := DefaultPretrainConfig()
	cfg.Steps = 2
	tokens := 0
	for b.Loop() {
		if _, err := Pretrain(data, cfg, nil); err != nil {
			b.Fatal(err)
		}
		tokens += cfg.Steps * cfg.Batch * cfg.Model.SeqLen
	}
	b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
}
