package wire

import (
	"testing"

	"github.com/dafnet/daf/privacy"
)

// BenchmarkVerify16MiB: signature check of an envelope carrying a 16 MiB
// payload (dominated by SHA-256 of the payload).
func BenchmarkVerify16MiB(b *testing.B) {
	e := signedEnvelope(b, identity(b, 80), 1, privacy.Public, "", make([]byte, 16<<20))
	raw, _ := e.Marshal()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		got, err := Unmarshal(raw, DefaultLimits())
		if err != nil {
			b.Fatal(err)
		}
		if err := Verify(got); err != nil {
			b.Fatal(err)
		}
	}
}
