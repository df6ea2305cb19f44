// Package p2p is the libp2p implementation of gossip.Transport: the only
// place where DAF touches real sockets.
//
// A Host listens on TCP (Noise/TLS, yamux) and QUIC (TLS 1.3) with the node's
// Ed25519 identity as its peer ID and the libp2p resource manager on. Every
// DAF stream protocol is one request per stream. On /daf/keys/1 and
// /daf/peers/1 (Send, Handle) the sender writes one length-prefixed frame
// and waits for a one-frame verdict (accept, or refuse with a reason), so a
// refusal reaches the sender as an error wrapping gossip.ErrRefused.
// /daf/delta/2 (SendOffered, HandleOffered) takes two steps: the sender
// writes a small offer, the receiver answers "want" or refuses (it already
// holds the release, say), and only after "want" is the body sent and
// judged. Every length is checked against its limit (MaxOfferBytes,
// MaxMessageBytes) before any buffer is allocated, and all inbound bodies
// together draw from a bounded byte budget, reserved before "want", so a
// peer cannot make the node allocate more than that however many streams
// it opens.
//
// Around the transport the Host keeps the network together: it dials the
// bootstrap peers and redials them (and every peer handed to AddAddrs, which
// is how the node's peer exchange feeds it) when a connection drops, tells
// OnPeer when a peer comes and goes, and pings connected peers periodically;
// the round trip times feed Latency, which the adaptive peer selector reads.
//
// Drive it with New (which starts the background loops), register handlers
// with Handle before traffic arrives, and Close at the end.
package p2p
