package membership

import (
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMetaRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		meta Meta
	}{
		{"gossip address", Meta{ContactPort: 9000, BootID: 1<<63 + 5, StoreID: 9, Published: Published{Digest: 0xdeadbeef, Health: 2}}},
		{"explicit host", Meta{ContactHost: "contact-server-1", ContactPort: 9001, BootID: 7, Published: Published{Health: 1}}},
		{"everything", Meta{ContactHost: "h", ContactPort: 1, BootID: 2, StoreID: 3,
			Published: Published{Digest: 4, Cutoff: 5, Mark: 6, Health: 3}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.meta.encode()
			require.LessOrEqual(t, len(b), MetaMaxSize)
			got, err := decodeMeta(b)
			require.NoError(t, err)
			require.Equal(t, tc.meta, got)
		})
	}
}

// A member of the previous release publishes version-1 meta: it is read,
// with no store id, cutoff or mark (unknown).
func TestMetaVersion1IsRead(t *testing.T) {
	v1 := []byte{1}
	v1 = append(v1, 0, 0, 0, 0, 0, 0, 0, 7) // boot id
	v1 = append(v1, 0, 0, 0, 0, 0, 0, 0, 8) // digest
	v1 = append(v1, 1)                      // health
	v1 = append(v1, 0x23, 0x28)             // port 9000
	v1 = append(v1, 1, 'h')                 // host
	got, err := decodeMeta(v1)
	require.NoError(t, err)
	require.Equal(t, Meta{ContactHost: "h", ContactPort: 9000, BootID: 7, Published: Published{Digest: 8, Health: 1}}, got)
}

func TestMetaRejectsMalformed(t *testing.T) {
	good := Meta{ContactHost: "h", ContactPort: 1}.encode()
	for _, b := range [][]byte{nil, good[:10], append([]byte{9}, good[1:]...), append(good, 'x')} {
		_, err := decodeMeta(b)
		require.Error(t, err)
	}
}

func TestContactAddr(t *testing.T) {
	m := Member{IP: net.ParseIP("10.1.2.3"), Meta: Meta{ContactPort: 9000}}
	require.Equal(t, "10.1.2.3:9000", m.ContactAddr())
	m.Meta.ContactHost = "contact-server-2"
	require.Equal(t, "contact-server-2:9000", m.ContactAddr())
}

func TestConfigValidate(t *testing.T) {
	require.NoError(t, DefaultConfig("a").Validate())
	bad := []func(*Config){
		func(c *Config) { c.Name = "" },
		func(c *Config) { c.BindAddr = "nope" },
		func(c *Config) { c.Profile = "moon" },
		func(c *Config) { c.RejoinInterval = 0 },
	}
	for i, mod := range bad {
		c := DefaultConfig("a")
		mod(&c)
		require.Error(t, c.Validate(), "case %d", i)
	}
	require.True(t, strings.Contains(DefaultConfig("a").BindAddr, "7946"))
}
