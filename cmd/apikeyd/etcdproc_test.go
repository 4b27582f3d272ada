package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMain removes the etcd binary the tests built, if any.
func TestMain(m *testing.M) {
	code := m.Run()
	if etcdBinary.dir != "" {
		_ = os.RemoveAll(etcdBinary.dir)
	}
	os.Exit(code)
}

// etcdBinary is testdata/etcd, built once per test binary.
var etcdBinary struct {
	once      sync.Once
	dir, path string
	err       error
}

// etcdPath builds testdata/etcd, the single-member etcd the docs run, and
// returns the binary's path. The tests run etcd as a process of its own,
// as a deployment does, so that stopping it is what losing etcd is.
func etcdPath(tb testing.TB) string {
	tb.Helper()
	etcdBinary.once.Do(func() {
		etcdBinary.dir, etcdBinary.err = os.MkdirTemp("", "apikeyd-etcd-bin-")
		if etcdBinary.err != nil {
			return
		}
		etcdBinary.path = filepath.Join(etcdBinary.dir, "etcd")
		out, err := exec.Command("go", "build", "-o", etcdBinary.path, "../../testdata/etcd").CombinedOutput()
		if err != nil {
			etcdBinary.err = fmt.Errorf("go build testdata/etcd: %w\n%s", err, out)
		}
	})
	require.NoError(tb, etcdBinary.err)
	return etcdBinary.path
}

// etcdProcess is a running (or stopped) single-member etcd.
type etcdProcess struct {
	bin, dir     string
	client, peer string // host:port
	cmd          *exec.Cmd
	exited       chan struct{}
}

// startEtcd starts a single-member etcd on free loopback ports, with its
// data in tb's temp dir, and stops it when tb ends.
func startEtcd(tb testing.TB) *etcdProcess {
	tb.Helper()
	e := &etcdProcess{bin: etcdPath(tb), dir: filepath.Join(tb.TempDir(), "etcd"), client: freeAddr(tb), peer: freeAddr(tb)}
	e.Start(tb)
	tb.Cleanup(e.Stop)
	return e
}

// freeAddr is a loopback address nobody listens on, as far as anyone
// can tell before using it.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	defer l.Close()
	return l.Addr().String()
}

// URL is the member's client URL, for --etcd.
func (e *etcdProcess) URL() string { return "http://" + e.client }

// Start starts the member (again, on the same data and ports) and waits
// until it serves.
func (e *etcdProcess) Start(tb testing.TB) {
	tb.Helper()
	e.cmd = exec.Command(e.bin, "--listen", e.client, "--peer", e.peer, "--data-dir", e.dir, "--unsafe-no-fsync")
	stderr, err := e.cmd.StderrPipe()
	require.NoError(tb, err)
	require.NoError(tb, e.cmd.Start())
	e.exited = make(chan struct{})
	ready := make(chan struct{})
	var out strings.Builder
	var mu sync.Mutex
	go func() {
		sc := bufio.NewScanner(stderr)
		signalled := false
		for sc.Scan() {
			mu.Lock()
			out.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if !signalled && strings.Contains(sc.Text(), "etcd serving on") {
				close(ready)
				signalled = true
			}
		}
		_ = e.cmd.Wait()
		close(e.exited)
	}()
	select {
	case <-ready:
	case <-e.exited:
		mu.Lock()
		defer mu.Unlock()
		tb.Fatalf("etcd exited at start:\n%s", out.String())
	case <-time.After(30 * time.Second):
		e.Stop()
		tb.Fatal("etcd did not serve within 30s")
	}
}

// Stop stops the member, keeping its data; stopping a stopped member does
// nothing.
func (e *etcdProcess) Stop() { e.signal(syscall.SIGTERM) }

// Kill ends the member at once, as a crash or a pulled cable would, keeping
// its data.
func (e *etcdProcess) Kill() { e.signal(syscall.SIGKILL) }

func (e *etcdProcess) signal(sig syscall.Signal) {
	if e.cmd == nil {
		return
	}
	_ = e.cmd.Process.Signal(sig)
	select {
	case <-e.exited:
	case <-time.After(10 * time.Second):
		_ = e.cmd.Process.Kill()
		<-e.exited
	}
	e.cmd = nil
}
