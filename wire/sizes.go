package wire

// Field widths and frame sizes. Every size is fixed by the protocol, so a
// decoder never allocates from a length read off the wire.
const (
	NameWidth  = 256 // width of a name256 field (user, contact, server name)
	PhoneWidth = 20  // width of a phone20 field

	// MaxNameLen and MaxPhoneLen are the longest values that fit: a sender
	// always leaves at least one NUL in the field.
	MaxNameLen  = NameWidth - 1
	MaxPhoneLen = PhoneWidth - 1

	HelloSize      = 1 + NameWidth // role u8, name256
	HelloReplySize = NameWidth     // the listener's own name

	ClientUpdateSize  = 1 + NameWidth + PhoneWidth // 277
	ClientDeleteSize  = 1 + NameWidth              // 257
	ClientListAllSize = 1

	ListAllCountSize = 4                      // Count u32
	ListAllEntrySize = NameWidth + PhoneWidth // 276 per contact

	ServerUpdateSize       = 1 + 4 + NameWidth + NameWidth + PhoneWidth // 537
	ServerDeleteSize       = 1 + 4 + NameWidth + NameWidth              // 517
	ServerHeartBeatSize    = 1 + 1 + 4                                  // 6
	ServerUpdateClockSize  = 1 + 4                                      // 5
	ServerAskForUpdateSize = 1

	// MaxFrameSize is the largest fixed-size frame; the decoder buffer.
	MaxFrameSize = ServerUpdateSize

	// MaxListAllCount bounds the Count a client accepts in a ListAll reply
	// before reading entries. Entries are streamed, never preallocated, so
	// this only guards callers that size a slice from Count.
	MaxListAllCount = 1 << 24
)
