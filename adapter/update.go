package adapter

import (
	"fmt"
	"math"
	"sort"
	"strings"
)

// Format is the value of the daf.format metadata key this version writes.
const Format = "talora-update/1"

// Kind says whether an update's tensors are a change to apply (delta) or
// complete LoRA factors (adapter). Products B·A are only meaningful for
// adapters, or for deltas once a base adapter is added back.
type Kind string

const (
	KindDelta   Kind = "delta"
	KindAdapter Kind = "adapter"
)

// Tensor is a dense row-major float32 tensor. Every format we read is widened
// to float32 on load, so the aggregation code only ever sees one type.
type Tensor struct {
	Shape []int
	Data  []float32
}

// NewTensor returns a zero tensor of the given shape.
func NewTensor(shape ...int) *Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return &Tensor{Shape: append([]int(nil), shape...), Data: make([]float32, n)}
}

// NumElements is the product of the shape.
func (t *Tensor) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Clone returns a deep copy.
func (t *Tensor) Clone() *Tensor {
	return &Tensor{Shape: append([]int(nil), t.Shape...), Data: append([]float32(nil), t.Data...)}
}

// SameShape reports whether two tensors have identical shapes.
func (t *Tensor) SameShape(o *Tensor) bool {
	if len(t.Shape) != len(o.Shape) {
		return false
	}
	for i := range t.Shape {
		if t.Shape[i] != o.Shape[i] {
			return false
		}
	}
	return true
}

// L2 is the Euclidean norm, accumulated in float64.
func (t *Tensor) L2() float64 {
	var s float64
	for _, v := range t.Data {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s)
}

// GroupQuality is what a node reports about one timestep group's training,
// used by the quality-weighted strategy. Zero values mean "not reported".
type GroupQuality struct {
	PPLBefore    float64            `json:"ppl_before,omitempty"`
	PPLAfter     float64            `json:"ppl_after,omitempty"`
	TaskAccuracy map[string]float64 `json:"task_accuracy,omitempty"`
}

// GroupRange is a named timestep range [Start, End) as written in daf.groups.
type GroupRange struct {
	Name  string
	Start int
	End   int
}

// DefaultGroups are the seed's three timestep groups.
var DefaultGroups = []GroupRange{
	{Name: "coarse", Start: 700, End: 1000},
	{Name: "domain", Start: 300, End: 700},
	{Name: "fine", Start: 0, End: 300},
}

// Metadata is the typed form of the safetensors __metadata__ keys (daf.*).
// Keys we do not know are kept in Extra so a round trip loses nothing.
type Metadata struct {
	Format    string
	Kind      Kind
	Groups    []GroupRange
	Node      string
	Round     uint64
	Samples   float64
	Tier      string
	Scope     string
	Rank      int     // 0 = derive from shapes
	LoraAlpha float64 // 0 = equal to rank
	// FanInFanOut is PEFT's flag for base layers that store weights
	// transposed (GPT-2's Conv1D): there ΔW = (α/r)·(B·A)ᵀ.
	FanInFanOut bool
	Quality     map[string]GroupQuality
	Extra       map[string]string
}

// Update is one TALoRA release: per timestep group, tensors keyed by their
// PEFT name (e.g. base_model.model.layers.0.attn.q_proj.lora_A.weight).
// On disk a tensor is named "<group>/<PEFT key>".
type Update struct {
	Meta   Metadata
	Groups map[string]map[string]*Tensor
}

// New returns an empty update with default metadata.
func New() *Update {
	return &Update{
		Meta:   Metadata{Format: Format, Kind: KindDelta, Groups: append([]GroupRange(nil), DefaultGroups...), Samples: 1, Tier: "public"},
		Groups: map[string]map[string]*Tensor{},
	}
}

// Set stores t under group/key, creating the group as needed.
func (u *Update) Set(group, key string, t *Tensor) {
	if u.Groups == nil {
		u.Groups = map[string]map[string]*Tensor{}
	}
	g := u.Groups[group]
	if g == nil {
		g = map[string]*Tensor{}
		u.Groups[group] = g
	}
	g[key] = t
}

// Get returns the tensor at group/key or nil.
func (u *Update) Get(group, key string) *Tensor {
	return u.Groups[group][key]
}

// GroupNames returns the update's group names, sorted.
func (u *Update) GroupNames() []string {
	names := make([]string, 0, len(u.Groups))
	for g := range u.Groups {
		names = append(names, g)
	}
	sort.Strings(names)
	return names
}

// Keys returns a group's tensor keys, sorted, so every iteration over an
// update is deterministic.
func (u *Update) Keys(group string) []string {
	keys := make([]string, 0, len(u.Groups[group]))
	for k := range u.Groups[group] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Clone returns a deep copy (metadata maps included).
func (u *Update) Clone() *Update {
	c := &Update{Meta: u.Meta, Groups: map[string]map[string]*Tensor{}}
	c.Meta.Groups = append([]GroupRange(nil), u.Meta.Groups...)
	if u.Meta.Quality != nil {
		c.Meta.Quality = make(map[string]GroupQuality, len(u.Meta.Quality))
		for k, q := range u.Meta.Quality {
			if q.TaskAccuracy != nil {
				acc := make(map[string]float64, len(q.TaskAccuracy))
				for t, a := range q.TaskAccuracy {
					acc[t] = a
				}
				q.TaskAccuracy = acc
			}
			c.Meta.Quality[k] = q
		}
	}
	if u.Meta.Extra != nil {
		c.Meta.Extra = make(map[string]string, len(u.Meta.Extra))
		for k, v := range u.Meta.Extra {
			c.Meta.Extra[k] = v
		}
	}
	for g, ts := range u.Groups {
		for k, t := range ts {
			c.Set(g, k, t.Clone())
		}
	}
	return c
}

// NumParams is the number of float32 values across all groups.
func (u *Update) NumParams() int {
	n := 0
	for _, ts := range u.Groups {
		for _, t := range ts {
			n += len(t.Data)
		}
	}
	return n
}

// L2 is the joint Euclidean norm over every tensor of every group: the norm
// that privacy clipping and the Byzantine magnitude check use.
func (u *Update) L2() float64 {
	// Sorted order: a sum in map order would round differently from run to
	// run, and a norm compared against a threshold (clipping, Sybil
	// similarity) must give the same verdict every time.
	var s float64
	for _, g := range u.GroupNames() {
		for _, k := range u.Keys(g) {
			for _, v := range u.Groups[g][k].Data {
				s += float64(v) * float64(v)
			}
		}
	}
	return math.Sqrt(s)
}

// CheckFinite returns an error naming the first group/tensor that holds a
// NaN or an infinity.
func (u *Update) CheckFinite() error {
	for _, g := range u.GroupNames() {
		for _, k := range u.Keys(g) {
			for i, v := range u.Groups[g][k].Data {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					return fmt.Errorf("%w: %s[%d] = %v", ErrNonFinite, printable(g+"/"+k), i, v)
				}
			}
		}
	}
	return nil
}

// LoRA key helpers: PEFT names factors "<module>.lora_A.weight" and
// "<module>.lora_B.weight" (older files omit ".weight").

// SplitLoRAKey returns the module name and "A" or "B" for a LoRA factor key,
// or ok=false for any other tensor (such as a modules_to_save weight).
func SplitLoRAKey(key string) (module, factor string, ok bool) {
	for _, f := range []string{"A", "B"} {
		for _, suffix := range []string{".lora_" + f + ".weight", ".lora_" + f} {
			if strings.HasSuffix(key, suffix) {
				return strings.TrimSuffix(key, suffix), f, true
			}
		}
	}
	return "", "", false
}
