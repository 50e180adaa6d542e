package security

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPosture(t *testing.T) {
	for _, tc := range []struct {
		name    string
		p       Posture
		missing []string
		says    []string // in the warning
	}{
		{"default cluster", Posture{Clustered: true}, []string{"gossip_key", "tls", "client_auth"},
			[]string{"read and change every contact book", "join the gossip", "take over a member's name", "full-state transfers"}},
		{"default alone", Posture{}, []string{"tls", "client_auth"}, []string{"read and change every contact book"}},
		{"keyed, no TLS", Posture{Clustered: true, GossipKey: true}, []string{"tls", "client_auth"},
			[]string{"read and change every contact book"}},
		{"TLS, no key", Posture{Clustered: true, TLS: true, ClientAuth: true}, []string{"gossip_key"},
			[]string{"join the gossip", "take over a member's name"}},
		{"TLS without client auth", Posture{Clustered: true, GossipKey: true, TLS: true}, []string{"client_auth"},
			[]string{"no client proves its user"}},
		{"secure", Posture{Clustered: true, GossipKey: true, TLS: true, ClientAuth: true}, []string{}, nil},
		{"secure alone", Posture{TLS: true, ClientAuth: true}, []string{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.missing, tc.p.Missing())
			require.Equal(t, len(tc.missing) == 0, tc.p.Secure())
			w := tc.p.Warning()
			if tc.p.Secure() {
				require.Empty(t, w)
				return
			}
			require.Contains(t, w, "INSECURE")
			require.NotContains(t, w, "\n", "one line")
			for _, s := range tc.says {
				require.Contains(t, w, s)
			}
			if tc.p.TLS {
				require.NotContains(t, w, "full-state transfers", "with TLS a forged member gets no transfer")
			}
		})
	}
}
