package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
)

// Decoder reads frames from a buffered reader. It is not safe for concurrent
// use; a connection has exactly one. Byte slices it returns alias its buffer
// and are valid until the next call.
//
// Errors: io.EOF when the stream ends cleanly before a frame starts,
// io.ErrUnexpectedEOF when it ends inside a frame, a *ViolationError when
// the bytes break the protocol, or the reader's own error.
type Decoder struct {
	r   *bufio.Reader
	buf [MaxFrameSize]byte
}

// NewDecoder returns a Decoder reading from r.
func NewDecoder(r *bufio.Reader) *Decoder { return &Decoder{r: r} }

// Buffered reports how many bytes can be read without blocking; a caller
// uses it to batch work until the input runs dry.
func (d *Decoder) Buffered() int { return d.r.Buffered() }

// Hello is a decoded connection hello.
type Hello struct {
	Role Role
	Name []byte
}

// ClientFrame is a decoded client frame.
type ClientFrame struct {
	Op      ClientOp
	Contact []byte // Update, Delete
	Phone   []byte // Update
}

// ServerFrame is a decoded server frame.
type ServerFrame struct {
	Op      ServerOp
	Clock   uint32 // Update, Delete, HeartBeat, UpdateClock
	Health  Health // HeartBeat
	User    []byte // Update, Delete
	Contact []byte // Update, Delete
	Phone   []byte // Update
}

// readFull reads exactly n bytes into the buffer. A stream that ends before
// the first byte is io.EOF only when atStart; inside a frame it is always
// io.ErrUnexpectedEOF.
func (d *Decoder) readFull(n int, atStart bool) ([]byte, error) {
	b := d.buf[:n]
	got, err := io.ReadFull(d.r, b)
	if err == io.EOF && !atStart {
		err = io.ErrUnexpectedEOF
	}
	if err == io.ErrUnexpectedEOF && atStart && got == 0 {
		err = io.EOF
	}
	return b, err
}

// field returns the value of a fixed-width string field: the bytes before
// the first NUL. A field with no NUL is a violation. An empty value is an
// ordinary value (PROTOCOL.md "Errors"), except where serverName says the
// field is a server's name, which must not be empty.
func field(b []byte, frame, name string, serverName bool) ([]byte, error) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return nil, &ViolationError{Kind: ErrNoNUL, Frame: frame, Field: name}
	}
	if i == 0 && serverName {
		return nil, &ViolationError{Kind: ErrEmptyServerName, Frame: frame, Field: name}
	}
	return b[:i:i], nil
}

// Hello reads the hello a connecting side sends (role u8, name256). A
// client's name (its user) may be empty; a server's may not.
func (d *Decoder) Hello() (Hello, error) {
	b, err := d.readFull(HelloSize, true)
	if err != nil {
		return Hello{}, err
	}
	role := Role(b[0])
	if !role.Valid() {
		return Hello{}, &ViolationError{Kind: ErrBadRole, Frame: "hello", Value: uint64(b[0])}
	}
	name, err := field(b[1:], "hello", "Name", role == RoleServer)
	if err != nil {
		return Hello{}, err
	}
	return Hello{Role: role, Name: name}, nil
}

// HelloReply reads the name a listener sends back to a role-Server hello:
// a server's name, so it must not be empty.
func (d *Decoder) HelloReply() ([]byte, error) {
	b, err := d.readFull(HelloReplySize, true)
	if err != nil {
		return nil, err
	}
	return field(b, "hello reply", "Name", true)
}

// ClientFrame reads one client frame into f.
func (d *Decoder) ClientFrame(f *ClientFrame) error {
	b, err := d.readFull(1, true)
	if err != nil {
		return err
	}
	op := ClientOp(b[0])
	*f = ClientFrame{Op: op}
	switch op {
	case ClientListAll:
		return nil
	case ClientUpdate:
		if b, err = d.readFull(ClientUpdateSize-1, false); err != nil {
			return err
		}
		if f.Contact, err = field(b[:NameWidth], "client Update", "ContactName", false); err != nil {
			return err
		}
		f.Phone, err = field(b[NameWidth:], "client Update", "PhoneNumber", false)
		return err
	case ClientDelete:
		if b, err = d.readFull(ClientDeleteSize-1, false); err != nil {
			return err
		}
		f.Contact, err = field(b, "client Delete", "ContactName", false)
		return err
	}
	return &ViolationError{Kind: ErrUnknownOpcode, Frame: "client frame", Value: uint64(op)}
}

// ServerFrame reads one server frame into f.
func (d *Decoder) ServerFrame(f *ServerFrame) error {
	b, err := d.readFull(1, true)
	if err != nil {
		return err
	}
	op := ServerOp(b[0])
	*f = ServerFrame{Op: op}
	switch op {
	case ServerAskForUpdate:
		return nil
	case ServerUpdateClock:
		if b, err = d.readFull(4, false); err != nil {
			return err
		}
		f.Clock = binary.BigEndian.Uint32(b)
		return nil
	case ServerHeartBeat:
		if b, err = d.readFull(5, false); err != nil {
			return err
		}
		f.Health = Health(b[0])
		f.Clock = binary.BigEndian.Uint32(b[1:])
		return nil
	case ServerUpdate:
		if b, err = d.readFull(ServerUpdateSize-1, false); err != nil {
			return err
		}
		f.Clock = binary.BigEndian.Uint32(b)
		b = b[4:]
		if f.User, err = field(b[:NameWidth], "server Update", "UserName", false); err != nil {
			return err
		}
		if f.Contact, err = field(b[NameWidth:2*NameWidth], "server Update", "ContactName", false); err != nil {
			return err
		}
		f.Phone, err = field(b[2*NameWidth:], "server Update", "PhoneNumber", false)
		return err
	case ServerDelete:
		if b, err = d.readFull(ServerDeleteSize-1, false); err != nil {
			return err
		}
		f.Clock = binary.BigEndian.Uint32(b)
		b = b[4:]
		if f.User, err = field(b[:NameWidth], "server Delete", "UserName", false); err != nil {
			return err
		}
		f.Contact, err = field(b[NameWidth:], "server Delete", "ContactName", false)
		return err
	}
	return &ViolationError{Kind: ErrUnknownOpcode, Frame: "server frame", Value: uint64(op)}
}

// ListAllCount reads the Count that starts a ListAll reply. A count above
// max (0 means MaxListAllCount) is a violation.
func (d *Decoder) ListAllCount(max uint32) (uint32, error) {
	if max == 0 {
		max = MaxListAllCount
	}
	b, err := d.readFull(ListAllCountSize, true)
	if err != nil {
		return 0, err
	}
	n := binary.BigEndian.Uint32(b)
	if n > max {
		return 0, &ViolationError{Kind: ErrListAllTooLong, Frame: "ListAll reply", Field: "Count", Value: uint64(n)}
	}
	return n, nil
}

// ListAllEntry reads one contact of a ListAll reply.
func (d *Decoder) ListAllEntry() (contact, phone []byte, err error) {
	b, err := d.readFull(ListAllEntrySize, false)
	if err != nil {
		return nil, nil, err
	}
	if contact, err = field(b[:NameWidth], "ListAll reply", "ContactName", false); err != nil {
		return nil, nil, err
	}
	phone, err = field(b[NameWidth:], "ListAll reply", "PhoneNumber", false)
	return contact, phone, err
}
