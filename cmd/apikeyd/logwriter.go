package main

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// flushWriter gathers log lines in memory and writes them out every interval,
// or sooner when 64 KiB have gathered: one write system call per batch of
// lines rather than one per call, which under load costs more than the rest
// of a call. Close flushes what is left. A crash loses at most one interval
// of lines.
type flushWriter struct {
	mu   sync.Mutex
	w    *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

func newFlushWriter(w io.Writer, interval time.Duration) *flushWriter {
	f := &flushWriter{w: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go f.loop(interval)
	return f
}

func (f *flushWriter) loop(interval time.Duration) {
	defer close(f.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			f.flush()
		case <-f.stop:
			f.flush()
			return
		}
	}
}

// Write buffers p whole, so lines from concurrent calls never interleave.
func (f *flushWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.w.Write(p)
}

func (f *flushWriter) flush() {
	f.mu.Lock()
	defer f.mu.Unlock()
	_ = f.w.Flush()
}

// Close flushes and stops the background writer. Writes after Close are
// kept in the buffer until the next Close, which never comes: call it last.
func (f *flushWriter) Close() error {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	<-f.done
	return nil
}
