package dlm

import (
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/dafnet/daf/adapter"
)

// TestMeasureLocalRounds prints held-out personal loss after each round of
// local-only training on the first default shards, the numbers doc.go
// quotes, and fails when the mean gain is not positive. It takes about a
// minute, so it runs only with DLM_MEASURE=1; DLM_LR, DLM_STEPS, DLM_BATCH,
// DLM_RATIOB, DLM_CLIP, DLM_WARMUP, DLM_ANNEAL (0 or 1), DLM_ROUNDS and
// DLM_NODES override the defaults.
func TestMeasureLocalRounds(t *testing.T) {
	if os.Getenv("DLM_MEASURE") == "" {
		t.Skip("set DLM_MEASURE=1 to measure local training over rounds")
	}
	envF := func(k string, def float64) float64 {
		if v, err := strconv.ParseFloat(os.Getenv(k), 64); err == nil {
			return v
		}
		return def
	}
	cfg := DefaultTrainConfig()
	cfg.LR = envF("DLM_LR", cfg.LR)
	cfg.Steps = int(envF("DLM_STEPS", float64(cfg.Steps)))
	cfg.Batch = int(envF("DLM_BATCH", float64(cfg.Batch)))
	cfg.LRRatioB = envF("DLM_RATIOB", cfg.LRRatioB)
	cfg.ClipGrad = envF("DLM_CLIP", cfg.ClipGrad)
	cfg.Warmup = int(envF("DLM_WARMUP", float64(cfg.Warmup)))
	cfg.Anneal = envF("DLM_ANNEAL", map[bool]float64{true: 1}[cfg.Anneal]) != 0
	rounds := int(envF("DLM_ROUNDS", 8))
	nodes := int(envF("DLM_NODES", 3))
	base, err := DefaultBase()
	if err != nil {
		t.Fatal(err)
	}
	shards, err := DefaultCorpus(5)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("cfg %+v\n", cfg)
	var gainSum float64
	for _, sh := range shards[:nodes] {
		banks := NewBanks(base, adapter.DefaultGroups, 1)
		ev, err := Evaluate(base, banks, sh.Heldout, 24, 17)
		if err != nil {
			t.Fatal(err)
		}
		line := fmt.Sprintf("%-10s r0 %.3f", sh.Name, ev.Overall)
		first := ev.Overall
		for r := 1; r <= rounds; r++ {
			c := cfg
			c.Seed = uint64(r)*7919 + 3
			res, err := Train(base, banks, sh.Train, c)
			if err != nil {
				t.Fatal(err)
			}
			banks = res.Banks
			ev, err = Evaluate(base, banks, sh.Heldout, 24, 17)
			if err != nil {
				t.Fatal(err)
			}
			line += fmt.Sprintf(" %.3f", ev.Overall)
		}
		fmt.Printf("%s  gain %.3f  groups %v\n", line, first-ev.Overall, ev.Loss)
		gainSum += first - ev.Overall
	}
	// Training that diverges or only adds noise shows as no mean gain.
	if !(gainSum > 0) {
		t.Fatalf("mean held-out gain over %d shards is %.4f nats; local training did not help", nodes, gainSum/float64(nodes))
	}
}
