package server_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/modrun/modrun/internal/testbin"
)

// chromium finds a Chromium to drive (testbin.Need: it must run in CI).
func chromium(t *testing.T) string {
	return testbin.Need(t, "chromium", "chromium", "chromium-browser", "google-chrome", "headless-shell")
}

// TestInspectorInChromium loads the inspector in a real headless
// Chromium: it asks for the token, lists the package's functions, runs
// one, and shows the run among the recent runs.
func TestInspectorInChromium(t *testing.T) {
	bin := chromium(t)
	srv, _ := newServer(t, map[string]string{
		"package.yaml": "name: greeter\nversion: 1.0.0\n",
		"main.js":      `export default { greet(name) { return "hello " + name }, async later() { return 1 } }`,
	})
	ts := newHTTPServer(t, srv)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), // CI runs as root
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	step := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	step("open the page", chromedp.Do(ctx, chromedp.Navigate(ts+"/"), chromedp.WaitVisible("#login")))
	step("log in", chromedp.Do(ctx, chromedp.SendKeys("#token", token), chromedp.Click(chromedp.CSS(`#login-form button`)), chromedp.WaitVisible("#app")))
	step("list the functions", chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`[data-target="greeter main.greet"]`))))
	packages, err := chromedp.Run(ctx, chromedp.Text("#packages"))
	step("read the packages", err)
	step("run main.greet", chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`[data-target="greeter main.greet"]`)),
		chromedp.SetValue("#run-input", `["Ada"]`),
		chromedp.Click("#run-button"),
		chromedp.WaitVisible("#run-output"),
	))
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("run-output").textContent.includes("hello Ada")`))
	step("wait for the result", err)
	output, err := chromedp.Run(ctx, chromedp.Text("#run-output"))
	step("read the result", err)
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector("#runs tbody tr") !== null`))
	step("wait for recent runs", err)
	runs, err := chromedp.Run(ctx, chromedp.Text("#runs"))
	step("read recent runs", err)
	// MODRUN_SCREENSHOT=FILE keeps a picture of the page, to look at.
	if f := os.Getenv("MODRUN_SCREENSHOT"); f != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		step("screenshot", err)
		os.WriteFile(f, png, 0o644)
	}
	if !strings.Contains(packages, "greeter@1.0.0") || !strings.Contains(packages, "main.greet") || !strings.Contains(packages, "main.later") {
		t.Errorf("packages panel: %q", packages)
	}
	if !strings.Contains(output, "HTTP 200") || !strings.Contains(output, `"result": "hello Ada"`) {
		t.Errorf("run output: %q", output)
	}
	if !strings.Contains(runs, "greeter main.greet") || !strings.Contains(runs, "succeeded") {
		t.Errorf("recent runs: %q", runs)
	}
}
