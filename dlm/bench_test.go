package dlm

import (
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

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
// (forward + backward of every sequence, AdamW) in training bytes per
// second. Each Train call also runs its probe set (8 sequences per group,
// forward only, before and after), about 15% on top at 16 steps.
func BenchmarkTrainStep(b *testing.B) {
	base, err := newBase(DefaultConfig(), 1)
	if err != nil {
		b.Fatal(err)
	}
	banks := NewBanks(base, adapter.DefaultGroups, 1)
	data := randomText(64<<10, 1)
	cfg := TrainConfig{Steps: 16, Batch: 16, LR: 1e-2, Seed: 1, ClipGrad: 1}
	tokens := 0
	cpu0 := cpuTime()
	for b.Loop() {
		res, err := Train(base, banks, data, cfg)
		if err != nil {
			b.Fatal(err)
		}
		tokens += res.Tokens
	}
	reportTokens(b, tokens, cpuTime()-cpu0)
}

// BenchmarkPretrainStep measures a full-gradient step (every base weight).
func BenchmarkPretrainStep(b *testing.B) {
	data := randomText(64<<10, 1)
	cfg := DefaultPretrainConfig()
	cfg.Steps = 2
	tokens := 0
	cpu0 := cpuTime()
	for b.Loop() {
		if _, err := Pretrain(data, cfg, nil); err != nil {
			b.Fatal(err)
		}
		tokens += cfg.Steps * cfg.Batch * cfg.Model.SeqLen
	}
	reportTokens(b, tokens, cpuTime()-cpu0)
}

// reportTokens gives wall-clock throughput and, because the machine is
// shared, throughput per CPU-second (what two idle cores would give is
// about twice the latter).
func reportTokens(b *testing.B, tokens int, cpu time.Duration) {
	b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tokens/s")
	b.ReportMetric(float64(tokens)/cpu.Seconds(), "tokens/cpu-s")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
