package adapter

import (
	"encoding/binary"
	"math"
	"reflect"
)

// rawFile assembles a safetensors file from a header written by hand and a
// data section, so tests can build files no writer would produce.
func rawFile(header string, data []byte) []byte {
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	out = append(out, header...)
	return append(out, data...)
}

func f32Bytes(vs ...float32) []byte {
	var out []byte
	for _, v := range vs {
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
	}
	return out
}

func u16Bytes(vs ...uint16) []byte {
	var out []byte
	for _, v := range vs {
		out = binary.LittleEndian.AppendUint16(out, v)
	}
	return out
}

// sampleUpdate is a small three-group update with full metadata.
func sampleUpdate() *Update {
	u := New()
	u.Meta.Node = "n1"
	u.Meta.Round = 7
	u.Meta.Samples = 128
	u.Meta.Tier = "tenant"
	u.Meta.Scope = "acme"
	u.Meta.Rank = 2
	u.Meta.LoraAlpha = 4
	u.Meta.Quality = map[string]GroupQuality{"domain": {PPLBefore: 12, PPLAfter: 10.5, TaskAccuracy: map[string]float64{"qa": 0.61}}}
	u.Meta.Extra = map[string]string{"trainer": "dlm"}
	for gi, g := range []string{"coarse", "domain", "fine"} {
		a := NewTensor(2, 3)
		b := NewTensor(4, 2)
		for i := range a.Data {
			a.Data[i] = float32(gi+1) * float32(i+1) / 8
		}
		for i := range b.Data {
			b.Data[i] = -float32(gi+1) * float32(i) / 16
		}
		u.Set(g, "base_model.model.layers.0.attn.q_proj.lora_A.weight", a)
		u.Set(g, "base_model.model.layers.0.attn.q_proj.lora_B.weight", b)
	}
	return u
}

// fataler is what sameUpdate needs from *testing.T and *rapid.T.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// sameUpdate compares two updates exactly: metadata (empty and nil maps
// alike) and every tensor bit for bit.
func sameUpdate(t fataler, got, want *Update) {
	t.Helper()
	gm, wm := normMeta(got.Meta), normMeta(want.Meta)
	if !reflect.DeepEqual(gm, wm) {
		t.Fatalf("metadata differs:\n got %+v\nwant %+v", gm, wm)
	}
	if !reflect.DeepEqual(got.GroupNames(), want.GroupNames()) {
		t.Fatalf("groups %v, want %v", got.GroupNames(), want.GroupNames())
	}
	for _, g := range want.GroupNames() {
		if !reflect.DeepEqual(got.Keys(g), want.Keys(g)) {
			t.Fatalf("group %s keys %v, want %v", g, got.Keys(g), want.Keys(g))
		}
		for _, k := range want.Keys(g) {
			a, b := got.Groups[g][k], want.Groups[g][k]
			if !reflect.DeepEqual(nonNilShape(a.Shape), nonNilShape(b.Shape)) || len(a.Data) != len(b.Data) {
				t.Fatalf("%s/%s: shape %v, want %v", g, k, a.Shape, b.Shape)
			}
			for i := range a.Data {
				if math.Float32bits(a.Data[i]) != math.Float32bits(b.Data[i]) {
					t.Fatalf("%s/%s[%d] = %v, want %v", g, k, i, a.Data[i], b.Data[i])
				}
			}
		}
	}
}

func normMeta(m Metadata) Metadata {
	if len(m.Extra) == 0 {
		m.Extra = nil
	}
	if len(m.Quality) == 0 {
		m.Quality = nil
	}
	for g, q := range m.Quality {
		if len(q.TaskAccuracy) == 0 {
			q.TaskAccuracy = nil
			m.Quality[g] = q
		}
	}
	if len(m.Groups) == 0 {
		m.Groups = nil
	}
	return m
}
