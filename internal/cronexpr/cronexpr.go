// Package cronexpr reads the cron expressions of package schedules, with
// robfig/cron's parser, for the load-time check (packages) and the
// scheduler (server) alike.
package cronexpr

import (
	"fmt"
	"strings"

	"github.com/robfig/cron/v3"
)

// parser reads the five fields of crontab (minute hour day month weekday)
// and descriptors such as @hourly and @every 5m, after an optional
// TZ=ZONE or CRON_TZ=ZONE.
var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Parse reads expr. It never panics: robfig/cron v3.0.1 slices past the
// end of a time zone with nothing after it ("TZ=UTC"), which is refused
// first, and any other panic of the parser is returned as an error.
func Parse(expr string) (s cron.Schedule, err error) {
	if (strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ=")) && !strings.Contains(expr, " ") {
		return nil, fmt.Errorf("a time zone needs the schedule after it, as in \"TZ=Europe/Paris 0 9 * * *\"")
	}
	defer func() {
		if p := recover(); p != nil {
			s, err = nil, fmt.Errorf("the cron parser failed on it: %v", p)
		}
	}()
	return parser.Parse(expr)
}
