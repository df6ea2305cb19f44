package compress

// Limits bound what DecodeUpdate accepts; every count is checked against
// them before anything of that size is allocated.
type Limits struct {
	MaxBytes          int // whole encoded update
	MaxElemsPerTensor int
	MaxTotalElems     int // over all tensors: bounds decoded memory (4 bytes each)
	MaxTensors        int // over all groups
	MaxGroups         int
	MaxDims           int
	MaxNameLen        int // group, tensor, metadata and task names
	MaxMetaEntries    int // group ranges, quality entries, task accuracies, extra keys (each list)
}

// DefaultLimits fit the 64 MiB envelope: at most 16 M decoded values (64 MiB
// of float32), so a 1-bit payload cannot expand into gigabytes.
func DefaultLimits() Limits {
	return Limits{
		MaxBytes:          64 << 20,
		MaxElemsPerTensor: 16 << 20,
		MaxTotalElems:     16 << 20,
		MaxTensors:        4096,
		MaxGroups:         64,
		MaxDims:           8,
		MaxNameLen:        1024,
		MaxMetaEntries:    256,
	}
}
