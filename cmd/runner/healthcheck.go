package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// healthcheckCmd asks a runner serve whether it is ready: the image's
// HEALTHCHECK, which has no curl or shell (FROM scratch).
func (c *cli) healthcheckCmd() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "healthcheck [URL]",
		Short: "Exit 0 if a runner serve answers /readyz with 200 (for a container's HEALTHCHECK)",
		Long: `Ask a runner serve whether it is ready: GET URL/readyz, exit 0 on 200 and 1
otherwise, printing the reason. URL defaults to http:// and $MODRUN_LISTEN (as serve
reads it), else http://127.0.0.1:8787.`,
		Example: `  runner healthcheck
  runner healthcheck http://127.0.0.1:9000`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usagef("healthcheck takes at most one argument, the server's URL")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkNumbers(cmd, atLeast{"timeout", 1}); err != nil {
				return err
			}
			base := "http://127.0.0.1:8787"
			if l := os.Getenv("MODRUN_LISTEN"); l != "" {
				host := l
				if strings.HasPrefix(host, "0.0.0.0:") || strings.HasPrefix(host, ":") || strings.HasPrefix(host, "[::]:") {
					host = "127.0.0.1:" + host[strings.LastIndex(host, ":")+1:]
				}
				base = "http://" + host
			}
			if len(args) == 1 {
				base = args[0]
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/readyz", nil)
			if err != nil {
				return usagef("healthcheck %q: %v", base, err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("not ready: %w", err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("not ready: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
			}
			fmt.Fprintln(c.stdout, "ready")
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the answer")
	return cmd
}
