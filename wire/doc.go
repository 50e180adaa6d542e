// Package wire owns the byte layout of the contact protocol (docs/protocol.md,
// ../shared/PROTOCOL.md): the connection hello, client frames, server frames and
// the ListAll reply, their encoders and their decoders.
//
// It must not do I/O beyond the reader and writer it is handed, and it knows
// nothing of stores, peers or connections. Every byte it decodes is untrusted:
// a frame that breaks the protocol yields a *ViolationError, never a panic,
// and nothing is allocated from a size read off the wire.
//
// Decoded byte slices alias the Decoder's internal buffer and are valid only
// until the next call on that Decoder; callers copy what they keep.
package wire
