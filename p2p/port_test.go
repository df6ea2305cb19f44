package p2p

import (
	"strings"
	"testing"
)

// A second node told to listen on a TCP port another node already holds
// must fail to start. With SO_REUSEPORT both would listen and the kernel
// would hand each inbound connection to either of them at random.
func TestListenOnTakenTCPPortFails(t *testing.T) {
	first, err := New(Config{Identity: newKey(t), Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	var taken string
	for _, a := range first.Addrs() {
		if strings.Contains(a, "/tcp/") {
			taken = a[:strings.Index(a, "/p2p/")]
		}
	}
	if taken == "" {
		t.Fatalf("no TCP address in %v", first.Addrs())
	}
	second, err := New(Config{Identity: newKey(t), Listen: []string{taken}})
	if err == nil {
		second.Close()
		t.Fatalf("a second host started on %s, which the first one holds", taken)
	}
	if !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("err = %v, want it to say the address is in use", err)
	}
}
