package ctlcli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress draws a one-line bar on a terminal; elsewhere (pipes, CI) it
// stays silent so scripts get clean output.
type progress struct {
	w     io.Writer
	total int
	on    bool
	start time.Time
	last  time.Time
}

func newProgress(w io.Writer, total int, want bool) *progress {
	on := false
	if f, ok := w.(*os.File); ok && want {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			on = true
		}
	}
	return &progress{w: w, total: total, on: on, start: time.Now()}
}

func (p *progress) set(done int) {
	if !p.on || p.total == 0 || (time.Since(p.last) < 100*time.Millisecond && done < p.total) {
		return
	}
	p.last = time.Now()
	const width = 30
	filled := width * done / p.total
	rate := float64(done) / max(time.Since(p.start).Seconds(), 1e-3)
	fmt.Fprintf(p.w, "\r[%s%s] %d/%d %.0f/s", strings.Repeat("#", filled), strings.Repeat(".", width-filled), done, p.total, rate)
}

func (p *progress) finish() {
	if p.on {
		fmt.Fprintln(p.w)
	}
}
