package seal

import "testing"

// BenchmarkSealOpen16MiB: seal then open one 16 MiB payload.
func BenchmarkSealOpen16MiB(b *testing.B) {
	rng := seededReader(90)
	k, _ := NewScopeKey(rng, "tenant", "acme", 1)
	plain := make([]byte, 16<<20)
	ad := []byte("header")
	b.SetBytes(int64(len(plain)))
	for b.Loop() {
		s, err := SealPayload(k, plain, ad, rng)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := OpenPayload(k, s, ad); err != nil {
			b.Fatal(err)
		}
	}
}
