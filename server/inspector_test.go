package server_test

import (
	"context"
	"encoding/json"
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
	srv, db := newServer(t, map[string]string{
		"package.yaml": "name: greeter\nversion: 1.0.0\n",
		"main.js":      `export default { greet(name) { console.log("greeting " + name); return "hello " + name }, async later() { return 1 } }`,
	})
	ts := newHTTPServer(t, srv)
	// A login the provider revoked: keep-fresh left this record.
	db.Set(context.Background(), "greeter", "oauth2.api", json.RawMessage(`{"access_token": "", "package": "greeter", "needs_login": true, "failures": 1, "last_error": "api: the refresh token was rejected (invalid_grant)"}`))

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
	// The run's detail: its facts, timing, arguments, result and log.
	step("open the run's detail", chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#runs tbody tr`)), chromedp.WaitVisible("#detail-card")))
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector("#detail-log tbody").textContent.includes("greeting Ada")`))
	step("wait for the run's log", err)
	args, err := chromedp.Run(ctx, chromedp.Text("#detail-args"))
	step("read the arguments", err)
	timing, err := chromedp.Run(ctx, chromedp.Text("#detail-timing"))
	step("read the timing", err)
	logLines, err := chromedp.Run(ctx, chromedp.Text("#detail-log"))
	step("read the log", err)
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById("credentials").textContent.includes("needs login")`))
	step("wait for the logins panel", err)
	creds, err := chromedp.Run(ctx, chromedp.Text("#credentials"))
	step("read the logins", err)
	// Narrow screens: nothing sticks out sideways (it did below 850 px).
	for _, width := range []int64{1280, 820, 600, 380} {
		step("resize", chromedp.Do(ctx, chromedp.EmulateViewport(width, 900)))
		over, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
		step("measure the page", err)
		if over {
			wide, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1).slice(0, 5).map(e => e.tagName + "#" + e.id + "." + e.className).join(", ")`))
			t.Errorf("at %d px the page is wider than the window: %s", width, wide)
		}
	}
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
	if !strings.Contains(args, `"Ada"`) {
		t.Errorf("detail arguments: %q", args)
	}
	if !strings.Contains(timing, "queued") || !strings.Contains(timing, "ran") {
		t.Errorf("detail timing: %q", timing)
	}
	if !strings.Contains(logLines, "INFO") || !strings.Contains(logLines, "greeting Ada") {
		t.Errorf("detail log: %q", logLines)
	}
	if !strings.Contains(creds, "greeter api") || !strings.Contains(creds, "runner login greeter api --app greeter") || !strings.Contains(creds, "invalid_grant") {
		t.Errorf("logins panel: %q", creds)
	}
}
