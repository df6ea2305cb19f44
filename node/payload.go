package node

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/dafnet/daf/adapter"
)

// ErrBadPayload marks update payload bytes that do not decode.
var ErrBadPayload = errors.New("malformed update payload")

// Dense update payload, the plaintext inside an envelope:
//
//	"DAFP" | version u8 (1) | meta length u32 | meta (JSON of adapter.Metadata)
//	| tensor count u32 | per tensor: name length u16 | name "<group>/<key>"
//	| rank u8 | dims u32 × rank | values f32 little-endian × Π dims
//
// All integers big-endian except the values. The decoder checks every
// length against the bytes that remain before allocating, so a payload can
// never make it allocate more than its own size.
const (
	payloadMagic   = "DAFP"
	payloadVersion = 1
	maxTensorRank  = 8
	maxMetaBytes   = 1 << 20
)

// EncodePayload serialises an update.
func EncodePayload(u *adapter.Update) ([]byte, error) {
	meta, err := json.Marshal(u.Meta)
	if err != nil {
		return nil, fmt.Errorf("encode update metadata: %w", err)
	}
	size := len(payloadMagic) + 1 + 4 + len(meta) + 4
	n := 0
	for _, g := range u.GroupNames() {
		for _, k := range u.Keys(g) {
			t := u.Groups[g][k]
			if t.NumElements() != len(t.Data) {
				return nil, fmt.Errorf("encode update: %s/%s shape %v holds %d values", g, k, t.Shape, len(t.Data))
			}
			size += 2 + len(g) + 1 + len(k) + 1 + 4*len(t.Shape) + 4*len(t.Data)
			n++
		}
	}
	b := make([]byte, 0, size)
	b = append(b, payloadMagic...)
	b = append(b, payloadVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(len(meta)))
	b = append(b, meta...)
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	for _, g := range u.GroupNames() {
		for _, k := range u.Keys(g) {
			t := u.Groups[g][k]
			name := g + "/" + k
			if len(name) > math.MaxUint16 || len(t.Shape) > maxTensorRank {
				return nil, fmt.Errorf("encode update: tensor %s: name of %d bytes or rank %d too large", name, len(name), len(t.Shape))
			}
			b = binary.BigEndian.AppendUint16(b, uint16(len(name)))
			b = append(b, name...)
			b = append(b, byte(len(t.Shape)))
			for _, d := range t.Shape {
				b = binary.BigEndian.AppendUint32(b, uint32(d))
			}
			for _, v := range t.Data {
				b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
			}
		}
	}
	return b, nil
}

// payloadReader reads with bounds checks; the first failure sticks.
type payloadReader struct {
	b   []byte
	err error
}

func (r *payloadReader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = fmt.Errorf("%w: %s needs %d bytes, %d left", ErrBadPayload, what, n, len(r.b))
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *payloadReader) u32(what string) uint32 {
	v := r.take(4, what)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint32(v)
}

// DecodePayload parses bytes made by EncodePayload, refusing non-finite
// values and duplicate tensors.
func DecodePayload(b []byte) (*adapter.Update, error) {
	r := &payloadReader{b: b}
	if m := r.take(len(payloadMagic)+1, "header"); m == nil || string(m[:4]) != payloadMagic || m[4] != payloadVersion {
		if r.err != nil {
			return nil, r.err
		}
		return nil, fmt.Errorf("%w: header %q, want %q version %d", ErrBadPayload, m[:4], payloadMagic, payloadVersion)
	}
	metaLen := r.u32("metadata length")
	if metaLen > maxMetaBytes {
		return nil, fmt.Errorf("%w: metadata of %d bytes, limit %d", ErrBadPayload, metaLen, maxMetaBytes)
	}
	metaBytes := r.take(int(metaLen), "metadata")
	if r.err != nil {
		return nil, r.err
	}
	u := adapter.New()
	if err := json.Unmarshal(metaBytes, &u.Meta); err != nil {
		return nil, fmt.Errorf("%w: metadata: %v", ErrBadPayload, err)
	}
	if math.IsNaN(u.Meta.Samples) || math.IsInf(u.Meta.Samples, 0) || u.Meta.Samples < 0 {
		return nil, fmt.Errorf("%w: sample count %v", ErrBadPayload, u.Meta.Samples)
	}
	count := r.u32("tensor count")
	for i := uint32(0); i < count && r.err == nil; i++ {
		nl := r.take(2, "tensor name length")
		if nl == nil {
			break
		}
		name := string(r.take(int(binary.BigEndian.Uint16(nl)), "tensor name"))
		group, key, ok := strings.Cut(name, "/")
		if r.err == nil && (!ok || group == "" || key == "") {
			return nil, fmt.Errorf("%w: tensor %d name %q is not <group>/<key>", ErrBadPayload, i, name)
		}
		rank := r.take(1, "tensor rank")
		if rank == nil {
			break
		}
		if rank[0] > maxTensorRank {
			return nil, fmt.Errorf("%w: tensor %s has rank %d, limit %d", ErrBadPayload, name, rank[0], maxTensorRank)
		}
		shape := make([]int, rank[0])
		elems := 1
		for d := range shape {
			shape[d] = int(r.u32("tensor dimension"))
			// Every element needs 4 bytes still unread: this bounds the
			// product before it can overflow or allocate.
			if shape[d] > 0 && elems > (len(r.b)/4)/shape[d] {
				return nil, fmt.Errorf("%w: tensor %s shape %v larger than the payload", ErrBadPayload, name, shape[:d+1])
			}
			elems *= shape[d]
		}
		raw := r.take(4*elems, "tensor "+name)
		if r.err != nil {
			break
		}
		if u.Get(group, key) != nil {
			return nil, fmt.Errorf("%w: tensor %s appears twice", ErrBadPayload, name)
		}
		t := &adapter.Tensor{Shape: shape, Data: make([]float32, elems)}
		for j := range t.Data {
			v := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*j:]))
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("%w: tensor %s[%d] = %v", ErrBadPayload, name, j, v)
			}
			t.Data[j] = v
		}
		u.Set(group, key, t)
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadPayload, len(r.b))
	}
	return u, nil
}
