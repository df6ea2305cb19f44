package compress

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/dafnet/daf/adapter"
)

func sampleUpdate(rng *rand.Rand) *adapter.Update {
	u := adapter.New()
	u.Meta.Node = "12D3KooWnode"
	u.Meta.Round = 42
	u.Meta.Samples = 128
	u.Meta.Tier = "tenant"
	u.Meta.Scope = "acme"
	u.Meta.Rank = 4
	u.Meta.LoraAlpha = 8
	u.Meta.Quality = map[string]adapter.GroupQuality{
		"domain": {PPLBefore: 12, PPLAfter: 10.5, TaskAccuracy: map[string]float64{"qa": 0.61, "cloze": 0.4}},
		"fine":   {PPLAfter: 3},
	}
	u.Meta.Extra = map[string]string{"daf.custom": "x", "a": ""}
	for _, g := range []string{"coarse", "domain", "fine"} {
		for _, m := range []string{"q_proj", "v_proj"} {
			a := adapter.NewTensor(4, 16)
			b := adapter.NewTensor(16, 4)
			for i := range a.Data {
				a.Data[i] = float32(rng.NormFloat64())
				b.Data[i] = float32(rng.NormFloat64() * 0.01)
			}
			u.Set(g, "base_model.model.layers.0.attn."+m+".lora_A.weight", a)
			u.Set(g, "base_model.model.layers.0.attn."+m+".lora_B.weight", b)
		}
	}
	u.Set("fine", "head.bias", &adapter.Tensor{Shape: []int{3}, Data: []float32{0, 0, 0}})
	return u
}

func TestUpdateRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	u := sampleUpdate(rng)
	raw := Options{SparsityThreshold: 0.9, QuantizationBits: RawBits}
	b, err := EncodeUpdate(u, raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeUpdate(b, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	m, w := back.Meta, u.Meta
	if m.Format != adapter.Format || m.Kind != w.Kind || m.Node != w.Node || m.Round != w.Round || m.Samples != w.Samples ||
		m.Tier != w.Tier || m.Scope != w.Scope || m.Rank != w.Rank || m.LoraAlpha != w.LoraAlpha || len(m.Groups) != 3 ||
		m.Groups[1] != w.Groups[1] || m.Quality["domain"].TaskAccuracy["qa"] != 0.61 || m.Quality["fine"].PPLAfter != 3 ||
		m.Extra["daf.custom"] != "x" || len(m.Extra) != 2 {
		t.Fatalf("metadata changed:\n got %+v\nwant %+v", m, w)
	}
	if back.NumParams() != u.NumParams() {
		t.Fatalf("%d params, want %d", back.NumParams(), u.NumParams())
	}
	for _, g := range u.GroupNames() {
		for _, k := range u.Keys(g) {
			got, want := back.Get(g, k), u.Get(g, k)
			if got == nil || !got.SameShape(want) {
				t.Fatalf("%s/%s: shape %v, want %v", g, k, got, want.Shape)
			}
			for i := range want.Data {
				if got.Data[i] != want.Data[i] {
					t.Fatalf("%s/%s[%d] = %v, want %v (lossless codec)", g, k, i, got.Data[i], want.Data[i])
				}
			}
		}
	}
	again, _ := EncodeUpdate(u, raw, nil)
	if !bytes.Equal(again, b) {
		t.Fatal("encoding the same update twice gave different bytes")
	}
	// 8-bit with feedback: every tensor within its bound.
	fb := NewErrorFeedback()
	b8, err := EncodeUpdate(u, DefaultOptions(), fb)
	if err != nil {
		t.Fatal(err)
	}
	back8, err := DecodeUpdate(b8, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range u.GroupNames() {
		for _, k := range u.Keys(g) {
			want := u.Get(g, k).Data
			mn, mx := minMax(want)
			bound := boundFor(mn, mx, 8)
			for i, v := range back8.Get(g, k).Data {
				if math.Abs(float64(v-want[i])) > bound {
					t.Fatalf("%s/%s[%d]: error %v > %v", g, k, i, v-want[i], bound)
				}
			}
		}
	}
	if fb.Residual("coarse/base_model.model.layers.0.attn.q_proj.lora_A.weight") == nil {
		t.Fatal("feedback holds no residual under group/key")
	}
	if len(b8)*2 > len(b) {
		t.Fatalf("8-bit update %d bytes vs lossless %d: not compressed", len(b8), len(b))
	}
}

func TestEncodeUpdateRefuses(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	cases := map[string]func(u *adapter.Update){
		"NaN tensor":    func(u *adapter.Update) { u.Get("fine", "head.bias").Data[1] = float32(math.NaN()) },
		"shape":         func(u *adapter.Update) { u.Get("fine", "head.bias").Shape = []int{4} },
		"NaN samples":   func(u *adapter.Update) { u.Meta.Samples = math.NaN() },
		"neg samples":   func(u *adapter.Update) { u.Meta.Samples = -1 },
		"Inf quality":   func(u *adapter.Update) { u.Meta.Quality["x"] = adapter.GroupQuality{PPLAfter: math.Inf(1)} },
		"unknown tier":  func(u *adapter.Update) { u.Meta.Tier = "galaxy" },
		"unknown kind":  func(u *adapter.Update) { u.Meta.Kind = "diff" },
		"other format":  func(u *adapter.Update) { u.Meta.Format = "talora-update/9" },
		"nil tensor":    func(u *adapter.Update) { u.Set("fine", "nil", nil) },
		"bad option":    nil,
		"huge name len": func(u *adapter.Update) { u.Meta.Node = string(make([]byte, 70000)) },
	}
	for name, mod := range cases {
		u := sampleUpdate(rng)
		opt := DefaultOptions()
		if mod == nil {
			opt.QuantizationBits = 0
		} else {
			mod(u)
		}
		_, err := EncodeUpdate(u, opt, nil)
		if err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
	u := sampleUpdate(rng)
	u.Get("fine", "head.bias").Data[2] = float32(math.Inf(-1))
	_, err := EncodeUpdate(u, DefaultOptions(), nil)
	if !errors.Is(err, ErrNonFinite) || !containsStr(err.Error(), "fine/head.bias") {
		t.Fatalf("error %v does not name the tensor", err)
	}
}

func TestDecodeUpdateRejects(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	u := sampleUpdate(rng)
	good, err := EncodeUpdate(u, DefaultOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Every truncation is an error, never a panic.
	for cut := 0; cut < len(good); cut++ {
		if _, err := DecodeUpdate(good[:cut], DefaultLimits()); err == nil {
			t.Fatalf("truncated at %d of %d accepted", cut, len(good))
		}
	}
	if _, err := DecodeUpdate(append(append([]byte(nil), good...), 0), DefaultLimits()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("trailing byte: err = %v", err)
	}
	tight := []struct {
		name string
		mod  func(l *Limits)
	}{
		{"bytes", func(l *Limits) { l.MaxBytes = len(good) - 1 }},
		{"tensor elems", func(l *Limits) { l.MaxElemsPerTensor = 63 }},
		{"total elems", func(l *Limits) { l.MaxTotalElems = u.NumParams() - 1 }},
		{"tensors", func(l *Limits) { l.MaxTensors = 12 }},
		{"groups", func(l *Limits) { l.MaxGroups = 2 }},
		{"dims", func(l *Limits) { l.MaxDims = 1 }},
		{"names", func(l *Limits) { l.MaxNameLen = 20 }},
		{"meta", func(l *Limits) { l.MaxMetaEntries = 1 }},
	}
	for _, c := range tight {
		lim := DefaultLimits()
		c.mod(&lim)
		if _, err := DecodeUpdate(good, lim); !errors.Is(err, ErrTooLarge) {
			t.Errorf("limit %s: err = %v", c.name, err)
		}
	}
	// A duplicated or unsorted tensor name: swap two equal-length keys'
	// last letters so the order breaks.
	dup := bytes.Replace(good, []byte("v_proj.lora_A"), []byte("q_proj.lora_A"), 1)
	if _, err := DecodeUpdate(dup, DefaultLimits()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("duplicate tensor name: err = %v", err)
	}
	wrongVersion := append([]byte(nil), good...)
	wrongVersion[4] = 2
	if _, err := DecodeUpdate(wrongVersion, DefaultLimits()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("version: err = %v", err)
	}
}
