package sim

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/dafnet/daf/adapter"
	"github.com/dafnet/daf/gossip"
	"github.com/dafnet/daf/privacy"
)

// Keyring maps peer IDs to their Ed25519 keys. In libp2p the key is
// embedded in the peer ID itself; the simulator shares one keyring instead.
type Keyring struct {
	mu   sync.RWMutex
	keys map[gossip.PeerID]ed25519.PublicKey
}

// NewKeyring returns an empty keyring.
func NewKeyring() *Keyring { return &Keyring{keys: map[gossip.PeerID]ed25519.PublicKey{}} }

// Add registers a peer's public key.
func (k *Keyring) Add(id gossip.PeerID, pub ed25519.PublicKey) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys[id] = slices.Clone(pub)
}

func (k *Keyring) get(id gossip.PeerID) (ed25519.PublicKey, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	p, ok := k.keys[id]
	return p, ok
}

// MaxMessage is the simulated envelope limit, checked before any allocation.
const MaxMessage = 64 << 20

const codecMagic = "DAFsim2\x00"

// Codec is the simulator's gossip.Codec: a small binary envelope signed with
// Ed25519 over everything but the hop count and the holder hints, the
// payload by its length and SHA-256 as in the product, with Group and
// Tenant payloads sealed by ChaCha20-Poly1305 under a per-scope key. It
// stands in for the product's wire+seal+compress stack with the same
// failure categories, so scenario tests exercise every rejection path.
//
// Layout: a message is its offer followed by the payload (the body).
// offer = magic(8) | hops(1) | len(hints)(4) | hints | len(head)(4) | head
// | sig(64); hints (unsigned, see gossip.HolderHints) is a count byte and
// length-prefixed peer IDs; head = source, round(8), tier(1), scope,
// len(payload)(4), SHA-256(payload) (strings prefixed by a 4-byte length).
// Payload: per tensor, group, key, rank, dims, float32s (little-endian),
// then samples as float64 and the kind (delta | adapter).
type Codec struct {
	Self      gossip.PeerID
	Priv      ed25519.PrivateKey
	Keys      *Keyring
	ScopeKeys map[gossip.Membership][]byte // 32-byte keys of the Group/Tenant scopes held
	// SignAs makes Pack claim another source while signing with Priv: the
	// forged delta of the "garbage under another's name" scenario.
	SignAs gossip.PeerID
}

// NewIdentity derives a deterministic key pair for a simulated node.
func NewIdentity(id gossip.PeerID, seed uint64) ed25519.PrivateKey {
	h := sha256.Sum256(fmt.Appendf(nil, "daf-sim-identity/%s/%d", id, seed))
	return ed25519.NewKeyFromSeed(h[:])
}

func sealed(t privacy.Tier) bool { return t == privacy.Group || t == privacy.Tenant }

// Pack implements gossip.Codec.
func (c *Codec) Pack(round uint64, scope gossip.Membership, hops int, u *adapter.Update) ([]byte, error) {
	if hops < 0 || hops > 255 {
		return nil, fmt.Errorf("%w: hop count %d", gossip.ErrMalformed, hops)
	}
	payload := encodeUpdate(u)
	if sealed(scope.Tier) {
		key, ok := c.ScopeKeys[scope]
		if !ok {
			return nil, fmt.Errorf("%w: node %s holds no key for %s", gossip.ErrSeal, c.Self, scope)
		}
		aead, err := chacha20poly1305.NewX(key)
		if err != nil {
			return nil, fmt.Errorf("%w: scope key for %s: %w", gossip.ErrSeal, scope, err)
		}
		nonce := sha256.Sum256(append(fmt.Appendf(nil, "%s/%d/%s", c.Self, round, scope), payload...))
		payload = aead.Seal(slices.Clone(nonce[:aead.NonceSize()]), nonce[:aead.NonceSize()], payload, []byte(scope.String()))
	}
	source := c.Self
	if c.SignAs != "" {
		source = c.SignAs
	}
	hash := sha256.Sum256(payload)
	var head []byte
	head = appendBytes(head, []byte(source))
	head = binary.LittleEndian.AppendUint64(head, round)
	head = append(head, byte(scope.Tier))
	head = appendBytes(head, []byte(scope.Scope))
	head = binary.LittleEndian.AppendUint32(head, uint32(len(payload)))
	head = append(head, hash[:]...)
	msg := make([]byte, 0, len(codecMagic)+9+len(head)+ed25519.SignatureSize+len(payload))
	msg = append(msg, codecMagic...)
	msg = append(msg, byte(hops))
	msg = binary.LittleEndian.AppendUint32(msg, 0) // no hints
	msg = binary.LittleEndian.AppendUint32(msg, uint32(len(head)))
	msg = append(msg, head...)
	msg = append(msg, ed25519.Sign(c.Priv, head)...)
	return append(msg, payload...), nil
}

type parsed struct {
	hops  int
	hints []byte // raw hint section
	rest  []byte // len(head) | head | sig
	head  []byte
	sig   []byte
	end   int // where the offer ends (and a message's payload begins)

	source gossip.PeerID
	round  uint64
	scope  gossip.Membership
	plen   int
	phash  []byte
}

// parse reads the offer that opens b (an offer, or a whole message).
func parse(b []byte) (parsed, error) {
	if len(b) > MaxMessage {
		return parsed{}, fmt.Errorf("%w: %d bytes, limit %d", gossip.ErrTooLarge, len(b), MaxMessage)
	}
	fixed := len(codecMagic) + 9
	if len(b) < fixed+ed25519.SignatureSize || string(b[:len(codecMagic)]) != codecMagic {
		return parsed{}, fmt.Errorf("%w: not a simulator envelope (%d bytes)", gossip.ErrMalformed, len(b))
	}
	p := parsed{hops: int(b[len(codecMagic)])}
	h := binary.LittleEndian.Uint32(b[len(codecMagic)+1:])
	if uint64(h) > uint64(len(b)-fixed-ed25519.SignatureSize) {
		return parsed{}, fmt.Errorf("%w: hint section of %d bytes in a %d-byte message", gossip.ErrMalformed, h, len(b))
	}
	at := len(codecMagic) + 5 + int(h)
	p.hints = b[len(codecMagic)+5 : at]
	n := uint64(binary.LittleEndian.Uint32(b[at:]))
	if n > uint64(len(b)-at-4-ed25519.SignatureSize) {
		return parsed{}, fmt.Errorf("%w: head of %d bytes in a %d-byte message", gossip.ErrMalformed, n, len(b))
	}
	p.end = at + 4 + int(n) + ed25519.SignatureSize
	p.rest = b[at:p.end]
	p.head, p.sig = b[at+4:at+4+int(n)], b[at+4+int(n):p.end]
	r := reader{b: p.head}
	p.source = gossip.PeerID(r.bytes())
	p.round = r.u64()
	tier := privacy.Tier(r.byte())
	p.scope = gossip.Membership{Tier: tier, Scope: string(r.bytes())}
	p.plen = int(r.u32())
	p.phash = r.take(sha256.Size)
	if r.err != nil || len(r.b) != 0 {
		return parsed{}, fmt.Errorf("%w: envelope head", gossip.ErrMalformed)
	}
	if tier < privacy.Private || tier > privacy.Public {
		return parsed{}, fmt.Errorf("%w: tier %d", gossip.ErrMalformed, tier)
	}
	if p.plen > MaxMessage-p.end {
		return parsed{}, fmt.Errorf("%w: payload of %d bytes announced, limit %d", gossip.ErrTooLarge, p.plen, MaxMessage)
	}
	return p, nil
}

// Split cuts a whole message into its offer and body without checking
// the signature: what a sender does, and all a forger needs.
func (c *Codec) Split(msg []byte) (offer, body []byte, err error) {
	p, err := parse(msg)
	if err != nil {
		return nil, nil, err
	}
	return msg[:p.end:p.end], msg[p.end:], nil
}

// Key implements gossip.KeyReader.
func (c *Codec) Key(offer []byte) (gossip.ReleaseKey, error) {
	p, err := parse(offer)
	if err != nil {
		return gossip.ReleaseKey{}, err
	}
	return gossip.ReleaseKey{Source: p.source, Round: p.round, Scope: p.scope, Signature: string(p.sig)}, nil
}

// verify checks the signature of a parsed offer. The digest is a hash of
// the signature: Ed25519 signatures are deterministic and, as Go verifies
// them, not malleable, so once verified the signature names the signed head.
func (c *Codec) verify(p parsed, offer []byte, size int) (gossip.Envelope, error) {
	pub, ok := c.Keys.get(p.source)
	if !ok || !ed25519.Verify(pub, p.head, p.sig) {
		return gossip.Envelope{}, fmt.Errorf("%w: claimed source %q", gossip.ErrSignature, p.source)
	}
	return gossip.Envelope{
		Source: p.source, Round: p.round, Scope: p.scope, HopsLeft: p.hops, Digest: sha256.Sum256(p.sig),
		Offer: offer, BodySize: p.plen, Size: size,
	}, nil
}

// Unpack implements gossip.Codec.
func (c *Codec) Unpack(msg []byte) (gossip.Envelope, error) {
	p, err := parse(msg)
	if err != nil {
		return gossip.Envelope{}, err
	}
	env, err := c.verify(p, msg[:p.end:p.end], len(msg))
	if err != nil {
		return gossip.Envelope{}, err
	}
	return c.WithBody(env, msg[p.end:])
}

// UnpackOffer implements gossip.Codec.
func (c *Codec) UnpackOffer(offer []byte) (gossip.Envelope, error) {
	p, err := parse(offer)
	if err != nil {
		return gossip.Envelope{}, err
	}
	if p.end != len(offer) {
		return gossip.Envelope{}, fmt.Errorf("%w: %d bytes after the offer", gossip.ErrMalformed, len(offer)-p.end)
	}
	return c.verify(p, offer, len(offer)+p.plen)
}

// WithBody implements gossip.Codec.
func (c *Codec) WithBody(env gossip.Envelope, body []byte) (gossip.Envelope, error) {
	p, err := parse(env.Offer)
	if err != nil {
		return gossip.Envelope{}, err
	}
	if h := sha256.Sum256(body); len(body) != p.plen || string(h[:]) != string(p.phash) {
		return gossip.Envelope{}, fmt.Errorf("%w: body of %d bytes is not the %d announced", gossip.ErrMalformed, len(body), p.plen)
	}
	env.Body = body
	return env, nil
}

// Open implements gossip.Codec.
func (c *Codec) Open(env gossip.Envelope) (*adapter.Update, error) {
	payload := env.Body
	if sealed(env.Scope.Tier) {
		key, ok := c.ScopeKeys[env.Scope]
		if !ok {
			return nil, fmt.Errorf("%w: node %s holds no key for %s", gossip.ErrSeal, c.Self, env.Scope)
		}
		aead, err := chacha20poly1305.NewX(key)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", gossip.ErrSeal, err)
		}
		if len(payload) < aead.NonceSize() {
			return nil, fmt.Errorf("%w: payload shorter than a nonce", gossip.ErrSeal)
		}
		payload, err = aead.Open(nil, payload[:aead.NonceSize()], payload[aead.NonceSize():], []byte(env.Scope.String()))
		if err != nil {
			return nil, fmt.Errorf("%w: %s payload from %s: %w", gossip.ErrSeal, env.Scope, env.Source, err)
		}
	}
	u, err := decodeUpdate(payload)
	if err != nil {
		return nil, err
	}
	u.Meta.Node = string(env.Source)
	u.Meta.Round = env.Round
	u.Meta.Tier = env.Scope.Tier.String()
	u.Meta.Scope = env.Scope.Scope
	return u, nil
}

// OfferWithHops implements gossip.Codec.
func (c *Codec) OfferWithHops(offer []byte, hops int) ([]byte, error) {
	if len(offer) <= len(codecMagic) || hops < 0 || hops > 255 {
		return nil, fmt.Errorf("%w: cannot set %d hops", gossip.ErrMalformed, hops)
	}
	out := slices.Clone(offer)
	out[len(codecMagic)] = byte(hops)
	return out, nil
}

// Hints implements gossip.HolderHints.
func (c *Codec) Hints(offer []byte) ([]gossip.PeerID, error) {
	p, err := parse(offer)
	if err != nil || len(p.hints) == 0 {
		return nil, err
	}
	n := int(p.hints[0])
	b := p.hints[1:]
	out := make([]gossip.PeerID, 0, min(n, gossip.MaxHints))
	for range n {
		if len(b) < 1 || len(b) < 1+int(b[0]) {
			return nil, fmt.Errorf("%w: hint list", gossip.ErrMalformed)
		}
		out = append(out, gossip.PeerID(b[1:1+int(b[0])]))
		b = b[1+int(b[0]):]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the hint list", gossip.ErrMalformed, len(b))
	}
	return out, nil
}

// WithHints implements gossip.HolderHints. It rewrites the offer that
// opens b and keeps whatever follows it (a whole message's payload).
func (c *Codec) WithHints(b []byte, holders []gossip.PeerID) ([]byte, error) {
	p, err := parse(b)
	if err != nil {
		return nil, err
	}
	if len(holders) > 255 {
		holders = holders[:255]
	}
	hints := []byte{byte(len(holders))}
	for _, h := range holders {
		if len(h) > 255 {
			return nil, fmt.Errorf("%w: peer ID of %d bytes in a hint", gossip.ErrMalformed, len(h))
		}
		hints = append(hints, byte(len(h)))
		hints = append(hints, h...)
	}
	out := make([]byte, 0, len(codecMagic)+5+len(hints)+len(b)-len(codecMagic)-5-len(p.hints))
	out = append(out, b[:len(codecMagic)+1]...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(hints)))
	out = append(out, hints...)
	out = append(out, p.rest...)
	return append(out, b[p.end:]...), nil
}

func appendBytes(b, v []byte) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) fail() { r.err = gossip.ErrMalformed; r.b = nil }

func (r *reader) byte() byte {
	if r.err != nil || len(r.b) < 1 {
		r.fail()
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) u32() uint32 {
	if r.err != nil || len(r.b) < 4 {
		r.fail()
		return 0
	}
	v := binary.LittleEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *reader) u64() uint64 {
	if r.err != nil || len(r.b) < 8 {
		r.fail()
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *reader) take(n int) []byte {
	if r.err != nil || n > len(r.b) {
		r.fail()
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.u32()
	if r.err != nil || uint64(n) > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func encodeUpdate(u *adapter.Update) []byte {
	var b []byte
	var count uint32
	for _, g := range u.GroupNames() {
		count += uint32(len(u.Groups[g]))
	}
	b = binary.LittleEndian.AppendUint32(b, count)
	for _, g := range u.GroupNames() {
		for _, k := range u.Keys(g) {
			t := u.Groups[g][k]
			b = appendBytes(b, []byte(g))
			b = appendBytes(b, []byte(k))
			b = append(b, byte(len(t.Shape)))
			for _, d := range t.Shape {
				b = binary.LittleEndian.AppendUint32(b, uint32(d))
			}
			for _, v := range t.Data {
				b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
			}
		}
	}
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(u.Meta.Samples))
	return appendBytes(b, []byte(u.Meta.Kind))
}

func decodeUpdate(p []byte) (*adapter.Update, error) {
	r := reader{b: p}
	n := r.u32()
	u := adapter.New()
	for i := uint32(0); i < n && r.err == nil; i++ {
		g := string(r.bytes())
		k := string(r.bytes())
		rank := int(r.byte())
		elems := 1
		shape := make([]int, rank)
		for j := range shape {
			shape[j] = int(r.u32())
			if shape[j] < 0 || (shape[j] > 0 && elems > len(p)/shape[j]) {
				r.fail()
				break
			}
			elems *= shape[j]
		}
		if r.err != nil || elems*4 > len(r.b) {
			r.fail()
			break
		}
		t := &adapter.Tensor{Shape: shape, Data: make([]float32, elems)}
		for j := range t.Data {
			t.Data[j] = math.Float32frombits(r.u32())
		}
		u.Set(g, k, t)
	}
	u.Meta.Samples = math.Float64frombits(r.u64())
	u.Meta.Kind = adapter.Kind(r.bytes())
	if u.Meta.Kind != adapter.KindDelta && u.Meta.Kind != adapter.KindAdapter {
		r.fail()
	}
	if r.err != nil || len(r.b) != 0 {
		return nil, fmt.Errorf("%w: update payload", gossip.ErrMalformed)
	}
	if err := u.CheckFinite(); err != nil {
		return nil, fmt.Errorf("%w: %w", gossip.ErrMalformed, err)
	}
	if math.IsNaN(u.Meta.Samples) || math.IsInf(u.Meta.Samples, 0) || u.Meta.Samples <= 0 {
		return nil, fmt.Errorf("%w: sample count %v", gossip.ErrMalformed, u.Meta.Samples)
	}
	return u, nil
}
