package compress

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"

	"github.com/dafnet/daf/adapter"
	"github.com/dafnet/daf/privacy"
)

// updateMagic and updateVersion open an encoded update.
var updateMagic = [4]byte{'D', 'A', 'F', 'U'}

const updateVersion = 1

// EncodeUpdate encodes the whole update: metadata (format, kind, group
// ranges, node, round, samples, tier, scope, rank, alpha, quality, extra keys)
// and every group's tensors with their shapes, each through EncodeTensor (or
// fb.Encode under the name "group/key" when fb is not nil). Output is
// deterministic: every map is written in sorted order.
func EncodeUpdate(u *adapter.Update, opt Options, fb *ErrorFeedback) ([]byte, error) {
	if err := opt.Validate(); err != nil {
		return nil, err
	}
	m := &u.Meta
	if m.Format != "" && m.Format != adapter.Format {
		return nil, fmt.Errorf("%w: update format %q, this node writes %q", ErrCorrupt, m.Format, adapter.Format)
	}
	if err := checkMeta(m); err != nil {
		return nil, err
	}
	w := &writer{}
	w.raw(updateMagic[:])
	w.u8(updateVersion)
	w.str(adapter.Format)
	w.str(string(m.Kind))
	w.u16(len(m.Groups))
	for _, g := range m.Groups {
		w.str(g.Name)
		w.u32(uint32(int32(g.Start)))
		w.u32(uint32(int32(g.End)))
	}
	w.str(m.Node)
	w.u64(m.Round)
	w.f64(m.Samples)
	w.str(m.Tier)
	w.str(m.Scope)
	w.u32(uint32(m.Rank))
	w.f64(m.LoraAlpha)
	qnames := sortedKeys(m.Quality)
	w.u16(len(qnames))
	for _, g := range qnames {
		q := m.Quality[g]
		w.str(g)
		w.f64(q.PPLBefore)
		w.f64(q.PPLAfter)
		tasks := sortedKeys(q.TaskAccuracy)
		w.u16(len(tasks))
		for _, task := range tasks {
			w.str(task)
			w.f64(q.TaskAccuracy[task])
		}
	}
	extra := sortedKeys(m.Extra)
	w.u16(len(extra))
	for _, k := range extra {
		w.str(k)
		w.str(m.Extra[k])
	}
	groups := u.GroupNames()
	w.u16(len(groups))
	for _, g := range groups {
		keys := u.Keys(g)
		w.str(g)
		w.u32(uint32(len(keys)))
		for _, k := range keys {
			t := u.Groups[g][k]
			if t == nil {
				return nil, fmt.Errorf("%w: tensor %s/%s is nil", ErrShape, g, k)
			}
			if t.NumElements() != len(t.Data) || len(t.Shape) > 255 {
				return nil, fmt.Errorf("%w: tensor %s/%s has shape %v and %d values", ErrShape, g, k, t.Shape, len(t.Data))
			}
			var enc []byte
			var err error
			if fb != nil {
				enc, err = fb.Encode(g+"/"+k, t.Data, opt)
			} else {
				enc, err = EncodeTensor(t.Data, opt)
			}
			if err != nil {
				return nil, fmt.Errorf("tensor %s/%s: %w", g, k, err)
			}
			w.str(k)
			w.u8(uint8(len(t.Shape)))
			for _, d := range t.Shape {
				if d < 0 || uint64(d) > math.MaxUint32 {
					return nil, fmt.Errorf("%w: tensor %s/%s has dimension %d", ErrShape, g, k, d)
				}
				w.u32(uint32(d))
			}
			w.u32(uint32(len(enc)))
			w.raw(enc)
		}
	}
	if w.err != nil {
		return nil, w.err
	}
	return w.b, nil
}

// checkMeta refuses metadata that the decoder would refuse, so that a node
// never sends what its peers reject.
func checkMeta(m *adapter.Metadata) error {
	if m.Kind != adapter.KindDelta && m.Kind != adapter.KindAdapter {
		return fmt.Errorf("%w: update kind %q", ErrCorrupt, m.Kind)
	}
	if _, err := privacy.ParseTier(m.Tier); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if m.Rank < 0 || int64(m.Rank) > math.MaxUint32 {
		return fmt.Errorf("%w: rank %d", ErrCorrupt, m.Rank)
	}
	if err := finiteNonNegative("samples", m.Samples); err != nil {
		return err
	}
	if err := finiteNonNegative("lora_alpha", m.LoraAlpha); err != nil {
		return err
	}
	for g, q := range m.Quality {
		for name, v := range map[string]float64{"ppl_before": q.PPLBefore, "ppl_after": q.PPLAfter} {
			if err := finiteNonNegative("quality "+g+" "+name, v); err != nil {
				return err
			}
		}
		for task, v := range q.TaskAccuracy {
			if err := finiteNonNegative("quality "+g+" task_accuracy "+task, v); err != nil {
				return err
			}
		}
	}
	for _, g := range m.Groups {
		if int64(g.Start) != int64(int32(g.Start)) || int64(g.End) != int64(int32(g.End)) {
			return fmt.Errorf("%w: group range %s [%d, %d) out of 32-bit range", ErrCorrupt, g.Name, g.Start, g.End)
		}
	}
	return nil
}

func finiteNonNegative(what string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return fmt.Errorf("%w: %s = %v (want a finite value ≥ 0)", ErrCorrupt, what, v)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// DecodeUpdate decodes an update written by EncodeUpdate within lim.
func DecodeUpdate(b []byte, lim Limits) (*adapter.Update, error) {
	if len(b) > lim.MaxBytes {
		return nil, fmt.Errorf("%w: update of %d bytes, limit %d", ErrTooLarge, len(b), lim.MaxBytes)
	}
	r := &reader{b: b, lim: lim}
	if len(b) < 4 || [4]byte(b[:4]) != updateMagic {
		return nil, fmt.Errorf("%w: not a DAF update payload (bad magic)", ErrCorrupt)
	}
	r.take(4, "magic")
	if v := r.u8("version"); v != updateVersion {
		return nil, fmt.Errorf("%w: update payload version %d, this node reads %d", ErrCorrupt, v, updateVersion)
	}
	u := &adapter.Update{Groups: map[string]map[string]*adapter.Tensor{}}
	m := &u.Meta
	if m.Format = r.str("format"); r.err == nil && m.Format != adapter.Format {
		return nil, fmt.Errorf("%w: update format %q, this node reads %q", ErrCorrupt, m.Format, adapter.Format)
	}
	m.Kind = adapter.Kind(r.str("kind"))
	nr := r.count16("group ranges", lim.MaxMetaEntries)
	for i := 0; i < nr && r.err == nil; i++ {
		g := adapter.GroupRange{Name: r.str("group range name")}
		g.Start = int(int32(r.u32("group range start")))
		g.End = int(int32(r.u32("group range end")))
		m.Groups = append(m.Groups, g)
	}
	m.Node = r.str("node")
	m.Round = r.u64("round")
	m.Samples = r.f64("samples")
	m.Tier = r.str("tier")
	m.Scope = r.str("scope")
	m.Rank = int(r.u32("rank"))
	m.LoraAlpha = r.f64("lora_alpha")
	nq := r.count16("quality entries", lim.MaxMetaEntries)
	prev := ""
	for i := 0; i < nq && r.err == nil; i++ {
		g := r.ascending(&prev, i, "quality group")
		var q adapter.GroupQuality
		q.PPLBefore = r.f64("ppl_before")
		q.PPLAfter = r.f64("ppl_after")
		nt := r.count16("task accuracies", lim.MaxMetaEntries)
		prevTask := ""
		for j := 0; j < nt && r.err == nil; j++ {
			task := r.ascending(&prevTask, j, "task name")
			if q.TaskAccuracy == nil {
				q.TaskAccuracy = map[string]float64{}
			}
			q.TaskAccuracy[task] = r.f64("task accuracy")
		}
		if m.Quality == nil {
			m.Quality = map[string]adapter.GroupQuality{}
		}
		m.Quality[g] = q
	}
	ne := r.count16("extra metadata keys", lim.MaxMetaEntries)
	prev = ""
	for i := 0; i < ne && r.err == nil; i++ {
		k := r.ascending(&prev, i, "extra key")
		if m.Extra == nil {
			m.Extra = map[string]string{}
		}
		m.Extra[k] = r.str("extra value")
	}
	if r.err != nil {
		return nil, r.err
	}
	if err := checkMeta(m); err != nil {
		return nil, err
	}
	if err := r.tensors(u); err != nil {
		return nil, err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes after the last tensor", ErrCorrupt, len(r.b))
	}
	return u, nil
}

// tensors decodes the groups and their tensors, holding the running totals
// against the limits before each allocation.
func (r *reader) tensors(u *adapter.Update) error {
	ng := r.count16("groups", r.lim.MaxGroups)
	totalTensors, totalElems := 0, 0
	prevGroup := ""
	for gi := 0; gi < ng && r.err == nil; gi++ {
		g := r.ascending(&prevGroup, gi, "group")
		nt := int(r.u32("tensor count"))
		if r.err != nil {
			break
		}
		if nt > r.lim.MaxTensors-totalTensors {
			return fmt.Errorf("%w: group %s has %d tensors, %d allowed in total", ErrTooLarge, g, nt, r.lim.MaxTensors)
		}
		totalTensors += nt
		prevKey := ""
		for ti := 0; ti < nt && r.err == nil; ti++ {
			k := r.ascending(&prevKey, ti, "tensor name in group "+g)
			nd := int(r.u8("rank of " + g + "/" + k))
			if r.err != nil {
				break
			}
			if nd > r.lim.MaxDims {
				return fmt.Errorf("%w: tensor %s/%s has %d dimensions, limit %d", ErrTooLarge, g, k, nd, r.lim.MaxDims)
			}
			shape := make([]int, nd)
			elems := uint64(1)
			for d := range shape {
				shape[d] = int(r.u32("shape"))
				elems *= uint64(shape[d])
				if elems > uint64(r.lim.MaxElemsPerTensor) {
					elems = uint64(r.lim.MaxElemsPerTensor) + 1 // keep the product from overflowing
				}
			}
			enc := r.take(int(r.u32("encoded length")), "tensor "+g+"/"+k)
			if r.err != nil {
				break
			}
			if elems > uint64(r.lim.MaxElemsPerTensor) || int(elems) > r.lim.MaxTotalElems-totalElems {
				return fmt.Errorf("%w: tensor %s/%s of shape %v exceeds the element limits", ErrTooLarge, g, k, shape)
			}
			data, err := DecodeTensor(enc, int(elems))
			if err != nil {
				return fmt.Errorf("tensor %s/%s: %w", g, k, err)
			}
			if uint64(len(data)) != elems {
				return fmt.Errorf("%w: tensor %s/%s has shape %v but %d values", ErrShape, g, k, shape, len(data))
			}
			totalElems += len(data)
			u.Set(g, k, &adapter.Tensor{Shape: shape, Data: data})
		}
		if nt == 0 && r.err == nil {
			u.Groups[g] = map[string]*adapter.Tensor{}
		}
	}
	return r.err
}

// writer appends little-endian fields; names longer than 65535 bytes stick
// as err.
type writer struct {
	b   []byte
	err error
}

func (w *writer) raw(p []byte) { w.b = append(w.b, p...) }
func (w *writer) u8(v uint8)   { w.b = append(w.b, v) }
func (w *writer) u16(v int) {
	if v > math.MaxUint16 && w.err == nil {
		w.err = fmt.Errorf("%w: %d entries in one list", ErrTooLarge, v)
	}
	w.b = binary.LittleEndian.AppendUint16(w.b, uint16(v))
}
func (w *writer) u32(v uint32)  { w.b = binary.LittleEndian.AppendUint32(w.b, v) }
func (w *writer) u64(v uint64)  { w.b = binary.LittleEndian.AppendUint64(w.b, v) }
func (w *writer) f64(v float64) { w.u64(math.Float64bits(v)) }
func (w *writer) str(s string) {
	if len(s) > math.MaxUint16 && w.err == nil {
		w.err = fmt.Errorf("%w: name of %d bytes", ErrTooLarge, len(s))
	}
	w.b = binary.LittleEndian.AppendUint16(w.b, uint16(len(s)))
	w.b = append(w.b, s...)
}

// reader consumes fields front to back; the first problem sticks as err.
type reader struct {
	b   []byte
	lim Limits
	err error
}

func (r *reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = fmt.Errorf("%w: truncated %s (%d bytes wanted, %d left)", ErrCorrupt, what, n, len(r.b))
		return nil
	}
	f := r.b[:n:n]
	r.b = r.b[n:]
	return f
}

func (r *reader) u8(what string) uint8 {
	if f := r.take(1, what); f != nil {
		return f[0]
	}
	return 0
}

func (r *reader) u32(what string) uint32 {
	if f := r.take(4, what); f != nil {
		return binary.LittleEndian.Uint32(f)
	}
	return 0
}

func (r *reader) u64(what string) uint64 {
	if f := r.take(8, what); f != nil {
		return binary.LittleEndian.Uint64(f)
	}
	return 0
}

func (r *reader) f64(what string) float64 { return math.Float64frombits(r.u64(what)) }

func (r *reader) count16(what string, max int) int {
	f := r.take(2, what)
	if f == nil {
		return 0
	}
	n := int(binary.LittleEndian.Uint16(f))
	if n > max {
		r.err = fmt.Errorf("%w: %d %s, limit %d", ErrTooLarge, n, what, max)
		return 0
	}
	return n
}

func (r *reader) str(what string) string {
	f := r.take(2, what)
	if f == nil {
		return ""
	}
	n := int(binary.LittleEndian.Uint16(f))
	if n > r.lim.MaxNameLen {
		r.err = fmt.Errorf("%w: %s of %d bytes, limit %d", ErrTooLarge, what, n, r.lim.MaxNameLen)
		return ""
	}
	return string(r.take(n, what))
}

// ascending reads a name that must sort strictly after the previous one in
// its list (i > 0): one canonical order, and no duplicates.
func (r *reader) ascending(prev *string, i int, what string) string {
	s := r.str(what)
	if r.err == nil && i > 0 && s <= *prev {
		r.err = fmt.Errorf("%w: %s %q after %q (names must be unique and sorted)", ErrCorrupt, what, s, *prev)
	}
	*prev = s
	return s
}
