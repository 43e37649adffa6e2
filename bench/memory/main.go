// Command memory reports the resident memory of one engine holding N idle
// instances of the refresh-token example (each has run once, so its
// runtime is built), and the bytes allocated per run of a local function.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"
	"strings"

	"github.com/modrun/modrun"
	"github.com/modrun/modrun/engine"
	"github.com/modrun/modrun/store"
)

func rssKB() int {
	data, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			var kb int
			fmt.Sscanf(strings.TrimPrefix(l, "VmRSS:"), "%d", &kb)
			return kb
		}
	}
	return 0
}

func main() {
	n := flag.Int("n", 100, "idle instances")
	pkgDir := flag.String("pkg", "bench/refresh", "package")
	flag.Parse()
	ctx := context.Background()
	eng := modrun.New(modrun.Options{Store: store.NewMemory()})
	pkg, err := eng.Load(*pkgDir)
	if err != nil {
		log.Fatal(err)
	}
	runtime.GC()
	base := rssKB()
	var insts []engine.Instance
	for range *n {
		inst, err := eng.NewInstance(pkg, modrun.InstanceOptions{})
		if err != nil {
			log.Fatal(err)
		}
		if _, err := inst.Call(ctx, "auth.add", json.RawMessage("1"), json.RawMessage("2")); err != nil {
			log.Fatal(err)
		}
		insts = append(insts, inst)
	}
	runtime.GC()
	held := rssKB()

	// Bytes allocated per run on a warm instance.
	var before, after runtime.MemStats
	const runs = 2000
	runtime.ReadMemStats(&before)
	for range runs {
		insts[0].Call(ctx, "auth.add", json.RawMessage("1"), json.RawMessage("2"))
	}
	runtime.ReadMemStats(&after)
	perRun := float64(after.TotalAlloc-before.TotalAlloc) / runs
	out, _ := json.Marshal(map[string]any{
		"instances": *n, "rss_base_kb": base, "rss_kb": held,
		"kb_per_instance": float64(held-base) / float64(*n), "bytes_per_run": perRun,
	})
	fmt.Println(string(out))
	for _, i := range insts {
		i.Close()
	}
}
