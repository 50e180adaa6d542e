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
		{"gossip address", Meta{ContactPort: 9000, BootID: 1<<63 + 5, Digest: 0xdeadbeef, Health: 2}},
		{"explicit host", Meta{ContactHost: "contact-server-1", ContactPort: 9001, BootID: 7, Health: 1}},
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
