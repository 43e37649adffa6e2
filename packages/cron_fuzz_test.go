package packages_test

import (
	"testing"
	"time"

	"github.com/modrun/modrun/packages"
)

// FuzzParseCron holds the schedule parser (robfig/cron's, with our
// fields) to what validate and load need: any expression in package.yaml
// gives a schedule or an error, never a panic, and a schedule's next run
// is after the time it is asked from.
func FuzzParseCron(f *testing.F) {
	for _, s := range []string{"*/5 * * * *", "0 9 * * MON-FRI", "@every 30s", "@hourly", "@every -1s",
		"0 0 31 2 *", "TZ=Europe/Paris 0 9 * * *", "CRON_TZ=x * * * * *", "60 * * * *", "*/0 * * * *", "1-0 * * * *", ""} {
		f.Add(s)
	}
	from := time.Date(2026, 12, 8, 3, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, expr string) {
		s, err := packages.ParseCron(expr)
		if err != nil {
			return
		}
		if next := s.Next(from); !next.IsZero() && !next.After(from) {
			t.Fatalf("%q: next run %v is not after %v", expr, next, from)
		}
	})
}
