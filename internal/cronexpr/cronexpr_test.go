package cronexpr_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/modrun/modrun/internal/cronexpr"
)

// TestTimeZoneAlone: robfig/cron panicked on a time zone with no schedule
// after it; such an expression is an error that says what is missing.
func TestTimeZoneAlone(t *testing.T) {
	for _, expr := range []string{"TZ=", "TZ=UTC", "CRON_TZ=Europe/Paris", "CRON_TZ="} {
		if _, err := cronexpr.Parse(expr); err == nil || !strings.Contains(err.Error(), "a time zone needs the schedule after it") {
			t.Errorf("%q: err = %v", expr, err)
		}
	}
	s, err := cronexpr.Parse("TZ=UTC 30 9 * * *")
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 12, 8, 3, 0, 0, 0, time.UTC)
	if got, want := s.Next(from), time.Date(2026, 12, 8, 9, 30, 0, 0, time.UTC); !got.Equal(want) {
		t.Fatalf("next run %v, want %v", got, want)
	}
}

// FuzzParse: any expression gives a schedule or an error, never a panic,
// and a schedule's next run is after the time it is asked from.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"*/5 * * * *", "0 9 * * MON-FRI", "@every 30s", "@hourly", "@every -1s",
		"0 0 31 2 *", "TZ=Europe/Paris 0 9 * * *", "CRON_TZ=x * * * * *", "60 * * * *", "*/0 * * * *", "1-0 * * * *", "", "TZ="} {
		f.Add(s)
	}
	from := time.Date(2026, 12, 8, 3, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, expr string) {
		s, err := cronexpr.Parse(expr)
		if err != nil {
			return
		}
		if next := s.Next(from); !next.IsZero() && !next.After(from) {
			t.Fatalf("%q: next run %v is not after %v", expr, next, from)
		}
	})
}

func ExampleParse() {
	s, _ := cronexpr.Parse("TZ=UTC 0 9 * * MON-FRI")
	fmt.Println(s.Next(time.Date(2026, 12, 12, 0, 0, 0, 0, time.UTC))) // a Saturday
	_, err := cronexpr.Parse("TZ=UTC")
	fmt.Println(err)
	// Output:
	// 2026-12-14 09:00:00 +0000 UTC
	// a time zone needs the schedule after it, as in "TZ=Europe/Paris 0 9 * * *"
}
