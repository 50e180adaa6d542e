package wire

import (
	"bytes"
	"encoding/binary"
	"strings"
)

var zeros [NameWidth]byte

// CheckName reports whether v fits a name256 field: at most MaxNameLen bytes
// and no NUL. An empty name fits: only a server's name must be non-empty,
// which AppendHello and AppendHelloReply check.
func CheckName(v []byte) error { return checkField(v, MaxNameLen) }

// CheckPhone reports whether v fits a phone20 field.
func CheckPhone(v []byte) error { return checkField(v, MaxPhoneLen) }

func checkField(v []byte, max int) error {
	if len(v) > max {
		return ErrValueTooLong
	}
	if bytes.IndexByte(v, 0) >= 0 {
		return ErrValueHasNUL
	}
	return nil
}

// appendField writes v NUL-padded to width. v must already be checked.
func appendField(dst, v []byte, width int) []byte {
	dst = append(dst, v...)
	return append(dst, zeros[:width-len(v)]...)
}

func appendName(dst, v []byte) ([]byte, error) {
	if err := CheckName(v); err != nil {
		return dst, err
	}
	return appendField(dst, v, NameWidth), nil
}

func appendPhone(dst, v []byte) ([]byte, error) {
	if err := CheckPhone(v); err != nil {
		return dst, err
	}
	return appendField(dst, v, PhoneWidth), nil
}

// AppendHello appends the connection hello. A client's name (its user) may
// be empty; a server's may not (ErrEmptyServerName).
//
//	+--------+-----------------+
//	| role u8| name name256    |   257 bytes
//	+--------+-----------------+
func AppendHello(dst []byte, role Role, name []byte) ([]byte, error) {
	if len(name) == 0 && role == RoleServer {
		return dst, ErrEmptyServerName
	}
	return appendName(append(dst, byte(role)), name)
}

// AppendHelloReply appends the listener's answer to a role-Server hello.
//
//	+-----------------+
//	| name name256    |   256 bytes
//	+-----------------+
func AppendHelloReply(dst []byte, name []byte) ([]byte, error) {
	if len(name) == 0 {
		return dst, ErrEmptyServerName
	}
	return appendName(dst, name)
}

// AppendClientUpdate appends a client Update.
//
//	+------+---------------------+-------------------+
//	| 0x01 | ContactName name256 | PhoneNumber phone20 |   277 bytes
//	+------+---------------------+-------------------+
func AppendClientUpdate(dst, contact, phone []byte) ([]byte, error) {
	if err := CheckPhone(phone); err != nil {
		return dst, err
	}
	dst, err := appendName(append(dst, byte(ClientUpdate)), contact)
	if err != nil {
		return dst[:len(dst)-1], err
	}
	return appendField(dst, phone, PhoneWidth), nil
}

// AppendClientDelete appends a client Delete.
//
//	+------+---------------------+
//	| 0x02 | ContactName name256 |   257 bytes
//	+------+---------------------+
func AppendClientDelete(dst, contact []byte) ([]byte, error) {
	if err := CheckName(contact); err != nil {
		return dst, err
	}
	return appendField(append(dst, byte(ClientDelete)), contact, NameWidth), nil
}

// AppendClientListAll appends a ListAll request.
//
//	+------+
//	| 0x03 |   1 byte
//	+------+
func AppendClientListAll(dst []byte) []byte { return append(dst, byte(ClientListAll)) }

// AppendListAllCount appends the head of a ListAll reply; Count entries
// written with AppendListAllEntry must follow.
//
//	+-----------+------------------------------------------------+
//	| Count u32 | Count x (ContactName name256, PhoneNumber phone20) |
//	+-----------+------------------------------------------------+
func AppendListAllCount(dst []byte, count uint32) []byte {
	return binary.BigEndian.AppendUint32(dst, count)
}

// AppendListAllEntry appends one contact of a ListAll reply (276 bytes).
func AppendListAllEntry(dst, contact, phone []byte) ([]byte, error) {
	if err := CheckPhone(phone); err != nil {
		return dst, err
	}
	if err := CheckName(contact); err != nil {
		return dst, err
	}
	dst = appendField(dst, contact, NameWidth)
	return appendField(dst, phone, PhoneWidth), nil
}

// AppendListAllEntryString is AppendListAllEntry for values held as
// strings (as the store keeps them), without converting them.
func AppendListAllEntryString(dst []byte, contact, phone string) ([]byte, error) {
	if len(contact) > MaxNameLen || len(phone) > MaxPhoneLen {
		return dst, ErrValueTooLong
	}
	if strings.IndexByte(contact, 0) >= 0 || strings.IndexByte(phone, 0) >= 0 {
		return dst, ErrValueHasNUL
	}
	dst = append(append(dst, contact...), zeros[:NameWidth-len(contact)]...)
	return append(append(dst, phone...), zeros[:PhoneWidth-len(phone)]...), nil
}

// AppendServerUpdate appends a stamped Update between servers.
//
//	+------+-----------+------------------+---------------------+---------------------+
//	| 0x01 | Clock u32 | UserName name256 | ContactName name256 | PhoneNumber phone20 |   537 bytes
//	+------+-----------+------------------+---------------------+---------------------+
func AppendServerUpdate(dst []byte, clock uint32, user, contact, phone []byte) ([]byte, error) {
	if err := firstErr(CheckName(user), CheckName(contact), CheckPhone(phone)); err != nil {
		return dst, err
	}
	dst = binary.BigEndian.AppendUint32(append(dst, byte(ServerUpdate)), clock)
	dst = appendField(dst, user, NameWidth)
	dst = appendField(dst, contact, NameWidth)
	return appendField(dst, phone, PhoneWidth), nil
}

// AppendServerDelete appends a stamped Delete between servers.
//
//	+------+-----------+------------------+---------------------+
//	| 0x02 | Clock u32 | UserName name256 | ContactName name256 |   517 bytes
//	+------+-----------+------------------+---------------------+
func AppendServerDelete(dst []byte, clock uint32, user, contact []byte) ([]byte, error) {
	if err := firstErr(CheckName(user), CheckName(contact)); err != nil {
		return dst, err
	}
	dst = binary.BigEndian.AppendUint32(append(dst, byte(ServerDelete)), clock)
	dst = appendField(dst, user, NameWidth)
	return appendField(dst, contact, NameWidth), nil
}

// AppendHeartBeat appends a HeartBeat.
//
//	+------+-----------------+-----------+
//	| 0x03 | HealthStatus u8 | Clock u32 |   6 bytes
//	+------+-----------------+-----------+
func AppendHeartBeat(dst []byte, health Health, clock uint32) []byte {
	return binary.BigEndian.AppendUint32(append(dst, byte(ServerHeartBeat), byte(health)), clock)
}

// AppendUpdateClock appends an UpdateClock.
//
//	+------+-----------+
//	| 0x04 | Clock u32 |   5 bytes
//	+------+-----------+
func AppendUpdateClock(dst []byte, clock uint32) []byte {
	return binary.BigEndian.AppendUint32(append(dst, byte(ServerUpdateClock)), clock)
}

// AppendAskForUpdate appends an AskForUpdate.
//
//	+------+
//	| 0x05 |   1 byte
//	+------+
func AppendAskForUpdate(dst []byte) []byte { return append(dst, byte(ServerAskForUpdate)) }

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
