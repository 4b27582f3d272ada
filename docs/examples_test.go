// Package docs_test runs the shell examples of README.md and docs/*.md and
// checks their replies, so that the documentation keeps working when pasted.
//
// How TestExamples works (and why):
//
//   - Where: here, in docs/, so that `make test` (go test ./...) runs it
//     beside the pages it checks.
//   - Binaries: every command under cmd/ is built once (`go build -o
//     $tmp/bin/ ./cmd/...`) and that directory goes first on PATH, so an
//     example may say `apikeyd ...` (or any later binary under cmd/) as an
//     installed command does. The working directory of each page looks like a
//     checkout's root, as the pages assume: a fresh temp dir holding symbolic
//     links to the repository's top-level entries (go.mod, cmd, testdata, ...)
//     and `bin` linked to the built binaries, so `./bin/apikeyd` and
//     `go run ./testdata/...` work while data files land in the temp dir.
//   - `make`: the session defines a shell function `make` in place of the
//     real one. `make run` (with `VAR=value` arguments and APIKEYD_ADDR /
//     APIKEYD_DB, as the Makefile reads them) runs the built
//     `apikeyd serve --addr ADDR --db DB`, which is what the Makefile's
//     target does after building; `make build` does nothing, the binaries
//     being built already. Any other target is an error: pages run only
//     these two.
//   - Which blocks run: every ```sh block, in page order, all of one page in
//     one bash session (so variables and functions carry over). A shell
//     block that must not run says so in its fence: ```sh no-run. Each such
//     block must be listed in noRun below with the reason, so they stay rare
//     and explained. Other fence languages (json, text, go, ini, plain) never
//     run. A block whose fence names a file, as ```go file=main.go does, is
//     saved under that name in the shell's current directory when the page
//     reaches it, as the reader is told to save it.
//   - Replies: the block right after a shell block (only blank lines between),
//     when it is ```json or ```text, is that block's expected output. JSON is
//     compared value by value, structurally; text line by line. Ids (UUIDs),
//     secrets (32 hex digits), RFC 3339 times, list cursors and retry waits
//     in milliseconds are masked on both sides before comparing. A block
//     whose output is not shown must still exit with status 0. A reply the
//     page introduces with prose (an abridged one, or one from another
//     server) is not right after its command, and so is not compared.
//     After an intended change of replies, `go test ./docs -run TestExamples
//     -update-examples` writes what the examples print into the pages, for
//     the replies that differ (masked), as golden files are updated: review
//     the diff.
//   - Values learnt from replies: the pages capture them in the shell (with
//     jq, or by naming keys with `name` and using the name), never by pasting
//     a literal from a sample reply, so that a reader can paste every block
//     as it stands. The test does not rewrite literals: a page that pastes
//     one fails here as it would fail for the reader.
//   - Addresses: the pages say 127.0.0.1:8080 (and 9000 for gateway.md's
//     sample backend). Each page gets free ports instead: every
//     `127.0.0.1:NNNN` in its blocks (and in its expected output) is mapped to
//     a free port of its own before the block runs. The pages' text is left
//     as a reader pastes it.
//   - Cleanup: each page's session runs in its own process group; at the end
//     of the page the group is killed (SIGTERM, then SIGKILL), which stops
//     the servers the examples started in the background.
//   - Needs: bash, curl and jq. Outside CI a machine without them skips with
//     a message; with CI set, that is a failure (.ci/run installs them).
package docs_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pages are the files whose examples run, in this order: the README, then
// every page of docs/, so that a new page's examples run too.
func pages(t *testing.T, root string) []string {
	found, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	require.NoError(t, err)
	sort.Strings(found)
	out := []string{"README.md"}
	for _, f := range found {
		rel, err := filepath.Rel(root, f)
		require.NoError(t, err)
		out = append(out, filepath.ToSlash(rel))
	}
	return out
}

// noRun lists the shell blocks marked ```sh no-run, by page and first
// line, with the reason each cannot run here.
var noRun = map[string]map[string]string{
	"README.md": {
		"make run    # build and serve on 127.0.0.1:8080 with ./apikeyd.db (created on first start)":                "the two commands in short: `make run` serves in the foreground until stopped, and `make test` runs this very test; the session below runs the server",
		"APIKEYD_UPSTREAM_TOKEN=s3cret ./bin/apikeyd serve --upstream http://127.0.0.1:9000/rpc":                    "a glimpse of gateway mode: it needs a backend on 127.0.0.1:9000, and serves in the foreground; docs/gateway.md runs the whole walk-through, with its sample backend",
		"apikeyd serve --addr 10.0.0.11:8080 --etcd http://10.0.0.1:2379,http://10.0.0.2:2379,http://10.0.0.3:2379": "a glimpse of a node: it needs an etcd cluster on those machines, and serves in the foreground; docs/scale-out.md runs nodes on an etcd of its own",
	},
	"docs/scale-out.md": {
		"apt-get install etcd-server":                "installs a system package, as root",
		"etcd --name m1 --data-dir /var/lib/etcd \\": "one member of a three-machine cluster; the page runs testdata/etcd on one machine instead",
		"apikeyd migrate --from-db data/apikeyd.db --to-etcd http://10.0.0.1:2379,http://10.0.0.2:2379": "the two directions in short, against a cluster on other machines; the page runs a migration at its end",
	},
	"docs/operations.md": {
		"go tool pprof http://127.0.0.1:6060/debug/pprof/profile?seconds=10": "interactive, and needs a server started with --debug-addr",
	},
	"docs/api.md": {
		`websocat -H "Authorization: Bearer $KEY" ws://127.0.0.1:8080/ws`: "websocat is not a dependency, and the session is interactive (the JSON line is typed into it)",
	},
}

// makeTargets are the Makefile targets pages may name in no-run blocks or
// prose and the test checks for rather than running (they take minutes).
var makeTargets = []string{"run", "test", "build", "bench-compare", "bench-writes"}

// blockTimeout bounds one block: embedding.md builds a program, which on a
// cold build cache and a busy machine takes a while.
const blockTimeout = 2 * time.Minute

// updateExamples rewrites each page's expected outputs with what the
// examples print, as golden files are updated; review the diff.
var updateExamples = flag.Bool("update-examples", false, "rewrite the expected output blocks of the pages with the actual output")

// block is one fenced block of a page.
type block struct {
	line   int // 1-based line of the opening fence
	end    int // 1-based line of the closing fence
	indent int
	lang   string // the first word of the info string
	flags  []string
	text   string
}

func (b block) has(flag string) bool {
	for _, f := range b.flags {
		if f == flag {
			return true
		}
	}
	return false
}

var fenceRE = regexp.MustCompile("^( *)(```+)(.*)$")

// parseBlocks returns the fenced blocks of a Markdown page, in order, and
// for each whether only blank lines separate it from the block before.
func parseBlocks(src string) (blocks []block, adjacent []bool) {
	lines := strings.Split(src, "\n")
	lastEnd := -2
	for i := 0; i < len(lines); i++ {
		m := fenceRE.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		indent, fence := len(m[1]), m[2]
		info := strings.Fields(m[3])
		b := block{line: i + 1}
		if len(info) > 0 {
			b.lang, b.flags = info[0], info[1:]
		}
		var body []string
		j := i + 1
		for ; j < len(lines); j++ {
			if strings.TrimSpace(lines[j]) == fence {
				break
			}
			l := lines[j]
			if len(l) >= indent && strings.TrimSpace(l[:indent]) == "" {
				l = l[indent:]
			}
			body = append(body, l)
		}
		b.text = strings.Join(body, "\n")
		b.end, b.indent = j+1, indent
		adj := lastEnd >= 0
		for k := lastEnd + 1; adj && k < i; k++ {
			if strings.TrimSpace(lines[k]) != "" {
				adj = false
			}
		}
		blocks = append(blocks, b)
		adjacent = append(adjacent, adj)
		lastEnd = j
		i = j
	}
	return blocks, adjacent
}

// example is a shell block to run and the output it should give.
type example struct {
	block
	expect     *block // nil when the page shows no output for it
	expectLang string
	file       string // for a block to save rather than run: its file name
}

var heredocEnd = "__DOCS_EXAMPLE_FILE__"

// examples picks the runnable shell blocks of a page and their expected
// outputs; skipped lists the no-run blocks by their first line.
func examples(src string) (ex []example, skipped []string) {
	blocks, adjacent := parseBlocks(src)
	for i, b := range blocks {
		if b.lang != "sh" {
			for _, f := range b.flags {
				if name, ok := strings.CutPrefix(f, "file="); ok {
					ex = append(ex, example{block: b, file: name})
				}
			}
			continue
		}
		if b.has("no-run") {
			skipped = append(skipped, firstLine(b.text))
			continue
		}
		e := example{block: b}
		if i+1 < len(blocks) && adjacent[i+1] && (blocks[i+1].lang == "json" || blocks[i+1].lang == "text") {
			e.expect = &blocks[i+1]
			e.expectLang = blocks[i+1].lang
		}
		ex = append(ex, e)
	}
	return ex, skipped
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(s)
}

// Masks: what differs from run to run, replaced on both sides.
var (
	uuidRE   = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	secretRE = regexp.MustCompile(`\b[0-9a-f]{32}\b`)
	timeRE   = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)
	waitRE   = regexp.MustCompile(`retry after \d+ ms`)
)

// maskedFields are JSON members whose values vary from run to run whatever
// they hold: an opaque cursor, and how long to wait.
var maskedFields = map[string]string{
	"next_cursor":    "<cursor>",
	"retry_after_ms": "<ms>",
}

func maskString(s string) string {
	s = uuidRE.ReplaceAllString(s, "<id>")
	s = secretRE.ReplaceAllString(s, "<secret>")
	s = timeRE.ReplaceAllString(s, "<time>")
	return waitRE.ReplaceAllString(s, "retry after <ms> ms")
}

func maskJSON(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			if m, ok := maskedFields[k]; ok {
				out[k] = m
				continue
			}
			out[k] = maskJSON(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = maskJSON(x)
		}
		return out
	case string:
		return maskString(v)
	default:
		return v
	}
}

// jsonValues decodes a stream of JSON values (replies printed one after
// another, with or without newlines between them).
func jsonValues(s string) ([]any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var out []any
	for {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("not JSON at value %d: %w", len(out)+1, err)
		}
		out = append(out, v)
	}
}

// compareOutput says how got differs from want, after masking; "" when it
// does not.
func compareOutput(lang, want, got string) string {
	if lang == "json" {
		w, err := jsonValues(want)
		if err != nil {
			return "the page's expected JSON: " + err.Error()
		}
		g, err := jsonValues(got)
		if err != nil {
			return fmt.Sprintf("the output: %v\noutput:\n%s", err, got)
		}
		var diffs []string
		for i := 0; i < len(w) || i < len(g); i++ {
			switch {
			case i >= len(g):
				diffs = append(diffs, fmt.Sprintf("reply %d missing; want %s", i+1, compact(w[i])))
			case i >= len(w):
				diffs = append(diffs, fmt.Sprintf("reply %d not shown on the page: %s", i+1, compact(g[i])))
			default:
				mw, mg := compact(maskJSON(w[i])), compact(maskJSON(g[i]))
				if mw != mg {
					diffs = append(diffs, fmt.Sprintf("reply %d differs (masked)\nwant: %s\ngot:  %s", i+1, mw, mg))
				}
			}
		}
		return strings.Join(diffs, "\n")
	}
	wl, gl := textLines(want), textLines(got)
	var diffs []string
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = maskString(wl[i])
		}
		if i < len(gl) {
			g = maskString(gl[i])
		}
		if w != g || i >= len(wl) || i >= len(gl) {
			diffs = append(diffs, fmt.Sprintf("line %d differs (masked)\nwant: %q\ngot:  %q", i+1, w, g))
		}
	}
	return strings.Join(diffs, "\n")
}

// compact encodes a decoded JSON value with sorted keys, so that two
// values compare as strings.
func compact(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // show <id>, not \u003cid\u003e
	_ = enc.Encode(v)
	return strings.TrimSuffix(b.String(), "\n")
}

func textLines(s string) []string {
	s = strings.TrimRight(s, " \n")
	if s == "" {
		return nil
	}
	lines := strings.Split(s, "\n")
	for i := range lines {
		lines[i] = strings.TrimRight(lines[i], " ")
	}
	return lines
}

// portRE finds the loopback addresses the pages use.
var portRE = regexp.MustCompile(`127\.0\.0\.1:(\d{2,5})`)

// portMap maps each port a page names to a free one of this machine.
type portMap map[string]string

// unapply maps free ports back to the page's, in output written to a page.
func (pm portMap) unapply(s string) string {
	for page, free := range pm {
		s = strings.ReplaceAll(s, "127.0.0.1:"+free, "127.0.0.1:"+page)
	}
	return s
}

func (pm portMap) apply(t *testing.T, s string) string {
	return portRE.ReplaceAllStringFunc(s, func(addr string) string {
		port := strings.TrimPrefix(addr, "127.0.0.1:")
		free, ok := pm[port]
		if !ok {
			free = freePort(t)
			pm[port] = free
		}
		return "127.0.0.1:" + free
	})
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// inCI reports whether the CI environment variable value marks a CI run:
// set to anything but a false value ("", "0", "false").
func inCI(value string) bool {
	if value == "" {
		return false
	}
	b, err := strconv.ParseBool(value)
	return err != nil || b
}

// toolsVerdict says what TestExamples does when tools it needs are missing:
// "" to run, or why it skips (outside CI) or fails (in CI).
func toolsVerdict(ci bool, missing []string) (fail bool, why string) {
	if len(missing) == 0 {
		return false, ""
	}
	why = strings.Join(missing, ", ") + " not on PATH; the documentation examples need bash, curl and jq (Debian: apt-get install bash curl jq)"
	if ci {
		return true, why + "; CI is set, so this is a failure, not a skip"
	}
	return false, why + "; skipping outside CI (in CI this fails)"
}

// needTools skips (outside CI) or fails (in CI) without bash, curl and jq.
func needTools(t *testing.T) {
	var missing []string
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	fail, why := toolsVerdict(inCI(os.Getenv("CI")), missing)
	switch {
	case fail:
		t.Fatal(why)
	case why != "":
		t.Skip(why)
	}
}

// makeFunc stands in for make in each session; see the package comment.
const makeFunc = `make() {
  local target= addr="${APIKEYD_ADDR:-127.0.0.1:8080}" db="${APIKEYD_DB:-./apikeyd.db}" a
  for a in "$@"; do
    case "$a" in
      ADDR=*) addr="${a#ADDR=}" ;;
      DB=*) db="${a#DB=}" ;;
      *=*) ;;
      *) target="$a" ;;
    esac
  done
  case "$target" in
    run) apikeyd serve --addr "$addr" --db "$db" ;;
    build) : ;;
    *) echo "docs test: make $target is not run here" >&2; return 2 ;;
  esac
}
`

func repoRoot(t *testing.T) string {
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	require.FileExists(t, filepath.Join(root, "go.mod"))
	return root
}

// buildBinaries builds every command under cmd/ into dir.
func buildBinaries(t *testing.T, root, dir string) {
	cmd := exec.Command("go", "build", "-o", dir+string(os.PathSeparator), "./cmd/...")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build ./cmd/...:\n%s", out)
}

// checkoutDir makes a temp dir that looks like the repository's root:
// links to its top-level entries, and bin linked to binDir.
func checkoutDir(t *testing.T, root, binDir string) string {
	dir := t.TempDir()
	entries, err := os.ReadDir(root)
	require.NoError(t, err)
	for _, e := range entries {
		name := e.Name()
		if name == "bin" || name == ".git" || strings.HasSuffix(name, ".db") {
			continue
		}
		require.NoError(t, os.Symlink(filepath.Join(root, name), filepath.Join(dir, name)))
	}
	require.NoError(t, os.Symlink(binDir, filepath.Join(dir, "bin")))
	return dir
}

// session is one bash process running a page's blocks.
type session struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *os.File
	dir    string
	n      int
}

func startSession(t *testing.T, dir, binDir string, ports portMap) *session {
	errFile, err := os.CreateTemp(t.TempDir(), "stderr")
	require.NoError(t, err)
	cmd := exec.Command("bash", "--noprofile", "--norc")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stderr = errFile
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	s := &session{cmd: cmd, stdin: stdin, lines: make(chan string, 1024), stderr: errFile, dir: t.TempDir()}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
	}()
	t.Cleanup(s.stop)
	// make run's default address is the page's 127.0.0.1:8080: map it too.
	_, err = io.WriteString(stdin, ports.apply(t, makeFunc))
	require.NoError(t, err)
	return s
}

// run sources one block in the session and returns its stdout and exit
// status.
func (s *session) run(text string) (string, int, error) {
	s.n++
	file := filepath.Join(s.dir, fmt.Sprintf("block%d.sh", s.n))
	if err := os.WriteFile(file, []byte(text+"\n"), 0o600); err != nil {
		return "", 0, err
	}
	end := fmt.Sprintf("__docs_example_end_%d__", s.n)
	script := fmt.Sprintf("source %q </dev/null\nprintf '\\n%s %%d\\n' $?\n", file, end)
	if _, err := io.WriteString(s.stdin, script); err != nil {
		return "", 0, err
	}
	var out []string
	timeout := time.After(blockTimeout)
	for {
		select {
		case l, ok := <-s.lines:
			if !ok {
				return strings.Join(out, "\n"), -1, errors.New("the shell exited")
			}
			if rest, found := strings.CutPrefix(l, end+" "); found {
				rc, _ := strconv.Atoi(rest)
				return strings.Join(out, "\n"), rc, nil
			}
			out = append(out, l)
		case <-timeout:
			return strings.Join(out, "\n"), -1, fmt.Errorf("no end after %s", blockTimeout)
		}
	}
}

// stop kills the session's process group: the shell and every server it
// started in the background.
func (s *session) stop() {
	if s.cmd.Process == nil {
		return
	}
	pgid := s.cmd.Process.Pid
	_ = s.stdin.Close()
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	// Servers may outlive the shell: make sure the whole group is gone.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-done
	s.cmd.Process = nil
}

func (s *session) stderrText() string {
	b, _ := os.ReadFile(s.stderr.Name())
	const max = 8 << 10
	if len(b) > max {
		b = append([]byte("..."), b[len(b)-max:]...)
	}
	return string(b)
}

// TestExamples runs every page's shell examples and compares their
// replies with the ones shown.
func TestExamples(t *testing.T) {
	needTools(t)
	root := repoRoot(t)
	binDir := filepath.Join(t.TempDir(), "bin")
	buildBinaries(t, root, binDir)
	for _, page := range pages(t, root) {
		t.Run(strings.ReplaceAll(page, "/", "_"), func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join(root, page))
			require.NoError(t, err)
			ex, skipped := examples(string(src))
			checkNoRun(t, page, skipped)
			if len(ex) == 0 {
				return
			}
			ports := portMap{}
			s := startSession(t, checkoutDir(t, root, binDir), binDir, ports)
			updated := map[int]example{} // by expected block's line
			outputs := map[int]string{}
			if *updateExamples {
				defer func() { rewriteExpected(t, filepath.Join(root, page), string(src), updated, outputs, ports) }()
			}
			for _, e := range ex {
				text := ports.apply(t, e.text)
				if e.file != "" {
					require.NotContains(t, text, heredocEnd)
					text = fmt.Sprintf("cat > %q <<'%s'\n%s\n%s", e.file, heredocEnd, text, heredocEnd)
				}
				out, rc, err := s.run(text)
				where := fmt.Sprintf("%s:%d", page, e.line)
				if !assert.NoError(t, err, "%s: %s\noutput:\n%s\nstderr:\n%s", where, firstLine(e.text), out, s.stderrText()) {
					return
				}
				if !assert.Zero(t, rc, "%s: %q exited %d\noutput:\n%s\nstderr:\n%s", where, firstLine(e.text), rc, out, s.stderrText()) {
					return
				}
				if testing.Verbose() {
					t.Logf("%s: %s\n%s", where, firstLine(e.text), out)
				}
				if e.expect == nil {
					continue
				}
				d := compareOutput(e.expectLang, ports.apply(t, e.expect.text), out)
				if *updateExamples {
					if d != "" { // rewrite only what differs, so the diff shows only that
						updated[e.expect.line], outputs[e.expect.line] = e, out
					}
					continue
				}
				if d != "" {
					assert.Fail(t, "reply differs from the page", "%s: %s\n%s\nstderr:\n%s", where, firstLine(e.text), d, s.stderrText())
				}
			}
		})
	}
}

// rewriteExpected replaces the expected blocks of a page with the outputs
// the examples gave (-update-examples).
func rewriteExpected(t *testing.T, file, src string, updated map[int]example, outputs map[int]string, ports portMap) {
	lines := strings.Split(src, "\n")
	var starts []int
	for line := range updated {
		starts = append(starts, line)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(starts)))
	for _, line := range starts {
		e := updated[line]
		pad := strings.Repeat(" ", e.expect.indent)
		var body []string
		for _, l := range textLines(ports.unapply(outputs[line])) {
			body = append(body, pad+l)
		}
		// Replace the lines between the fences (line and end, 1-based).
		lines = append(lines[:line], append(body, lines[e.expect.end-1:]...)...)
	}
	require.NoError(t, os.WriteFile(file, []byte(strings.Join(lines, "\n")), 0o644))
}

// checkNoRun fails on a no-run block that noRun does not explain.
func checkNoRun(t *testing.T, page string, skipped []string) {
	for _, first := range skipped {
		_, ok := noRun[page][first]
		assert.True(t, ok, "%s: the block starting %q is marked no-run but noRun does not say why", page, first)
	}
	for first := range noRun[page] {
		assert.Contains(t, skipped, first, "%s: noRun lists %q, which is no longer a no-run block", page, first)
	}
}

var (
	makeRE = regexp.MustCompile("`make ([a-z][a-z0-9-]*)")
	// A path in backticks, in parentheses or as a link target, as prose
	// names files.
	pathRE = regexp.MustCompile("(?:`|\\]?\\()((?:\\.\\./)*[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)+/?)[`)#]")
)

// TestExamplesMakeTargets checks that the make targets the pages name exist
// (those the pages name instead of running, as they take minutes, included).
func TestExamplesMakeTargets(t *testing.T) {
	root := repoRoot(t)
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	require.NoError(t, err)
	targets := append([]string(nil), makeTargets...)
	for _, page := range pages(t, root) {
		src, err := os.ReadFile(filepath.Join(root, page))
		require.NoError(t, err)
		for _, m := range makeRE.FindAllStringSubmatch(string(src), -1) {
			targets = append(targets, m[1])
		}
	}
	for _, target := range targets {
		assert.Regexp(t, regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(target)+`:`), string(mk), "make %s", target)
	}
}

// TestExamplesPaths checks that the files the pages' prose names exist in
// the repository: no page points at a script outside it.
func TestExamplesPaths(t *testing.T) {
	root := repoRoot(t)
	top, err := os.ReadDir(root)
	require.NoError(t, err)
	tracked := map[string]bool{}
	for _, e := range top {
		tracked[e.Name()] = e.IsDir()
	}
	for _, page := range pages(t, root) {
		src, err := os.ReadFile(filepath.Join(root, page))
		require.NoError(t, err)
		for _, m := range pathRE.FindAllStringSubmatch(proseOnly(string(src)), -1) {
			p := m[1]
			var file string
			switch first, _, _ := strings.Cut(p, "/"); {
			case first == "..":
				file = filepath.Join(root, filepath.Dir(page), p) // a link, relative to its page
				rel, err := filepath.Rel(root, file)
				if assert.NoError(t, err) && !assert.False(t, strings.HasPrefix(rel, ".."), "%s names %s, outside the repository", page, p) {
					continue
				}
			case tracked[first] && first != "bin":
				file = filepath.Join(root, p)
			default:
				continue // not a path of this repository (a URL path, a scope value)
			}
			if _, err := os.Stat(file); err != nil {
				// "each package's testdata/fuzz/": a path within a package.
				inPkg, _ := filepath.Glob(filepath.Join(root, "*", p))
				assert.NotEmpty(t, inPkg, "%s names %s, which is not in the repository", page, p)
			}
		}
	}
}

// proseOnly blanks a page's fenced blocks, leaving its prose.
func proseOnly(src string) string {
	lines := strings.Split(src, "\n")
	blocks, _ := parseBlocks(src)
	for _, b := range blocks {
		for i := b.line - 1; i < b.end && i < len(lines); i++ {
			lines[i] = ""
		}
	}
	return strings.Join(lines, "\n")
}

func TestParseBlocks(t *testing.T) {
	src := "text\n```sh\necho hi\n```\n\n```json\n{\"a\":1}\n```\nprose\n```text\nnot output\n```\n" +
		"- item\n  ```sh no-run\n  interactive\n  ```\n```sh\nsecond\n```\n```go\npackage main\n```\n" +
		"```go file=main.go\npackage main\n```\n"
	ex, skipped := examples(src)
	require.Len(t, ex, 3)
	assert.Equal(t, "main.go", ex[2].file, "a block with file= is saved")
	assert.Equal(t, "package main", ex[2].text)
	assert.Equal(t, "echo hi", ex[0].text)
	assert.Equal(t, 2, ex[0].line)
	require.NotNil(t, ex[0].expect)
	assert.Equal(t, "json", ex[0].expectLang)
	assert.Equal(t, `{"a":1}`, ex[0].expect.text)
	assert.Equal(t, "second", ex[1].text)
	assert.Nil(t, ex[1].expect, "a go block is not output")
	assert.Equal(t, []string{"interactive"}, skipped)
}

// TestCompareOutput proves the comparer fails on replies that do not match
// the page: a changed value, a removed field, an extra field, a missing or
// extra reply, and text that differs; and passes where only ids, secrets,
// times, cursors and waits differ.
func TestCompareOutput(t *testing.T) {
	want := `{"jsonrpc":"2.0","result":{"id":"01a2071f-0ded-7ce5-b578-c4229500c08e","scopes":{"method":["apikey.info"]},"comment":"read-only","active":true,"created":"2026-11-23T06:36:45Z","key":"d5c15bf9296733abfe1cb38e873bffff"},"id":1}`
	same := `{"id":1,"jsonrpc":"2.0","result":{"key":"0123456789abcdef0123456789abcdef","active":true,"comment":"read-only","scopes":{"method":["apikey.info"]},"created":"2027-01-02T03:04:05Z","id":"01a23000-0000-7000-8000-000000000001"}}` + "\n"
	for name, tc := range map[string]struct {
		lang, want, got string
		ok              bool
		says            string
	}{
		"same but ids, secrets, times": {lang: "json", want: want, got: same, ok: true},
		"changed value":                {lang: "json", want: want, got: strings.Replace(same, `"read-only"`, `"read-write"`, 1), says: "read-write"},
		"changed scope":                {lang: "json", want: want, got: strings.Replace(same, `"apikey.info"`, `"apikey.list"`, 1), says: "apikey.list"},
		"removed field":                {lang: "json", want: want, got: strings.Replace(same, `"active":true,`, ``, 1), says: "reply 1 differs"},
		"extra field":                  {lang: "json", want: want, got: strings.Replace(same, `"active":true,`, `"active":true,"use_count":1,`, 1), says: "use_count"},
		"changed number":               {lang: "json", want: `{"id":1}`, got: `{"id":2}`, says: "reply 1 differs"},
		"missing reply":                {lang: "json", want: want + "\n" + want, got: same, says: "reply 2 missing"},
		"extra reply":                  {lang: "json", want: want, got: same + same, says: "reply 2 not shown"},
		"not JSON":                     {lang: "json", want: want, got: "curl: (7) Failed to connect", says: "not JSON"},
		"nothing":                      {lang: "json", want: want, got: "", says: "reply 1 missing"},
		"cursor and wait masked": {lang: "json", ok: true,
			want: `{"next_cursor":"abc","error":{"message":"retry after 30000 ms","data":{"retry_after_ms":30000}}}`,
			got:  `{"next_cursor":"xyz","error":{"message":"retry after 29870 ms","data":{"retry_after_ms":29870}}}`},
		"text same":      {lang: "text", want: "ready\n200", got: "ready\n200\n", ok: true},
		"text differs":   {lang: "text", want: "ready\n200", got: "not ready\n503", says: "line 1 differs"},
		"text shorter":   {lang: "text", want: "ready\n200", got: "ready", says: "line 2 differs"},
		"text longer":    {lang: "text", want: "ready", got: "ready\n200", says: "line 2 differs"},
		"text with mask": {lang: "text", want: "key 01a2071f-0ded-7ce5-b578-c4229500c08e", got: "key 01a23000-0000-7000-8000-000000000001", ok: true},
	} {
		t.Run(name, func(t *testing.T) {
			d := compareOutput(tc.lang, tc.want, tc.got)
			if tc.ok {
				assert.Empty(t, d)
				return
			}
			assert.NotEmpty(t, d)
			assert.Contains(t, d, tc.says)
		})
	}
}

func TestToolsVerdict(t *testing.T) {
	fail, why := toolsVerdict(false, nil)
	assert.False(t, fail)
	assert.Empty(t, why, "all there: run")
	fail, why = toolsVerdict(false, []string{"jq"})
	assert.False(t, fail)
	assert.Contains(t, why, "jq not on PATH")
	assert.Contains(t, why, "skipping outside CI")
	fail, why = toolsVerdict(true, []string{"curl", "jq"})
	assert.True(t, fail)
	assert.Contains(t, why, "curl, jq not on PATH")
	assert.Contains(t, why, "CI is set")
	for value, want := range map[string]bool{"": false, "0": false, "false": false, "true": true, "1": true, "yes": true} {
		assert.Equal(t, want, inCI(value), "CI=%q", value)
	}
}

// TestExamplesWithoutTools runs TestExamples in a copy of this test binary
// on a PATH without curl and jq: outside CI it must skip and say why, in CI
// fail.
func TestExamplesWithoutTools(t *testing.T) {
	if os.Getenv("APIKEYD_DOCS_CHILD") != "" {
		t.Skip("already the child run")
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash to leave on PATH")
	}
	dir := t.TempDir() // a PATH holding only bash
	require.NoError(t, os.Symlink(bash, filepath.Join(dir, "bash")))
	for _, ci := range []string{"", "true"} {
		t.Run("CI="+ci, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run", "^TestExamples$", "-test.v", "-test.count=1")
			var env []string
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, "CI=") {
					env = append(env, kv)
				}
			}
			env = append(env, "PATH="+dir, "APIKEYD_DOCS_CHILD=1")
			if ci != "" {
				env = append(env, "CI="+ci)
			}
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			assert.Contains(t, string(out), "curl, jq not on PATH")
			if ci == "" {
				assert.NoError(t, err, "outside CI the test skips:\n%s", out)
				assert.Contains(t, string(out), "--- SKIP: TestExamples")
			} else {
				assert.Error(t, err, "in CI the test fails:\n%s", out)
				assert.Contains(t, string(out), "--- FAIL: TestExamples")
			}
		})
	}
}
