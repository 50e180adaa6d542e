// Package security holds what the binaries need to secure a cluster: gossip
// keys from flags and keyring files, TLS configurations for the contact
// port (server, peer dialer, client), the checks that tie a certificate to
// a server or a user name, and the generation of a test CA and
// certificates. It must not touch frames or stores.
package security

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// GossipKeys decodes --gossip-key (base64) and --gossip-keyring (a file
// holding a JSON array of base64 keys, the first one primary, as Consul and
// Serf write them). Every key must be 16, 24 or 32 bytes.
func GossipKeys(key, keyringFile string) ([][]byte, error) {
	var encoded []string
	if keyringFile != "" {
		b, err := os.ReadFile(keyringFile)
		if err != nil {
			return nil, fmt.Errorf("gossip keyring: %w", err)
		}
		if err := json.Unmarshal(b, &encoded); err != nil {
			return nil, fmt.Errorf("gossip keyring %s: not a JSON array of base64 keys: %v", keyringFile, err)
		}
		if len(encoded) == 0 {
			return nil, fmt.Errorf("gossip keyring %s holds no key", keyringFile)
		}
	}
	if key != "" {
		encoded = append([]string{key}, encoded...) // --gossip-key is primary
	}
	var keys [][]byte
	for i, e := range encoded {
		k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(e))
		if err != nil {
			return nil, fmt.Errorf("gossip key %d is not base64: %v", i+1, err)
		}
		if l := len(k); l != 16 && l != 24 && l != 32 {
			return nil, fmt.Errorf("gossip key %d is %d bytes; it must be 16, 24 or 32 (base64 of a random key)", i+1, l)
		}
		keys = append(keys, k)
	}
	return keys, nil
}
