package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/store"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	bolt "go.etcd.io/bbolt"
)

// The long run is `make crash`: go test ./cmd/apikeyd -run TestCrash -crash.rounds=30.
var (
	crashRounds  = flag.Int("crash.rounds", 3, "kill -9 rounds of TestCrash")
	crashClients = flag.Int("crash.clients", 8, "concurrent clients of TestCrash")
	crashMaxRun  = flag.Duration("crash.max-run", 1500*time.Millisecond, "longest write storm before a kill in TestCrash")
	crashHistory = flag.Int("crash.history-clients", 2, "clients of TestCrash whose history is checked for linearizability")
)

// crashScopeValues are the method scope values the clients add and remove.
var crashScopeValues = []string{"crash.a", "crash.b", "crash.c", "crash.d"}

// Knowledge about a scope value, or a key's existence, from acknowledged
// replies only.
const (
	absent  = iota // acknowledged as not there
	present        // acknowledged as there
	unknown        // a change was sent and its reply never came: either is allowed
)

// crashKey is what the clients know of one key from acknowledged replies.
type crashKey struct {
	id, secret string
	state      int // present, absent (delete acknowledged) or unknown (delete in flight)
	scopes     map[string]int
}

// crashModel holds every key whose create was acknowledged, across rounds.
type crashModel struct {
	mu   sync.Mutex
	keys []*crashKey
	acks int // acknowledged writes
}

func (m *crashModel) add(k *crashKey) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keys = append(m.keys, k)
	m.acks++
}

func (m *crashModel) ack() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.acks++
}

// crashServer is a real apikeyd serve process.
type crashServer struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{}
}

// buildApikeyd builds the real binary once, into a temporary directory.
func buildApikeyd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "apikeyd")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

func startCrashServer(t *testing.T, bin, db string) *crashServer {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--db", db)
	cmd.Env = append(os.Environ(), "APIKEYD_ADMIN_KEY="+testAdminKey)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	s := &crashServer{cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var line struct{ Message, Addr string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Message == "serving" && line.Addr != "" {
				select {
				case addr <- line.Addr:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	select {
	case s.addr = <-addr:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("apikeyd serve did not start in 30 s")
	}
	t.Cleanup(func() { s.kill() })
	return s
}

// kill sends SIGKILL and waits for the process to be gone.
func (s *crashServer) kill() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	_ = s.cmd.Wait()
	<-s.done
}

// crashCall sends one call; ok reports whether a JSON-RPC reply came back
// (an acknowledgement), whatever it says.
func crashCall(c *http.Client, addr, key, method string, params any) (result json.RawMessage, errID string, ok bool) {
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": method, "params": params, "id": 1})
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/rpc", bytes.NewReader(body))
	if err != nil {
		return nil, "", false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", false
	}
	defer resp.Body.Close()
	var reply struct {
		Result json.RawMessage
		Error  *struct {
			Data struct {
				ErrorID string `json:"error_id"`
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&reply); err != nil {
		return nil, "", false
	}
	if reply.Error != nil {
		return nil, reply.Error.Data.ErrorID, true
	}
	return reply.Result, "", true
}

// crashClient writes until stop is closed or the server dies: it creates
// keys, changes their scopes and deletes some, recording every
// acknowledgement in m.
func crashClient(c *http.Client, addr string, m *crashModel, stop <-chan struct{}, rng *rand.Rand) {
	var mine []*crashKey
	for {
		select {
		case <-stop:
			return
		default:
		}
		live := mine[:0:0]
		for _, k := range mine {
			if k.state == present {
				live = append(live, k)
			}
		}
		switch op := rng.IntN(10); {
		case op < 3 || len(live) == 0:
			res, errID, ok := crashCall(c, addr, testAdminKey, "apikey.create", map[string]any{"comment": "crash"})
			if !ok {
				return // the server is gone; what was in flight is unknown
			}
			if errID != "" {
				continue
			}
			var k struct{ ID, Key string }
			if json.Unmarshal(res, &k) != nil || k.ID == "" || k.Key == "" {
				continue
			}
			ck := &crashKey{id: k.ID, secret: k.Key, state: present, scopes: map[string]int{}}
			mine = append(mine, ck)
			m.add(ck)
		case op < 4:
			k := live[rng.IntN(len(live))]
			m.mu.Lock()
			k.state = unknown
			m.mu.Unlock()
			_, errID, ok := crashCall(c, addr, testAdminKey, "apikey.delete", map[string]any{"id": k.id})
			if !ok {
				return
			}
			if errID == "" {
				m.mu.Lock()
				k.state = absent
				m.mu.Unlock()
				m.ack()
			} else {
				m.mu.Lock()
				k.state = present
				m.mu.Unlock()
			}
		default:
			k := live[rng.IntN(len(live))]
			v := crashScopeValues[rng.IntN(len(crashScopeValues))]
			method, want := "apikey.add_scope", present
			if rng.IntN(2) == 0 {
				method, want = "apikey.delete_scope", absent
			}
			m.mu.Lock()
			before := k.scopes[v]
			k.scopes[v] = unknown
			m.mu.Unlock()
			_, errID, ok := crashCall(c, addr, testAdminKey, method,
				map[string]any{"id": k.id, "scope_name": "method", "value": v})
			if !ok {
				return
			}
			m.mu.Lock()
			if errID == "" {
				k.scopes[v] = want
			} else {
				k.scopes[v] = before
			}
			m.mu.Unlock()
			if errID == "" {
				m.ack()
			}
		}
	}
}

// checkCrashFile checks the file with the server stopped: bbolt's own
// check of its pages, then the store's check of keys and indexes.
func checkCrashFile(t *testing.T, db string) {
	t.Helper()
	bdb, err := bolt.Open(db, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	require.NoError(t, err)
	err = bdb.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
	require.NoError(t, bdb.Close())
	require.NoError(t, err, "bbolt check")
	st, err := store.Open(db, store.Options{})
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, st.CheckKeys(), "store check")
}

// verifyCrashModel checks the restarted server against every acknowledged
// write and returns how many were lost.
func verifyCrashModel(t *testing.T, c *http.Client, addr string, m *crashModel) (lost int) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range m.keys {
		res, errID, ok := crashCall(c, addr, testAdminKey, "apikey.info", map[string]any{"id": k.id})
		require.True(t, ok, "no reply from the restarted server")
		switch k.state {
		case absent:
			if !assert.Equal(t, "key_not_found", errID, "acknowledged delete of %s came back", k.id) {
				lost++
			}
			_, errID, _ = crashCall(c, addr, k.secret, "system.list_methods", nil)
			if !assert.Equal(t, "invalid_key", errID, "the secret of deleted key %s still authenticates", k.id) {
				lost++
			}
			continue
		case unknown:
			if errID == "key_not_found" {
				k.state = absent // the delete took effect: the key stays gone
				continue
			}
			k.state = present // it did not: the key must stay
		}
		if !assert.Empty(t, errID, "acknowledged create of %s is lost", k.id) {
			lost++
			continue
		}
		var info struct {
			Scopes map[string][]string
		}
		require.NoError(t, json.Unmarshal(res, &info))
		for v, st := range k.scopes {
			has := slices.Contains(info.Scopes["method"], v)
			switch {
			case st == present && !has, st == absent && has:
				assert.Fail(t, "acknowledged scope change lost", "key %s, method scope %q: acknowledged %v, stored %v", k.id, v, st == present, has)
				lost++
			case st == unknown:
				// Whichever way it went, it is settled now.
				if has {
					k.scopes[v] = present
				} else {
					k.scopes[v] = absent
				}
			}
		}
		_, errID, ok = crashCall(c, addr, k.secret, "system.list_methods", nil)
		require.True(t, ok)
		if !assert.Empty(t, errID, "the secret of key %s does not authenticate", k.id) {
			lost++
		}
	}
	return lost
}

// TestCrash kills the real server with SIGKILL at a random moment of a
// write storm, round after round on the same file, and after each kill
// checks the file and that every acknowledged write survived. A short run
// by default; `make crash` runs 30 rounds.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the real server")
	}
	bin := buildApikeyd(t)
	db := filepath.Join(t.TempDir(), "apikeyd.db")
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: *crashClients}}
	defer c.CloseIdleConnections()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 16))
	m := &crashModel{}
	hist := &histRecorder{start: time.Now()}
	lost := 0
	for round := 1; round <= *crashRounds; round++ {
		s := startCrashServer(t, bin, db)
		lost += verifyCrashModel(t, c, s.addr, m)

		stop := make(chan struct{})
		var wg sync.WaitGroup
		for i := 0; i < *crashClients; i++ {
			wg.Add(1)
			r := rand.New(rand.NewPCG(rng.Uint64(), uint64(i)))
			go func() {
				defer wg.Done()
				crashClient(c, s.addr, m, stop, r)
			}()
		}
		for i := 0; i < *crashHistory; i++ {
			wg.Add(1)
			r := rand.New(rand.NewPCG(rng.Uint64(), uint64(i)))
			go func() {
				defer wg.Done()
				histClient(c, s.addr, hist, i, math.MaxInt, stop, r)
			}()
		}
		time.Sleep(100*time.Millisecond + time.Duration(rng.Int64N(int64(*crashMaxRun))))
		s.kill()
		killedAt := hist.now()
		close(stop)
		wg.Wait()
		hist.settle(killedAt)
		c.CloseIdleConnections()
		checkCrashFile(t, db)
		m.mu.Lock()
		t.Logf("round %d: %d keys known, %d acknowledged writes so far", round, len(m.keys), m.acks)
		m.mu.Unlock()
	}
	s := startCrashServer(t, bin, db)
	lost += verifyCrashModel(t, c, s.addr, m)
	require.True(t, hist.readAll(c, s.addr, 0), "no reply from the restarted server")
	s.kill()
	m.mu.Lock()
	summary := fmt.Sprintf("%d rounds, %d acknowledged writes, %d lost", *crashRounds, m.acks, lost)
	m.mu.Unlock()
	t.Log(summary)
	require.Zero(t, lost, summary)
	require.NotZero(t, m.acks, "no write was acknowledged: the test tested nothing")
	if *crashHistory > 0 {
		t.Logf("history: %d operations on %d keys, %d calls cut off by kills", len(hist.ops), len(hist.keys), hist.lost)
		ok, summary := histCheck(hist.ops)
		require.True(t, ok, summary)
	}
}
