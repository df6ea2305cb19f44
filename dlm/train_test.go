package dlm

import (
	"context"
	"errors"
	"math"
	"reflect"
	"sync"
	"testing"

	"github.com/dafnet/daf/adapter"
)

// smallConfig trains in well under a second.
func smallConfig() ModelConfig {
	return ModelConfig{SeqLen: 16, DModel: 16, Heads: 2, Layers: 2, FF: 32, Rank: 2, Alpha: 4}
}

var (
	smallBaseOnce sync.Once
	smallBase     *Base
	smallBaseErr  error
)

// pretrainedSmall is a small base pretrained once per test binary on
// randomText(8 KiB, seed 1); tests only read it.
func pretrainedSmall(t *testing.T) *Base {
	t.Helper()
	smallBaseOnce.Do(func() {
		cfg := PretrainConfig{Model: smallConfig(), Steps: 60, Batch: 8, LR: 1e-2, Warmup: 5, ClipGrad: 1, Seed: 1}
		smallBase, smallBaseErr = Pretrain(randomText(8<<10, 1), cfg, nil)
	})
	if smallBaseErr != nil {
		t.Fatal(smallBaseErr)
	}
	return smallBase
}

func TestPretrainLowersLoss(t *testing.T) {
	text := randomText(8<<10, 1)
	var first, last float64
	cfg := PretrainConfig{Model: smallConfig(), Steps: 80, Batch: 8, LR: 1e-2, Warmup: 5, ClipGrad: 1, Seed: 1}
	_, err := Pretrain(text, cfg, func(step int, loss float64) {
		if step < 5 {
			first += loss / 5
		}
		if step >= cfg.Steps-5 {
			last += loss / 5
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	// Uniform guessing costs ln 256 = 5.55 nats; the text has 14 words.
	if first < 5 || last > first-1.5 {
		t.Fatalf("pretraining loss went from %.3f to %.3f; want a drop of more than 1.5 nats", first, last)
	}
}

func TestTrainLowersHeldoutLossOfEveryGroup(t *testing.T) {
	base := pretrainedSmall(t)
	// A different domain: banks have something to adapt to.
	domain := []byte{}
	for len(domain) < 8<<10 {
		domain = append(domain, "SELECT name FROM users WHERE id = 42;\n"...)
	}
	banks := NewBanks(base, adapter.DefaultGroups, 7)
	before, err := Evaluate(base, banks, domain, 32, 3)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Train(base, banks, domain, TrainConfig{Steps: 30, Batch: 12, LR: 2e-2, Seed: 5, ClipGrad: 1})
	if err != nil {
		t.Fatal(err)
	}
	after, err := Evaluate(base, res.Banks, domain, 32, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"coarse", "domain", "fine"} {
		if after.Loss[g] > before.Loss[g]-0.1 {
			t.Errorf("group %s: held-out loss %.3f → %.3f, want a drop of 0.1 nats", g, before.Loss[g], after.Loss[g])
		}
		if res.LossAfter[g] >= res.LossBefore[g] {
			t.Errorf("group %s: probe loss %.3f → %.3f did not drop", g, res.LossBefore[g], res.LossAfter[g])
		}
		q := res.Banks.Meta.Quality[g]
		if math.Abs(q.PPLAfter-math.Exp(res.LossAfter[g])) > 1e-9 || q.PPLBefore <= q.PPLAfter {
			t.Errorf("group %s: quality %+v does not match losses %v → %v", g, q, res.LossBefore[g], res.LossAfter[g])
		}
	}
	if res.Banks.Meta.Samples != 360 || res.Samples != 360 || res.Tokens != 360*16 {
		t.Errorf("samples %v/%d tokens %d, want 360/360/%d", res.Banks.Meta.Samples, res.Samples, res.Tokens, 360*16)
	}
	if res.Banks.Meta.Kind != adapter.KindAdapter || res.Banks.Meta.Rank != 2 || res.Banks.Meta.LoraAlpha != 4 {
		t.Errorf("metadata %+v", res.Banks.Meta)
	}
	// The input banks are untouched.
	fresh := NewBanks(base, adapter.DefaultGroups, 7)
	if !reflect.DeepEqual(fresh.Groups, banks.Groups) {
		t.Error("Train modified its input banks")
	}
}

func TestOnlyTheActiveBankLearns(t *testing.T) {
	base := pretrainedSmall(t)
	banks := NewBanks(base, adapter.DefaultGroups, 1)
	// Only the fine group is listed, so only its bank is trained; the
	// other groups' tensors ride along untouched.
	banks.Meta.Groups = []adapter.GroupRange{{Name: "fine", Start: 0, End: 300}}
	res, err := Train(base, banks, randomText(4<<10, 2), TrainConfig{Steps: 3, Batch: 4, LR: 1e-2, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"coarse", "domain"} {
		if !reflect.DeepEqual(res.Banks.Groups[g], banks.Groups[g]) {
			t.Errorf("group %s changed although its bank was not active", g)
		}
	}
	if reflect.DeepEqual(res.Banks.Groups["fine"], banks.Groups["fine"]) {
		t.Error("the active fine bank did not change")
	}
}

func TestTrainIsDeterministic(t *testing.T) {
	base := pretrainedSmall(t)
	banks := NewBanks(base, adapter.DefaultGroups, 3)
	data := randomText(6<<10, 9)
	cfg := TrainConfig{Steps: 4, Batch: 10, LR: 1e-2, WeightDecay: 0.01, Seed: 11, ClipGrad: 0.5}
	a, err := Train(base, banks, data, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Train(base, banks, data, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a.Banks, b.Banks) || !reflect.DeepEqual(a.LossAfter, b.LossAfter) {
		t.Fatal("two runs with one seed differ")
	}
	cfg.Seed = 12
	c, err := Train(base, banks, data, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if reflect.DeepEqual(a.Banks.Groups, c.Banks.Groups) {
		t.Fatal("a different seed gave the same banks")
	}
}

// TestGradientSumIndependentOfCores runs one batch on 1 and on 3 workers:
// the chunked reduction must give bit-identical gradients.
func TestGradientSumIndependentOfCores(t *testing.T) {
	c := tinyConfig()
	b, bank := randomModel(t, c, 9)
	var jobs []seqJob
	for i := range 7 {
		j := testJob(c, uint64(i))
		jobs = append(jobs, j)
	}
	grads := func(workers int) ([]float32, []float32) {
		r := newRunner(b)
		r.works = nil
		for range workers {
			r.works = append(r.works, newSeqWork(c))
		}
		g := newLoRA(c, nil)
		gp := gradView(c, nil)
		js := append([]seqJob(nil), jobs...)
		r.run(js, []*loraParams{bank}, []*loraParams{g}, gp)
		return g.flat, gp.flat
	}
	g1, p1 := grads(1)
	g3, p3 := grads(3)
	if !reflect.DeepEqual(g1, g3) || !reflect.DeepEqual(p1, p3) {
		t.Fatal("gradients depend on the number of workers")
	}
}

func TestEvaluateIsDeterministicAndBanksMatter(t *testing.T) {
	base := pretrainedSmall(t)
	held := randomText(4<<10, 5)
	a, err := Evaluate(base, nil, held, 16, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Evaluate(base, nil, held, 16, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatal("evaluation with one seed differs")
	}
	// Fresh banks (B = 0) change nothing.
	fresh, err := Evaluate(base, NewBanks(base, adapter.DefaultGroups, 1), held, 16, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a.Loss, fresh.Loss) {
		t.Fatalf("fresh banks changed the loss: %v vs %v", a.Loss, fresh.Loss)
	}
	if a.ELBO <= 0 || math.Abs(a.PerplexityBound-math.Exp(a.ELBO)) > 1e-9 {
		t.Fatalf("ELBO %v, bound %v", a.ELBO, a.PerplexityBound)
	}
}

func TestSample(t *testing.T) {
	base := pretrainedSmall(t)
	s1, err := Sample(base, nil, 3, 8, 1)
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := Sample(base, nil, 3, 8, 1)
	if len(s1) != 3*16 || string(s1) != string(s2) {
		t.Fatalf("samples %q and %q", s1, s2)
	}
}

func TestTrainRejectsBadInput(t *testing.T) {
	base := pretrainedSmall(t)
	banks := NewBanks(base, adapter.DefaultGroups, 1)
	data := randomText(2<<10, 1)
	ok := TrainConfig{Steps: 1, Batch: 2, LR: 1e-2}
	cases := map[string]struct {
		banks *adapter.Update
		data  []byte
		cfg   TrainConfig
		want  error
	}{
		"nan lr":       {banks, data, TrainConfig{Steps: 1, Batch: 2, LR: math.NaN()}, ErrConfig},
		"zero steps":   {banks, data, TrainConfig{Batch: 2, LR: 1e-2}, ErrConfig},
		"short data":   {banks, data[:10], ok, ErrData},
		"nan ratio":    {banks, data, TrainConfig{Steps: 1, Batch: 2, LR: 1e-2, LRRatioB: math.NaN()}, ErrConfig},
		"neg warmup":   {banks, data, TrainConfig{Steps: 1, Batch: 2, LR: 1e-2, Warmup: -1}, ErrConfig},
		"decay of B":   {banks, data, TrainConfig{Steps: 1, Batch: 2, LR: 1e-2, WeightDecay: 1, LRRatioB: 200}, ErrConfig},
		"mlp missing":  {dropKey(banks, "fine", loraKey(1, "down", "A")), data, ok, ErrBanks},
		"head shape":   {reshape(banks, "coarse", loraKey(0, "head", "B")), data, ok, ErrBanks},
		"nil banks":    {nil, data, ok, ErrBanks},
		"missing":      {dropKey(banks, "domain", loraKey(1, "v", "B")), data, ok, ErrBanks},
		"wrong shape":  {reshape(banks, "fine", loraKey(0, "q", "A")), data, ok, ErrBanks},
		"non-finite":   {poison(banks, "coarse", loraKey(0, "o", "B")), data, ok, ErrBanks},
		"wrong rank":   {withRank(banks, 8), data, ok, ErrBanks},
		"bad group":    {withGroups(banks, adapter.GroupRange{Name: "x", Start: 900, End: 1200}), data, ok, ErrBanks},
		"absent group": {withGroups(banks, adapter.GroupRange{Name: "x", Start: 0, End: 1000}), data, ok, ErrBanks},
	}
	for name, tc := range cases {
		_, err := Train(base, tc.banks, tc.data, tc.cfg)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: error %v, want %v", name, err, tc.want)
		}
	}
}

func dropKey(u *adapter.Update, g, k string) *adapter.Update {
	c := u.Clone()
	delete(c.Groups[g], k)
	return c
}

func reshape(u *adapter.Update, g, k string) *adapter.Update {
	c := u.Clone()
	t := c.Groups[g][k]
	t.Shape = []int{t.Shape[1], t.Shape[0]}
	return c
}

func poison(u *adapter.Update, g, k string) *adapter.Update {
	c := u.Clone()
	c.Groups[g][k].Data[3] = float32(math.Inf(1))
	return c
}

func withRank(u *adapter.Update, r int) *adapter.Update {
	c := u.Clone()
	c.Meta.Rank = r
	return c
}

func withGroups(u *adapter.Update, gs ...adapter.GroupRange) *adapter.Update {
	c := u.Clone()
	c.Meta.Groups = gs
	return c
}

func TestTrainerRounds(t *testing.T) {
	base := pretrainedSmall(t)
	tr := NewTrainer(base, randomText(12<<10, 4), TrainConfig{Steps: 3, Batch: 6, LR: 1e-2, Seed: 2})
	tr.EvalSamples = 8
	ctx := context.Background()
	u1, err := tr.Train(ctx, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if u1.Meta.Round != 1 || u1.Meta.Samples != 18 || len(u1.Meta.Quality) != 3 {
		t.Fatalf("round metadata %+v", u1.Meta)
	}
	u2, err := tr.Train(ctx, 2, u1)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := tr.Evaluate(ctx, u2)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"coarse", "domain", "fine", "overall"} {
		if v, ok := ev[k]; !ok || v <= 0 || math.IsNaN(v) {
			t.Errorf("evaluation %s = %v", k, v)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := tr.Train(cancelled, 3, u2); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

func TestLearningRateSchedule(t *testing.T) {
	c := TrainConfig{Steps: 4, LR: 0.8, Warmup: 1, Anneal: true}
	// Warm-up halves step 0; annealing scales step s by (4−s)/4.
	want := []float64{0.4, 0.6, 0.4, 0.2}
	for s, w := range want {
		if got := c.lrAt(s); math.Abs(got-w) > 1e-12 {
			t.Errorf("step %d: lr %v, want %v", s, got, w)
		}
	}
	c = TrainConfig{Steps: 4, LR: 0.8}
	for s := range 4 {
		if got := c.lrAt(s); got != 0.8 {
			t.Errorf("constant schedule, step %d: lr %v", s, got)
		}
	}
}

func TestBLearningRateRatioCoversExactlyTheBFactors(t *testing.T) {
	c := tinyConfig()
	lp := newLoRA(c, nil)
	scale := lp.bLRScale(16)
	var nB int
	for _, f := range lp.all {
		nB += len(f.bt)
		// Mark B through the view; its positions must carry the ratio.
		for i := range f.bt {
			f.bt[i] = 1
		}
	}
	for i, v := range lp.flat {
		if (v == 1) != (scale[i] == 16) || (v != 1 && scale[i] != 1) {
			t.Fatalf("flat[%d]: B marker %v, scale %v", i, v, scale[i])
		}
	}
	wantB := c.Layers*c.Rank*(4*c.DModel+c.FF+c.DModel) + c.Rank*ByteVocab
	if nB != wantB {
		t.Fatalf("%d B values, want %d", nB, wantB)
	}
}

func TestNewBanksHoldPEFTNamedFactorsOfEveryModule(t *testing.T) {
	c := tinyConfig()
	base, err := newBase(c, 1)
	if err != nil {
		t.Fatal(err)
	}
	u := NewBanks(base, adapter.DefaultGroups, 1)
	want := map[string][2]int{ // key → shape
		"base_model.model.layers.0.attn.q_proj.lora_A.weight": {c.Rank, c.DModel},
		"base_model.model.layers.1.attn.o_proj.lora_B.weight": {c.DModel, c.Rank},
		"base_model.model.layers.0.mlp.up.lora_A.weight":      {c.Rank, c.DModel},
		"base_model.model.layers.0.mlp.up.lora_B.weight":      {c.FF, c.Rank},
		"base_model.model.layers.1.mlp.down.lora_A.weight":    {c.Rank, c.FF},
		"base_model.model.layers.1.mlp.down.lora_B.weight":    {c.DModel, c.Rank},
		"base_model.model.head.lora_A.weight":                 {c.Rank, c.DModel},
		"base_model.model.head.lora_B.weight":                 {ByteVocab, c.Rank},
	}
	for _, g := range u.GroupNames() {
		if n := len(u.Groups[g]); n != 2*(6*c.Layers+1) {
			t.Errorf("group %s holds %d tensors, want %d", g, n, 2*(6*c.Layers+1))
		}
		for k, shape := range want {
			if ts := u.Get(g, k); !shapeIs(ts, shape[0], shape[1]) {
				t.Errorf("%s/%s: %v, want shape %v", g, k, ts, shape)
			}
		}
		var size int
		for _, ts := range u.Groups[g] {
			size += len(ts.Data)
		}
		if size != loraSize(c) {
			t.Errorf("group %s holds %d values, want %d", g, size, loraSize(c))
		}
	}
}

// A confidently wrong prediction must give a large finite loss, not +Inf:
// the target's probability underflows in float32 long before its logit
// gap does.
func TestLossStaysFiniteForConfidentlyWrongLogits(t *testing.T) {
	w := &seqWork{masked: []int32{0}, logits: make([]float32, ByteVocab)}
	w.logits[1] = 500 // everything on byte 1; the target is byte 0
	got := w.lossAndGrad([]byte{0}, 1, true)
	if math.IsInf(got, 0) || math.IsNaN(got) || math.Abs(got-500) > 1e-3 {
		t.Fatalf("loss = %v, want 500 (the logit gap)", got)
	}
	for j, g := range w.logits {
		if math.IsNaN(float64(g)) || math.IsInf(float64(g), 0) {
			t.Fatalf("gradient[%d] = %v", j, g)
		}
	}
}
