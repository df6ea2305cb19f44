package wire

import (
	"encoding/binary"
)

const sealADDomain = "daf/payload-ad/v1\x00"

// SealAD is the associated data a sender passes to seal.SealPayload and a
// receiver to seal.OpenPayload for the envelope's payload. It binds the
// ciphertext to the source and round: a scope member who copies another
// member's sealed payload into an envelope signed by itself (to pass it off
// as its own update) produces a payload that no longer opens.
func SealAD(e *Envelope) []byte {
	b := make([]byte, 0, len(sealADDomain)+1+len(e.FederationID)+len(e.Source)+8+2+len(e.Scope)+4)
	b = append(b, sealADDomain...)
	b = append(b, byte(len(e.FederationID)))
	b = append(b, e.FederationID...)
	b = append(b, e.Source...)
	b = binary.BigEndian.AppendUint64(b, e.Round)
	b = append(b, e.Tier, byte(len(e.Scope)))
	b = append(b, e.Scope...)
	return binary.BigEndian.AppendUint32(b, e.KeyEpoch)
}
