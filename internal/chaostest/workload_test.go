package chaostest

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckClassifiesOutcomes(t *testing.T) {
	w := &Writer{User: "u", ops: []op{
		{contact: "kept", phone: "1", acked: true},
		{contact: "lost", phone: "2", acked: true},
		{contact: "back", phone: "3", acked: true},
		{contact: "back", acked: true},
		{contact: "late", phone: "4"}, // its ListAll never came back
		{contact: "late", acked: true},
		{contact: "gone", phone: "5", acked: true},
		{contact: "gone", acked: true},
		{contact: "unsure", phone: "6"}, // either way is right
	}}
	tests := []struct {
		name string
		book map[string]string
		want Verdict
	}{
		{"all as acknowledged", map[string]string{"kept": "1", "lost": "2"}, Verdict{}},
		{"unacknowledged create present", map[string]string{"kept": "1", "lost": "2", "unsure": "6"}, Verdict{}},
		{"acknowledged create missing", map[string]string{"kept": "1"}, Verdict{Lost: 1}},
		{"acknowledged create changed", map[string]string{"kept": "1", "lost": "9"}, Verdict{Lost: 1}},
		{"never written", map[string]string{"kept": "1", "lost": "2", "ghost": "0"}, Verdict{Lost: 1}},
		{"deleted acknowledged create back", map[string]string{"kept": "1", "lost": "2", "back": "3"}, Verdict{Resurrected: 1}},
		{"unacknowledged create outlived a delete", map[string]string{"kept": "1", "lost": "2", "late": "4"}, Verdict{LateCreates: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := w.Check(tc.book)
			require.Equal(t, tc.want.Lost, v.Lost, "lost")
			require.Equal(t, tc.want.Resurrected, v.Resurrected, "resurrected")
			require.Equal(t, tc.want.LateCreates, v.LateCreates, "late creates")
			require.Len(t, v.Errors, v.Lost+v.Resurrected)
			require.Len(t, v.Notes, v.LateCreates)
		})
	}
}
