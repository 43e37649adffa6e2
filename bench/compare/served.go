// A server under test: started, its address waited for, its CPU and memory (and its workers') read from /proc, stopped.

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	defer ln.Close()
	return ln.Addr().String()
}

func waitListening(addr string) {
	for range 100 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	log.Fatal("the token server did not start")
}

func numCPU() int {
	out, _ := exec.Command("nproc").Output()
	n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return n
}

// served is a server process of the serve rows.
type served struct {
	cmd        *exec.Cmd
	url        string
	cpu        time.Duration // at start, to subtract (workers included)
	workersRSS int64
}

// children are the server's worker processes.
func (s *served) children() []int {
	out, _ := exec.Command("pgrep", "-P", strconv.Itoa(s.cmd.Process.Pid)).Output()
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if n, err := strconv.Atoi(f); err == nil {
			pids = append(pids, n)
		}
	}
	return pids
}

// childrenRSSKB is the workers' resident sets, added up.
func (s *served) childrenRSSKB() int64 {
	var total int64
	for _, pid := range s.children() {
		total += statusField(pid, "VmRSS")
	}
	return total
}

// largestChildRSSKB is the largest worker's resident set.
func (s *served) largestChildRSSKB() int64 {
	var most int64
	for _, pid := range s.children() {
		most = max(most, statusField(pid, "VmRSS"))
	}
	return most
}

// startServed starts a server that prints "serving on http://ADDR" on
// stdout or stderr, and waits for that line.
func startServed(env []string, name string, args ...string) *served {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	pr, pw, err := os.Pipe()
	must(err)
	cmd.Stdout, cmd.Stderr = pw, pw
	must(cmd.Start())
	pw.Close()
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "serving on "); ok {
				found <- u
			}
		}
	}()
	s := &served{cmd: cmd}
	select {
	case s.url = <-found:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		log.Fatalf("%s did not start", name)
	}
	s.cpu = s.cpuTime()
	return s
}

// cpuTime is the process's user + system time and its workers', from /proc.
func (s *served) cpuTime() time.Duration {
	t := procCPU(s.cmd.Process.Pid)
	for _, pid := range s.children() {
		t += procCPU(pid)
	}
	return t
}

func procCPU(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name (in parentheses): utime and stime
	// are the 12th and 13th, in clock ticks of 1/100 s.
	rest := string(data[bytes.LastIndexByte(data, ')')+2:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// status reads a field of /proc/PID/status in KB (VmRSS, VmHWM).
func (s *served) status(field string) int64 { return statusField(s.cmd.Process.Pid, field) }

func statusField(pid int, field string) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb
		}
	}
	return 0
}

func (s *served) rssKB() int64 { return s.status("VmRSS") }

// account records the server's CPU and peak RSS in r.
func (s *served) account(r *result) {
	r.ServerCPU = s.cpuTime() - s.cpu
	r.ServerRSSKB = s.status("VmHWM")
}

func (s *served) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}
