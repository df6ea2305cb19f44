package adapter

import (
	"errors"
	"testing"
)

// FuzzUnmarshal feeds arbitrary bytes to the reader: it must never panic,
// must refuse with ErrCorrupt or ErrNonFinite, and whatever it accepts must
// survive Marshal and Unmarshal unchanged.
func FuzzUnmarshal(f *testing.F) {
	valid, err := Marshal(sampleUpdate())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(rawFile(`{"__metadata__":{"daf.format":"talora-update/1","daf.quality":"{\"fine\":{\"ppl_after\":3}}"},"coarse/h":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]},"domain/b":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]}}`, u16Bytes(0x3c00, 0x0001, 0x8000, 0x7bff, 0x3f80, 0x0001)))
	f.Add(rawFile(`{"__metadata__":{"format":"pt"},"m.lora_A.weight":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]},"m.lora_B.weight":{"dtype":"F32","shape":[2,1],"data_offsets":[8,16]}}`, f32Bytes(1, 2, 3, 4)))
	f.Add(rawFile(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}`, nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := Unmarshal(data, "fuzz.safetensors")
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNonFinite) {
				t.Fatalf("error wraps neither ErrCorrupt nor ErrNonFinite: %v", err)
			}
			return
		}
		out, err := Marshal(u)
		if err != nil {
			t.Fatalf("accepted update does not marshal: %v", err)
		}
		back, err := Unmarshal(out, "fuzz.safetensors")
		if err != nil {
			t.Fatalf("re-marshalled update does not read back: %v", err)
		}
		sameUpdate(t, back, u)
	})
}
