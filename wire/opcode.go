package wire

import "strconv"

// Role is the first byte a connecting side sends.
//
// Append only: these values are on the wire. Never renumber or reuse one.
type Role uint8

const (
	// RoleServer is a peer contact server; the hello name is its server name.
	RoleServer Role = 1
	// RoleClient is a client; the hello name is the user whose book it uses.
	RoleClient Role = 2
)

func (r Role) String() string {
	switch r {
	case RoleServer:
		return "Server"
	case RoleClient:
		return "Client"
	}
	return "Role(" + strconv.Itoa(int(r)) + ")"
}

// Valid reports whether r is a role the protocol defines.
func (r Role) Valid() bool { return r == RoleServer || r == RoleClient }

// ClientOp is the opcode of a frame a client sends to a server.
//
// Append only: these values are on the wire. Never renumber or reuse one.
type ClientOp uint8

const (
	ClientUpdate  ClientOp = 1 // insert or replace a contact
	ClientDelete  ClientOp = 2 // delete a contact (absent is not an error)
	ClientListAll ClientOp = 3 // list the user's live contacts, sorted
)

func (o ClientOp) String() string {
	switch o {
	case ClientUpdate:
		return "Update"
	case ClientDelete:
		return "Delete"
	case ClientListAll:
		return "ListAll"
	}
	return "ClientOp(" + strconv.Itoa(int(o)) + ")"
}

// Valid reports whether o is a client opcode the protocol defines.
func (o ClientOp) Valid() bool { return o >= ClientUpdate && o <= ClientListAll }

// ServerOp is the opcode of a frame exchanged between two servers.
//
// Append only: these values are on the wire. Never renumber or reuse one.
type ServerOp uint8

const (
	ServerUpdate       ServerOp = 1 // one stamped contact change
	ServerDelete       ServerOp = 2 // one stamped delete
	ServerHeartBeat    ServerOp = 3 // health and clock, every interval
	ServerUpdateClock  ServerOp = 4 // raise the receiver's clock
	ServerAskForUpdate ServerOp = 5 // send me your whole state
)

func (o ServerOp) String() string {
	switch o {
	case ServerUpdate:
		return "Update"
	case ServerDelete:
		return "Delete"
	case ServerHeartBeat:
		return "HeartBeat"
	case ServerUpdateClock:
		return "UpdateClock"
	case ServerAskForUpdate:
		return "AskForUpdate"
	}
	return "ServerOp(" + strconv.Itoa(int(o)) + ")"
}

// Valid reports whether o is a server opcode the protocol defines.
func (o ServerOp) Valid() bool { return o >= ServerUpdate && o <= ServerAskForUpdate }

// Health is the HealthStatus byte of a HeartBeat.
//
// Append only: these values are on the wire. Never renumber or reuse one.
// Values outside the list are carried through unchanged (docs/protocol.md).
type Health uint8

const (
	HealthServing Health = 1 // serving clients, in sync
	HealthSyncing Health = 2 // joined, initial transfer not yet complete
	HealthLeaving Health = 3 // graceful shutdown under way
)

func (h Health) String() string {
	switch h {
	case HealthServing:
		return "serving"
	case HealthSyncing:
		return "syncing"
	case HealthLeaving:
		return "leaving"
	}
	return "health(" + strconv.Itoa(int(h)) + ")"
}
